package main

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
)

// TestFindGlitches: a steady tone whose rate wanders slowly (a playout's
// resampler) has no glitch; a 10 ms dip of 12 dB, a 3 dB dip and a phase
// step of half a millisecond are found, each once, where they are.
func TestFindGlitches(t *testing.T) {
	const hz = 750
	tone := func(n int, dip func(i int) float64, step int) []float32 {
		p := make([]float32, n)
		phase := 0.0
		for i := range p {
			rate := 1 + 0.001*math.Sin(2*math.Pi*float64(i)/(3*audio.SampleRate))
			phase += 2 * math.Pi * hz * rate / audio.SampleRate
			if i == step {
				phase += 2 * math.Pi * hz * 0.0005
			}
			p[i] = float32(0.3 * dip(i) * math.Sin(phase))
		}
		return p
	}
	none := func(int) float64 { return 1 }
	n := 10 * audio.SampleRate
	if r := findGlitches(tone(n, none, -1), hz); r.glitches() != 0 || r.listened < 8*time.Second {
		t.Errorf("steady tone: %d glitches (%v), listened %v; want none, over 8.5 s", r.glitches(), r.glitchesAt, r.listened)
	}
	dips := func(i int) float64 {
		switch {
		case i >= 3*audio.SampleRate && i < 3*audio.SampleRate+480:
			return 0.25 // 12 dB for 10 ms
		case i >= 5*audio.SampleRate && i < 5*audio.SampleRate+480:
			return 0.7 // 3 dB: not a glitch
		}
		return 1
	}
	r := findGlitches(tone(n, dips, 7*audio.SampleRate), hz)
	if r.dips != 1 || r.steps != 1 || len(r.glitchesAt) != 2 {
		t.Fatalf("%d dips, %d steps at %v; want 1 dip at 3 s, 1 step at 7 s", r.dips, r.steps, r.glitchesAt)
	}
	if at := r.glitchesAt[0].Seconds(); at < 3 || at > 3.02 {
		t.Errorf("dip found at %.3f s, want 3 s", at)
	}
	if at := r.glitchesAt[1].Seconds(); at < 7 || at > 7.02 {
		t.Errorf("step found at %.3f s, want 7 s", at)
	}
	if r.deepestDB < 11 || r.deepestDB > 13 {
		t.Errorf("deepest dip %.1f dB, want 12", r.deepestDB)
	}
	if ms := r.largestStep.Seconds() * 1000; ms < 0.45 || ms > 0.55 {
		t.Errorf("largest step %.3f ms, want 0.5", ms)
	}
}
