package lab

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio/codec"
)

// TestAutoCodecOnLoopback sings over plain loopback with the codec left to
// the session: Opus Custom at first, then, the path being on this machine
// and clean, PCM (L16) both ways after a few reports, with the change
// heard as no click.
func TestAutoCodecOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("a 9 s duet")
	}
	res, err := Run(t.Context(), Config{
		HostVoice:  testkit.Sine(440, 9),
		GuestVoice: testkit.Sine(660, 9),
		Monitor:    0,
		Logger:     testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]app.Stats{"host": res.HostStats, "guest": res.GuestStats} {
		t.Logf("%s sends %s at %d b/s, hears %s; %+v", name, st.Codec, st.Bitrate, st.PartnerCodec, st.Voice.Stats)
		if st.Codec != "L16" || st.PartnerCodec != "L16" || st.Bitrate != 768000 {
			t.Errorf("%s sends %s at %d b/s and hears %s after 9 s on loopback, want L16 both ways", name, st.Codec, st.Bitrate, st.PartnerCodec)
		}
	}
	// The change of codec is a crossfade: what each heard of the other's
	// steady tone steps no more than 1.5 times the tone's steepest, except
	// where the playout concealed a late packet (a loaded machine).
	for _, tc := range []struct {
		name  string
		heard []float32
		hz    float64
		st    app.Stats
	}{{"host", res.HostHeard, 660, res.HostStats}, {"guest", res.GuestHeard, 440, res.GuestStats}} {
		slope := 2 * math.Pi * tc.hz / 48000 * 0.3
		steps := 0
		start := 0
		for start < len(tc.heard) && math.Abs(float64(tc.heard[start])) < 0.05 {
			start++
		}
		// From half a second after the voice starts to the end of singing.
		for i := start + 24000; i < min(len(tc.heard), 8*48000); i++ {
			if math.Abs(float64(tc.heard[i]-tc.heard[i-1])) > 1.5*slope {
				steps++
			}
		}
		t.Logf("%s: %d steps over 1.5 × the tone's steepest; %d concealment events", tc.name, steps, tc.st.Voice.ConcealmentEvents)
		if steps > 0 && tc.st.Voice.ConcealmentEvents == 0 {
			t.Errorf("%s heard %d steps with nothing concealed: the codec change clicked", tc.name, steps)
		}
	}
}

// TestChosenCodecKept: a codec the singer chose is sent whatever the path,
// and Latency's codec stage is the partner's packet and look-ahead.
func TestChosenCodecKept(t *testing.T) {
	if testing.Short() {
		t.Skip("an 8 s duet")
	}
	var lat time.Duration
	heard := false
	res, err := Run(t.Context(), Config{
		// 8 s, so the voices are compared from 5 s on, well after the
		// playout has settled (the first seconds under -race conceal).
		HostVoice:  testkit.Voice(196, 1, 8),
		GuestVoice: testkit.Voice(330, 2, 8),
		Codec:      codec.L24,
		Monitor:    0,
		Logger:     testkit.Logger(t),
		Sessions: func(host, guest *app.Session) {
			// Once the guest's voice plays at the host: within the duet's
			// 8 s (it took over 4 once, in CI under load).
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); <-tick.C {
				if host.Stats().PartnerCodec != "" {
					lat, heard = host.Latency().Codec, true
					return
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]app.Stats{"host": res.HostStats, "guest": res.GuestStats} {
		if st.Codec != "L24" || st.PartnerCodec != "L24" {
			t.Errorf("%s sends %s and hears %s, want L24 both ways", name, st.Codec, st.PartnerCodec)
		}
	}
	// One 128-sample packet (the file device's block) and no look-ahead.
	if want := 128 * time.Second / 48000; !heard {
		t.Errorf("the host heard no codec from its guest within 8 s")
	} else if lat != want {
		t.Errorf("the host's codec stage %v, want %v", lat, want)
	}
	// Found by Latency's own bar (a correlation of 0.3): under CI's load
	// the playout conceals now and then, and a stricter 0.5 once failed
	// at 0.44 on a voice that plainly came through.
	for _, toHost := range []bool{true, false} {
		if _, score, err := res.Latency(toHost); err != nil {
			t.Errorf("toHost=%v: voice not found (%v, correlation %.2f)", toHost, err, score)
		}
	}
}
