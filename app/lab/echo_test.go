package lab

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/echo/echotest"
)

// TestGuestOnSpeakers puts the guest on a laptop's speakers: its
// microphone hears what it plays (the host's voice) along three paths, the
// loudest 6 dB down. The host, monitoring off, hears only what the guest
// sends, so its own voice coming back is the echo. Without the canceller
// it comes back clearly; with it, at least 30 dB below the host's voice.
func TestGuestOnSpeakers(t *testing.T) {
	if testing.Short() {
		t.Skip("two 9 s duets")
	}
	const seconds = 9
	voice := echotest.Singer(seconds*audio.SampleRate, 196, 0.3, 1)
	room := []EchoTap{{12 * time.Millisecond, 0.5}, {31 * time.Millisecond, 0.2}, {57 * time.Millisecond, 0.1}}
	back := map[bool]float64{}
	for _, speakers := range []bool{false, true} {
		res, err := Run(t.Context(), Config{
			HostVoice:     voice,
			GuestVoice:    make([]float32, seconds*audio.SampleRate),
			GuestEcho:     room,
			GuestSpeakers: speakers,
			Logger:        testkit.Logger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		// The last three seconds but one, converged and still singing.
		from, to := (seconds-4)*audio.SampleRate, (seconds-1)*audio.SampleRate
		if len(res.HostHeard) < to {
			t.Fatalf("the host heard only %d samples", len(res.HostHeard))
		}
		back[speakers] = 10 * math.Log10(energy(res.HostHeard[from:to])/energy(voice[from:to]))
		t.Logf("canceller %v: the host's voice comes back at %.1f dB (guest's echo latency %v)", speakers, back[speakers], res.GuestStats.EchoLatency)
	}
	if back[false] < -15 {
		t.Errorf("without the canceller the echo is only %.1f dB: the room is not on the path", back[false])
	}
	if back[true] > -30 {
		t.Errorf("with the canceller the echo comes back at %.1f dB, want ≤ −30", back[true])
	}
}

func energy(p []float32) float64 {
	var e float64
	for _, v := range p {
		e += float64(v) * float64(v)
	}
	return e + 1e-20
}
