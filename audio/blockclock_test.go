package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBlockClock feeds callback instants of a device running 150 ppm fast
// with up to ±1 ms of scheduling jitter, and checks the filtered instants
// lie within 0.1 ms of the truth once settled.
func TestBlockClock(t *testing.T) {
	const n = 128
	rng := rand.New(rand.NewPCG(3, 4))
	per := 1e9 / SampleRate / (1 + 150e-6)
	var c BlockClock
	worst, raw := 0.0, 0.0
	for i := range 48000 * 60 / n {
		truth := 5e9 + float64(i*n)*per
		jitter := rng.Float64() * 1e6 // callbacks run late, never early
		got := float64(c.Tick(int64(truth+jitter), n))
		if i*n > 48000*20 {
			worst = max(worst, math.Abs(got-truth-0.5e6))
			raw = max(raw, math.Abs(jitter-0.5e6))
		}
	}
	t.Logf("worst error %.3f ms (raw callback times: %.3f ms)", worst/1e6, raw/1e6)
	if worst > 0.1e6 {
		t.Errorf("filtered instants are %.3f ms off", worst/1e6)
	}
}
