// Package testkit is what the tests of app and app/lab share: a logger
// that speaks only under -v, the synthetic voices the singers sing, and a
// check that a duet left no goroutine behind.
package testkit

import (
	"log/slog"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
)

// Logger logs to stderr under -v (at Debug with DUET_DEBUG set) and
// nowhere otherwise.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	level := slog.LevelInfo
	if os.Getenv("DUET_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Sine is seconds of a steady tone at hz, at −10 dBFS.
func Sine(hz, seconds float64) []float32 {
	p := make([]float32, int(seconds*audio.SampleRate))
	audio.ReadFull(&tone.Sine{Hz: hz, Amp: 0.3}, p)
	return p
}

// Voice is seconds of a sung-like melody around base Hz; the same seed
// sings the same.
func Voice(base float64, seed uint64, seconds float64) []float32 {
	p := make([]float32, int(seconds*audio.SampleRate))
	audio.ReadFull(&tone.Voice{Base: base, Amp: 0.3, Seed: seed}, p)
	return p
}

// WaitGoroutines waits, up to a deadline, for the goroutine count to come
// back to want (what it was before a duet): every goroutine was stopped by
// its owner. It polls: a goroutine's end has no event to wait on.
func WaitGoroutines(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left after the duet, want ≤ %d:\n%s", runtime.NumGoroutine(), want, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Tone is how strongly heard holds hz: the median over 20 ms windows of
// its middle half (away from connecting and leaving), so that a concealed
// packet here and there does not sway it.
func Tone(heard []float32, hz float64) float64 {
	mid := heard[len(heard)/4 : 3*len(heard)/4]
	const window = audio.SampleRate / 50
	var levels []float64
	for i := 0; i+window <= len(mid); i += window {
		levels = append(levels, measure.Tone(mid[i:i+window], hz, audio.SampleRate))
	}
	if len(levels) == 0 {
		return 0
	}
	slices.Sort(levels)
	return levels[len(levels)/2]
}

// Sink is a file device's output kept in memory.
type Sink struct{ P []float32 }

// Write keeps p.
func (s *Sink) Write(p []float32) error { s.P = append(s.P, p...); return nil }

// Close does nothing.
func (s *Sink) Close() error { return nil }
