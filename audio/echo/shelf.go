package echo

import "math"

// shelf is a low-shelf biquad (RBJ's cookbook) that WebRTC's output goes
// through: audio processing's three-band filter bank (48 kHz split into
// 0–8, 8–16 and 16–24 kHz; not perfect reconstruction, as its source says)
// takes 0.58 dB off everything below 200 Hz, less up to 800 Hz — the
// bottom of a singing voice (measured with no far end, where the AEC passes
// its bands through untouched). Gain, corner and slope are fitted to that
// response: flat within 0.15 dB from 30 Hz to 6 kHz with the shelf, 0.58
// without (TestWebRTCFlat). The notches at the band edges (3.5 dB at 8 and
// 16 kHz, 0.5 dB already at 7 kHz) are too narrow to undo with one shelf
// and are left.
type shelf struct {
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64
}

// Three-band filter bank's low-frequency loss, undone.
const (
	bankShelfHz    = 350
	bankShelfDB    = 0.64
	bankShelfSlope = 0.95
)

func newShelf(hz, db, slope float64, rate int) *shelf {
	a := math.Pow(10, db/40)
	w := 2 * math.Pi * hz / float64(rate)
	cw := math.Cos(w)
	alpha := math.Sin(w) / 2 * math.Sqrt((a+1/a)*(1/slope-1)+2)
	sa := 2 * math.Sqrt(a) * alpha
	a0 := (a + 1) + (a-1)*cw + sa
	return &shelf{
		b0: a * ((a + 1) - (a-1)*cw + sa) / a0,
		b1: 2 * a * ((a - 1) - (a+1)*cw) / a0,
		b2: a * ((a + 1) - (a-1)*cw - sa) / a0,
		a1: -2 * ((a - 1) + (a+1)*cw) / a0,
		a2: ((a + 1) + (a-1)*cw - sa) / a0,
	}
}

// run filters p in place.
func (s *shelf) run(p []float32) {
	for i, v := range p {
		x := float64(v)
		y := s.b0*x + s.b1*s.x1 + s.b2*s.x2 - s.a1*s.y1 - s.a2*s.y2
		s.x2, s.x1, s.y2, s.y1 = s.x1, x, s.y1, y
		p[i] = float32(y)
	}
}
