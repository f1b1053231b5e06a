package lab

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/impair"
)

// TestNetworkDropout cuts the network between the singers for 5 s mid-song
// while the host records: both are told the connection dropped and came
// back, the host hears the guest again afterwards, and the take runs on
// through the cut.
func TestNetworkDropout(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 s duet")
	}
	cut := &impair.Cut{}
	path := impair.Profile{Name: "cable", Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Cut: cut, Seed: 9}
	var mu sync.Mutex
	var texts []string
	connected := make(chan struct{}, 4)
	changed := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var res *Result
	var err error
	done := make(chan struct{})
	takes := t.TempDir()
	go func() {
		defer close(done)
		res, err = Run(ctx, Config{
			HostVoice:  testkit.Sine(196, 16),
			GuestVoice: testkit.Sine(330, 16),
			Network:    &path,
			RecordDir:  takes,
			Logger:     testkit.Logger(t),
			OnEvent: func(host bool, e app.Event) {
				who := "guest"
				if host {
					who = "host"
				}
				mu.Lock()
				texts = append(texts, who+": "+e.Text)
				mu.Unlock()
				if strings.HasPrefix(e.Text, "Connected to your partner") {
					connected <- struct{}{}
				}
				select {
				case changed <- struct{}{}:
				default:
				}
			},
		})
	}()
	// count waits until n events contain what.
	count := func(what string, n int, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			mu.Lock()
			got := 0
			for _, s := range texts {
				if strings.Contains(s, what) {
					got++
				}
			}
			all := strings.Join(texts, "\n")
			mu.Unlock()
			if got >= n {
				return
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("no %d × %q within %v; events:\n%s", n, what, within, all)
			}
		}
	}
	for range 2 {
		select {
		case <-connected:
		case <-time.After(30 * time.Second):
			t.Fatal("the singers did not connect")
		}
	}
	time.Sleep(2 * time.Second) // sing a while before the cut
	cut.Set(true)
	count("dropped; reconnecting", 2, 10*time.Second)
	time.Sleep(5*time.Second - 3*time.Second) // the cut lasts 5 s in all
	cut.Set(false)
	count("is back", 2, 15*time.Second)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	// Two seconds before the end, well after the cut: the host hears the
	// guest's 330 Hz again.
	n := len(res.HostHeard)
	tail := res.HostHeard[n-4*audio.SampleRate : n-2*audio.SampleRate]
	t.Logf("host received %d packets of the guest, concealed %d samples, reset the playout %d times", res.HostStats.Voice.PacketsReceived, res.HostStats.Voice.ConcealedSamples, res.HostStats.Voice.Resets)
	// Each half second on its own: the adapter brings Opus Custom back
	// after the cut, and a change of codec moves the voice by the two
	// look-aheads' difference (1.2 ms), a phase step that one Goertzel
	// window across it would read as a quiet tone.
	for k := 0; k < 4; k++ {
		half := tail[k*audio.SampleRate/2 : (k+1)*audio.SampleRate/2]
		if a := measure.Tone(half, 330, audio.SampleRate); a < 0.1 {
			t.Errorf("after the dropout the host hears the guest at %.3f (%.1f s before the end)", a, 4-float64(k)/2)
		}
	}
	live, err := wavfile.ReadFile(filepath.Join(res.HostTrack.Take, record.LiveFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := audio.Duration(len(live)); got < 10*time.Second {
		t.Errorf("the take holds %v of what the host heard; the cut stopped it", got)
	}
}
