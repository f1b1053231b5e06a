package measure

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/dsp/fourier"
)

// TestFFTAgainstGonum: the radix-2 FFT, forward and inverse, agrees with
// gonum's at every power of two up to 2^14, to a few parts in 10^13 of
// the largest coefficient.
func TestFFTAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 1<<14; n <<= 1 {
		x := make([]complex128, n)
		for i := range x {
			x[i] = complex(rng.NormFloat64(), rng.NormFloat64())
		}
		g := fourier.NewCmplxFFT(n)
		for _, inverse := range []bool{false, true} {
			want := make([]complex128, n)
			if inverse {
				g.Sequence(want, x)
			} else {
				g.Coefficients(want, x)
			}
			got := append([]complex128(nil), x...)
			fft(got, inverse)
			var scale, worst float64
			for i := range want {
				scale = max(scale, cmplx.Abs(want[i]))
				worst = max(worst, cmplx.Abs(got[i]-want[i]))
			}
			if worst > 1e-12*scale {
				t.Errorf("n=%d inverse=%v: differs from gonum by %.3g (largest coefficient %.3g)", n, inverse, worst, scale)
			}
		}
	}
}

// correlateGonum is correlate as Delay did it with gonum's real FFT: the
// reference the radix-2 version is checked against.
func correlateGonum(sig, ref []float32, n int) []float64 {
	fft := fourier.NewFFT(n)
	a := make([]float64, n)
	b := make([]float64, n)
	for i, v := range sig {
		a[i] = float64(v)
	}
	for i, v := range ref {
		b[i] = float64(v)
	}
	fa := fft.Coefficients(nil, a)
	fb := fft.Coefficients(nil, b)
	for i := range fa {
		fa[i] *= cmplx.Conj(fb[i])
	}
	return fft.Sequence(nil, fa)
}

// TestCorrelateAgainstGonum: the cross-correlation of two real signals
// through one complex FFT matches gonum's through two real ones, to a few
// parts in 10^12 of its peak, for lengths that pad differently.
func TestCorrelateAgainstGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, size := range [][2]int{{1, 1}, {3, 5}, {100, 1000}, {4096, 4096}, {9600, 24000}} {
		ref, sig := make([]float32, size[0]), make([]float32, size[1])
		for i := range ref {
			ref[i] = float32(rng.NormFloat64())
		}
		for i := range sig {
			sig[i] = float32(rng.NormFloat64())
		}
		n := 1
		for n < len(ref)+len(sig) {
			n <<= 1
		}
		got, want := correlate(sig, ref, n), correlateGonum(sig, ref, n)
		var peak, worst float64
		for i := range want {
			peak = max(peak, math.Abs(want[i]))
			worst = max(worst, math.Abs(got[i]-want[i]))
		}
		if worst > 1e-11*peak {
			t.Errorf("%d against %d samples: differs from gonum by %.3g (peak %.3g)", size[0], size[1], worst, peak)
		}
	}
}

// BenchmarkDelay finds 2 s of voice in 2.5 s (the lab's mouth-to-ear
// measurement, n = 2^18), with the radix-2 FFT and, for comparison, the
// cross-correlation alone with each FFT.
func BenchmarkDelay(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	ref, sig := make([]float32, 2*rate), make([]float32, 5*rate/2)
	for i := range ref {
		ref[i] = float32(rng.NormFloat64())
	}
	for i := range sig {
		sig[i] = float32(rng.NormFloat64()) * 0.1
	}
	for i, v := range ref {
		sig[rate/10+i] += v
	}
	n := 1 << 18
	b.Run("Delay", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Delay(ref, sig, rate/2)
		}
	})
	b.Run("correlate/radix2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			correlate(sig, ref, n)
		}
	})
	b.Run("correlate/gonum", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			correlateGonum(sig, ref, n)
		}
	})
}
