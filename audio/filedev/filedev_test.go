package filedev

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/duetapp/duet/audio"
)

type memSink struct {
	p      []float32
	closed bool
	err    error
}

func (m *memSink) Write(p []float32) error {
	m.p = append(m.p, p...)
	return m.err
}

func (m *memSink) Close() error { m.closed = true; return nil }

func ramp(n int) []float32 {
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(i + 1)
	}
	return p
}

// TestRealTimePacing checks, in fake time, that blocks come one block
// duration apart and that the output is what process made of the input.
func TestRealTimePacing(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		sink := &memSink{}
		d := New(Config{Input: &audio.SliceReader{P: ramp(1000)}, Output: sink, Block: 100})
		var times []time.Duration
		start := time.Now()
		err := d.Start(func(in, out []float32) {
			times = append(times, time.Since(start))
			for i := range in {
				out[i] = -in[i]
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		<-d.Done()
		if err := d.Err(); err != nil {
			t.Fatalf("Err = %v, want nil at end of input", err)
		}
		// 1000 samples in blocks of 100: blocks 0..9, then one more read
		// hits EOF with nothing left (played as silence).
		if len(times) != 11 {
			t.Fatalf("%d blocks, want 11", len(times))
		}
		for i, at := range times {
			if want := time.Duration(i) * audio.Duration(100); at != want {
				t.Fatalf("block %d at %v, want %v", i, at, want)
			}
		}
		for i := 0; i < 1000; i++ {
			if sink.p[i] != -float32(i+1) {
				t.Fatalf("out[%d] = %v, want %v", i, sink.p[i], -float32(i+1))
			}
		}
		if err := d.Close(); err != nil || !sink.closed {
			t.Fatalf("Close = %v, sink closed %v", err, sink.closed)
		}
	})
}

// TestCloseStopsEndlessDevice runs a device without input for 10 ms of
// fake time: it calls back on its block clock until Close.
func TestCloseStopsEndlessDevice(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		d := New(Config{})
		calls := 0
		d.Start(func(in, out []float32) { calls++ })
		time.Sleep(10 * time.Millisecond)
		d.Close()
		<-d.Done()
		if calls != 4 {
			t.Fatalf("%d calls in 10 ms of 2.67 ms blocks, want 4 (at 0, 2.67, 5.33 and 8 ms)", calls)
		}
		if d.Close() != nil {
			t.Fatal("second Close failed")
		}
	})
}

func TestOutputErrorStops(t *testing.T) {
	t.Parallel()
	sink := &memSink{err: errors.New("disk full")}
	d := New(Config{Output: sink, Fast: true})
	d.Start(func(in, out []float32) {})
	<-d.Done()
	if err := d.Err(); err == nil || !errors.Is(err, sink.err) {
		t.Fatalf("Err = %v, want the sink's error", err)
	}
	d.Close()
}

func TestCloseBeforeStart(t *testing.T) {
	t.Parallel()
	d := New(Config{})
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(func(in, out []float32) {}); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
