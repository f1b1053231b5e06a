package miccheck

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/tone"
)

// dirtyDevice hands process output buffers full of old samples, as a
// sound card's may be, for a few blocks, and keeps what was left in them.
type dirtyDevice struct {
	blocks int
	loud   int // output samples process left non-zero
	done   chan struct{}
}

func (d *dirtyDevice) Start(process audio.ProcessFunc) error {
	go func() {
		defer close(d.done)
		in, out := make([]float32, 128), make([]float32, 128)
		for range d.blocks {
			for i := range out {
				out[i] = 0.5
			}
			process(in, out)
			for _, v := range out {
				if v != 0 {
					d.loud++
				}
			}
		}
	}()
	return nil
}

func (d *dirtyDevice) Done() <-chan struct{} { return d.done }
func (d *dirtyDevice) Err() error            { return nil }
func (d *dirtyDevice) Close() error          { <-d.done; return nil }

// TestPlaysSilence clears every output block, whatever the device left in
// it: the mic check must not play old sound.
func TestPlaysSilence(t *testing.T) {
	dev := &dirtyDevice{blocks: 10, done: make(chan struct{})}
	if err := Run(t.Context(), dev, 0, func(meter.Level) {}); err != nil {
		t.Fatal(err)
	}
	if dev.loud != 0 {
		t.Fatalf("%d output samples were not silent", dev.loud)
	}
}

// TestReportsTheTone runs the check on a real-time file device singing a
// tone 12 dB below full scale, in a synctest bubble: the device's clock
// and the reports' are the same fake clock, so each report covers 50 ms of
// the tone. It reports −12 dBFS peak and −15 dBFS RMS 20 times a second,
// and stops and closes the device when ctx ends.
func TestReportsTheTone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.25}})
		ctx, cancel := context.WithCancel(t.Context())
		var levels []meter.Level
		began := time.Now()
		err := Run(ctx, dev, 0, func(l meter.Level) {
			levels = append(levels, l)
			if len(levels) == 20 {
				cancel()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took != time.Second {
			t.Errorf("20 reports took %v, want 1 s", took)
		}
		want := meter.Level{Peak: 20 * math.Log10(0.25), RMS: 20 * math.Log10(0.25/math.Sqrt2)}
		for i, l := range levels {
			if math.Abs(l.Peak-want.Peak) > 0.1 || math.Abs(l.RMS-want.RMS) > 0.1 {
				t.Errorf("report %d: %+v, want %+v within 0.1 dB", i, l, want)
			}
		}
		select {
		case <-dev.Done():
		default:
			t.Error("the device still runs after Run returned")
		}
	})
}

// TestSilence reports meter.Silent for a silent microphone, not a level
// left over from nothing.
func TestSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var got []meter.Level
		Run(ctx, filedev.New(filedev.Config{}), 10*time.Millisecond, func(l meter.Level) {
			if got = append(got, l); len(got) == 5 {
				cancel()
			}
		})
		for _, l := range got {
			if l.Peak != meter.Silent || l.RMS != meter.Silent {
				t.Fatalf("silence reported as %+v, want %v dBFS", l, meter.Silent)
			}
		}
	})
}

// TestInputEnds returns nil once the input has simply ended.
func TestInputEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := make([]float32, audio.SampleRate/5)
		dev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: p}})
		n := 0
		if err := Run(t.Context(), dev, 0, func(meter.Level) { n++ }); err != nil {
			t.Fatalf("Run = %v after the input ended, want nil", err)
		}
		// 75 blocks of 128: the last is due at 197 ms, before a fourth report.
		if n != 3 {
			t.Errorf("%d reports in 200 ms of input, want 3", n)
		}
	})
}

// brokenMic fails after a few blocks, as a microphone pulled out does.
type brokenMic struct{ blocks int }

var errPulled = errors.New("device unplugged")

func (b *brokenMic) Read(p []float32) (int, error) {
	if b.blocks == 0 {
		return 0, errPulled
	}
	b.blocks--
	clear(p)
	return len(p), nil
}

// TestDeviceLost returns the device's own error, worded for the singer.
func TestDeviceLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dev := filedev.New(filedev.Config{Input: &brokenMic{blocks: 10}})
		err := Run(t.Context(), dev, 0, func(meter.Level) {})
		if !errors.Is(err, errPulled) {
			t.Fatalf("Run = %v, want the device's error", err)
		}
		if want := "the microphone stopped: "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not begin with %q", err, want)
		}
	})
}

// TestStartFails says so when the device does not start, and closes it.
func TestStartFails(t *testing.T) {
	dev := filedev.New(filedev.Config{})
	dev.Start(func(in, out []float32) {})
	err := Run(t.Context(), dev, 0, func(meter.Level) {})
	if err == nil {
		t.Fatal("Run on a device already started returned nil")
	}
	select {
	case <-dev.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the device was not closed")
	}
}
