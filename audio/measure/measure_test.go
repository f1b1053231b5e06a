package measure

import (
	"math"
	"math/rand/v2"
	"testing"
)

const rate = 48000

func sine(n int, hz float64, amp float32) []float32 {
	p := make([]float32, n)
	for i := range p {
		p[i] = amp * float32(math.Sin(2*math.Pi*hz*float64(i)/rate))
	}
	return p
}

func TestTone(t *testing.T) {
	p := sine(rate/2, 660, 0.5)
	if got := Tone(p, 660, rate); math.Abs(got-0.5) > 0.01 {
		t.Errorf("Tone at 660 Hz = %.3f, want 0.5", got)
	}
	if got := Tone(p, 440, rate); got > 0.001 {
		t.Errorf("Tone at 440 Hz of a 660 Hz sine = %.4f, want ~0", got)
	}
	// A short window, where a plain Goertzel leaks a neighbour's energy.
	if got := Tone(p[:960], 440, rate); got > 0.003 {
		t.Errorf("Tone at 440 Hz over 20 ms of a 660 Hz sine = %.4f, want < 0.003", got)
	}
}

func TestLevels(t *testing.T) {
	p := sine(rate, 1000, 1)
	if got := DBFS(RMS(p)); math.Abs(got+3.01) > 0.05 {
		t.Errorf("full-scale sine RMS = %.2f dBFS, want -3.01", got)
	}
	if got := Peak(p); math.Abs(got-1) > 1e-3 {
		t.Errorf("Peak = %v, want 1", got)
	}
	if !math.IsInf(DBFS(RMS(make([]float32, 10))), -1) {
		t.Error("silence is not -Inf dBFS")
	}
}

func TestDelay(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := make([]float32, 4800)
	for i := range ref {
		ref[i] = float32(rng.NormFloat64() * 0.2)
	}
	for _, shift := range []int{0, 1, 137, 2400, 9000} {
		sig := make([]float32, shift+len(ref)+3000)
		for i := range sig {
			sig[i] = float32(rng.NormFloat64() * 0.02) // noise floor
		}
		for i, v := range ref {
			sig[shift+i] += 0.5 * v
		}
		lag, score := Delay(ref, sig, 12000)
		if math.Abs(lag-float64(shift)) > 0.5 {
			t.Errorf("shift %d: found lag %.2f", shift, lag)
		}
		if score < 0.9 {
			t.Errorf("shift %d: score %.2f, want ≥ 0.9", shift, score)
		}
	}
}

func TestDelayUnrelated(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ref := make([]float32, 2000)
	sig := make([]float32, 8000)
	for i := range ref {
		ref[i] = float32(rng.NormFloat64())
	}
	for i := range sig {
		sig[i] = float32(rng.NormFloat64())
	}
	if _, score := Delay(ref, sig, 6000); score > 0.2 {
		t.Errorf("unrelated signals scored %.2f, want < 0.2", score)
	}
}

// TestDelayPastSilence finds a burst after a long "silence" of tiny values,
// as a decoder gives before anyone sings: against that window's near-zero
// energy the FFT's rounding noise must not score as a match.
func TestDelayPastSilence(t *testing.T) {
	ref := make([]float32, 2000)
	for i := range ref {
		ref[i] = float32(math.Sin(float64(i)*0.3) * math.Exp(-float64(i)/400))
	}
	sig := make([]float32, 200000)
	for i := range 150000 {
		sig[i] = 1e-20 * float32(1+i%3)
	}
	copy(sig[150000:], ref)
	lag, score := Delay(ref, sig, len(sig)-len(ref)-1)
	if math.Abs(lag-150000) > 0.5 || score > 1.0001 || score < 0.99 {
		t.Errorf("lag %v score %v, want 150000 and 1", lag, score)
	}
}
