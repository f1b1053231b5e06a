package jitter

import (
	"math/rand/v2"
	"testing"
)

// TestConcealLongestPeriod: a sound whose period is the longest searched
// (75 Hz) or a sample over it is concealed without reaching past the
// template (a period of maxPeriod+1 indexed past it: a panic on the audio
// thread). The sound is smoothed noise repeated, so only its period and
// the lags next to it correlate.
func TestConcealLongestPeriod(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, period := range []int{maxPeriod - 1, maxPeriod, maxPeriod + 1} {
		var e expander
		// Noise smoothed over a few samples: neighbouring lags
		// correlate, so the search climbs to the last even one and
		// tries the odd one past it.
		noise := make([]float32, period)
		var last float64
		for i := range noise {
			last = 0.7*last + 0.3*(rng.Float64()-0.5)
			noise[i] = float32(last)
		}
		p := make([]float32, histLen)
		for i := range p {
			p[i] = noise[i%period]
		}
		e.push(p)
		out := make([]float32, 960)
		e.conceal(out)
		if e.period > maxPeriod {
			t.Errorf("a %d-sample period: found %d, over the %d searched", period, e.period, maxPeriod)
		}
	}
}
