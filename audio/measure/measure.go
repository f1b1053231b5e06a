// Package measure analyses recorded audio: levels in dBFS, the strength of
// one frequency (Goertzel), and the delay between two signals by
// cross-correlation. It works on whole buffers off the audio thread, for
// tests, the demo's report, calibration and the meters. It depends on
// nothing but the standard library, so that what links it (the desktop
// app, through the meters and the lab) links no numerics library: the
// cross-correlation runs on a radix-2 FFT of its own (fft.go).
package measure

import (
	"math"
	"math/cmplx"
)

// RMS returns the root-mean-square level of p, linear.
func RMS(p []float32) float64 {
	if len(p) == 0 {
		return 0
	}
	var sum float64
	for _, v := range p {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(p)))
}

// Peak returns the largest absolute sample of p, linear.
func Peak(p []float32) float64 {
	var peak float64
	for _, v := range p {
		peak = max(peak, math.Abs(float64(v)))
	}
	return peak
}

// DBFS converts a linear level to decibels relative to full scale; silence
// is -Inf.
func DBFS(level float64) float64 {
	return 20 * math.Log10(level)
}

// Tone returns the amplitude of the sinusoid at hz in p (sampled at rate),
// by the Goertzel algorithm over a Hann window (so a strong tone nearby does
// not leak into the answer): a sine of amplitude A at hz gives about A.
func Tone(p []float32, hz, rate float64) float64 {
	if len(p) < 2 {
		return 0
	}
	w := 2 * math.Pi * hz / rate
	c := 2 * math.Cos(w)
	var s1, s2, gain float64
	for i, v := range p {
		win := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(p)-1))
		gain += win
		s0 := win*float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(max(power, 0)) / gain
}

// Delay finds where ref occurs in sig: the lag in samples, 0 ≤ lag ≤
// maxLag, at which sig best matches ref, refined to a fraction of a sample.
// score is the normalised correlation at that lag (1 = identical shape, 0 =
// unrelated), a confidence figure.
func Delay(ref, sig []float32, maxLag int) (lag, score float64) {
	if len(ref) == 0 || len(sig) == 0 {
		return 0, 0
	}
	maxLag = min(maxLag, len(sig)-1)
	n := 1
	for n < len(ref)+len(sig) {
		n <<= 1
	}
	corr := correlate(sig, ref, n) // unnormalised: n × Σ sig[t+L]·ref[t]

	// Energies of the overlapping parts, from prefix sums.
	cumRef := prefixEnergy(ref)
	cumSig := prefixEnergy(sig)
	total := cumSig[len(sig)]
	// Lags where less than half of ref overlaps sig are not considered:
	// a few samples can match anything.
	minOverlap := max(1, min(len(ref), len(sig))/2)
	norm := func(l int) float64 {
		overlap := min(len(ref), len(sig)-l)
		if overlap < minOverlap {
			return 0
		}
		er := cumRef[overlap]
		es := cumSig[l+overlap] - cumSig[l]
		// A window whose energy is within the FFT's rounding of the whole
		// signal's is silence: dividing the rounding noise in corr by it
		// would make noise a perfect match (a score above 1, which no
		// real match reaches).
		if er <= 0 || es <= 1e-12*total {
			return 0
		}
		s := corr[l] / float64(n) / math.Sqrt(er*es)
		if s > 1+1e-6 {
			return 0
		}
		return s
	}
	best, bestScore := 0, math.Inf(-1)
	for l := 0; l <= maxLag; l++ {
		if s := norm(l); s > bestScore {
			best, bestScore = l, s
		}
	}
	lag = float64(best)
	if best > 0 && best < maxLag {
		// Parabolic interpolation around the peak of the raw correlation.
		y0, y1, y2 := corr[best-1], corr[best], corr[best+1]
		if d := y0 - 2*y1 + y2; d < 0 {
			lag += 0.5 * (y0 - y2) / d
		}
	}
	return lag, bestScore
}

// correlate returns the circular cross-correlation of sig and ref, zero
// padded to n (a power of two, at least their lengths' sum, so that
// nothing wraps), times n: at lag L, n × Σ sig[t+L]·ref[t]. The two real
// signals ride in one complex FFT, sig as the real part and ref as the
// imaginary, and are told apart by the transform's symmetry.
func correlate(sig, ref []float32, n int) []float64 {
	z := make([]complex128, n)
	for i, v := range sig {
		z[i] = complex(float64(v), 0)
	}
	for i, v := range ref {
		z[i] += complex(0, float64(v))
	}
	fft(z, false)
	// With Z the transform of sig + i·ref: S[k] = (Z[k] + conj(Z[n-k]))/2,
	// R[k] = (Z[k] - conj(Z[n-k]))/2i, and the correlation's transform
	// is S[k]·conj(R[k]). Each k and n-k are done together, in place.
	for k := 0; k <= n/2; k++ {
		j := (n - k) & (n - 1)
		zk, zj := z[k], cmplx.Conj(z[j])
		s, r := (zk+zj)/2, (zk-zj)/complex(0, 2)
		c := s * cmplx.Conj(r)
		z[k] = c
		z[j] = cmplx.Conj(c) // the transform of a real sequence
	}
	fft(z, true)
	corr := make([]float64, n)
	for i, v := range z {
		corr[i] = real(v)
	}
	return corr
}

func prefixEnergy(p []float32) []float64 {
	cum := make([]float64, len(p)+1)
	for i, v := range p {
		cum[i+1] = cum[i] + float64(v)*float64(v)
	}
	return cum
}
