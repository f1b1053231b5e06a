package calibrate

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
)

// loopDevice plays its output back into its input after a fixed delay (at
// least one block, as on any real device), with a little noise, block by
// block as fast as it can: a loopback cable.
type loopDevice struct {
	delay, block int
	gain         float32
	stop         chan struct{}
	done         chan struct{}
	once         sync.Once
}

func newLoop(delay int, gain float32) *loopDevice {
	return &loopDevice{delay: delay, block: 128, gain: gain, stop: make(chan struct{}), done: make(chan struct{})}
}

func (d *loopDevice) Start(process audio.ProcessFunc) error {
	go func() {
		defer close(d.done)
		var played []float32 // everything output so far
		in, out := make([]float32, d.block), make([]float32, d.block)
		rng := rand.New(rand.NewPCG(1, 1))
		for {
			select {
			case <-d.stop:
				return
			default:
			}
			now := len(played)
			for i := range in {
				in[i] = float32(rng.NormFloat64() * 0.001)
				if j := now + i - d.delay; j >= 0 && j < len(played) {
					in[i] += d.gain * played[j]
				}
			}
			process(in, out)
			played = append(played, out...)
		}
	}()
	return nil
}

func (d *loopDevice) Done() <-chan struct{} { return d.done }
func (d *loopDevice) Err() error            { return nil }
func (d *loopDevice) Close() error {
	d.once.Do(func() { close(d.stop) })
	<-d.done
	return nil
}

func TestFindsRoundTrip(t *testing.T) {
	for _, delay := range []int{128, 200, 1000, 4321} {
		var last float64
		res, err := Run(t.Context(), newLoop(delay, 0.5), func(f float64) { last = f })
		if err != nil {
			t.Fatalf("delay %d: %v", delay, err)
		}
		want := audio.Duration(delay)
		if d := res.RoundTrip - want; d > 20*time.Microsecond || d < -20*time.Microsecond {
			t.Errorf("delay %d samples: found %v, want %v", delay, res.RoundTrip, want)
		}
		if res.Confidence < 0.9 {
			t.Errorf("delay %d: confidence %.2f, want ≥ 0.9", delay, res.Confidence)
		}
		if last != 1 {
			t.Errorf("progress ended at %v, want 1", last)
		}
	}
}

func TestNoEcho(t *testing.T) {
	_, err := Run(t.Context(), newLoop(100, 0), nil)
	if !errors.Is(err, ErrNoEcho) {
		t.Fatalf("err = %v, want ErrNoEcho", err)
	}
}

// TestCheck passes what Run finds on a clean loop and refuses any
// confidence below MinConfidence.
func TestCheck(t *testing.T) {
	res, err := Run(t.Context(), newLoop(300, 0.5), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Check(); err != nil {
		t.Errorf("clean loop, confidence %.2f: %v", res.Confidence, err)
	}
	for _, c := range []float64{0, 0.2, MinConfidence - 0.01} {
		if err := (Result{Confidence: c}).Check(); !errors.Is(err, ErrUnreliable) {
			t.Errorf("confidence %.2f: Check = %v, want ErrUnreliable", c, err)
		}
	}
	if err := (Result{Confidence: MinConfidence}).Check(); err != nil {
		t.Errorf("confidence %.2f: %v", MinConfidence, err)
	}
}
