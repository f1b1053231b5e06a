package resample

import "fmt"

// Near follows a ratio near 1 (a clock's drift, within ±1 %) by cubic
// (Catmull-Rom) interpolation between the four input samples around each
// output: it holds NearLatency samples back where the sinc converters hold
// Latency, at a cost in the top octave that depends on where between two
// input samples the outputs fall (at worst −0.45 dB at 10 kHz, −2.2 dB at
// 14 kHz). For a live voice's playout, where each sample of delay is
// heard; libsamplerate has no such converter (its linear one holds none
// back but loses 1.8 dB at 10 kHz). Not safe for concurrent use; it does
// not allocate.
type Near struct {
	hist  [4]float32 // the last four input samples, oldest first
	have  int        // of them, the ones the stream has filled (a zero before its first counts)
	pos   float64    // where the next output falls between hist[1] and hist[2], 0 ≤ pos < 1 once filled
	ratio float64
}

// NearLatency is how many input samples Near holds back.
const NearLatency = 2

// maxNearDrift bounds Near's ratios: beyond, its top octave would move
// audibly and Fastest is the converter to use.
const maxNearDrift = 0.01

// NewNear returns a Near at ratio 1.
func NewNear() *Near {
	r := &Near{ratio: 1}
	r.Reset()
	return r
}

// SetRatio sets how many output samples each input sample makes from the
// next Process on; within 1 ± 1 %.
func (r *Near) SetRatio(ratio float64) error {
	if !(ratio >= 1-maxNearDrift && ratio <= 1+maxNearDrift) {
		return fmt.Errorf("resample: ratio %v is not near 1", ratio)
	}
	r.ratio = ratio
	return nil
}

// Process converts as much of in as fits in out and returns how many
// samples it consumed and produced; in a live stream the output trails the
// input by NearLatency samples.
func (r *Near) Process(in, out []float32) (consumed, produced int) {
	step := 1 / r.ratio
	for produced < len(out) {
		for r.have < len(r.hist) || r.pos >= 1 {
			if consumed == len(in) {
				return consumed, produced
			}
			if r.have == len(r.hist) {
				r.pos--
			} else {
				r.have++
			}
			copy(r.hist[:3], r.hist[1:])
			r.hist[3] = in[consumed]
			consumed++
		}
		p0, p1, p2, p3 := r.hist[0], r.hist[1], r.hist[2], r.hist[3]
		t := float32(r.pos)
		out[produced] = p1 + 0.5*t*(p2-p0+t*(2*p0-5*p1+4*p2-p3+t*(3*(p1-p2)+p3-p0)))
		produced++
		r.pos += step
	}
	return consumed, produced
}

// Reset forgets the stream so far, keeping the ratio: for a new stream,
// whose first sample comes out first.
func (r *Near) Reset() {
	r.hist = [4]float32{}
	r.have, r.pos = 1, 0 // a zero before the stream's first sample
}
