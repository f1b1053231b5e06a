package measure

import (
	"math"
	"math/bits"
)

// fft transforms x in place: X[k] = Σ x[j]·e^(∓2πi·jk/n), with the minus
// sign forward and the plus sign when inverse (unnormalised: an inverse
// after a forward transform multiplies by n). len(x) is a power of
// two. Radix-2, decimation in time, with the twiddle factors computed
// once each by Sincos, so that rounding grows as log n, not n.
func fft(x []complex128, inverse bool) {
	n := len(x)
	if n < 2 {
		return
	}
	shift := 64 - uint(bits.TrailingZeros(uint(n)))
	for i := range x {
		if j := int(bits.Reverse64(uint64(i)) >> shift); i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	tw := make([]complex128, n/2)
	for k := range tw {
		s, c := math.Sincos(sign * 2 * math.Pi * float64(k) / float64(n))
		tw[k] = complex(c, s)
	}
	for size := 2; size <= n; size <<= 1 {
		half, stride := size/2, n/size
		for start := 0; start < n; start += size {
			a, b := x[start:start+half], x[start+half:start+size]
			for k := range a {
				t := tw[k*stride] * b[k]
				a[k], b[k] = a[k]+t, a[k]-t
			}
		}
	}
}
