// Package resample changes a mono stream's rate by a ratio that may change
// while it runs, through speexdsp's resampler (libspeexdsp, cgo). Duet uses
// it to follow clock drift: a microphone on one sound card heard through
// another's clock, where the ratio sits within a few hundred ppm of 1 and
// must move smoothly.
//
// speexdsp keeps its fractional phase across ratio changes, so changing the
// ratio makes no click; it delays the signal by InputLatency samples (about
// 0.5 ms at quality 3). A Resampler is not safe for concurrent use; Process
// neither blocks nor allocates.
package resample

// #cgo pkg-config: speexdsp
// #include <speex/speex_resampler.h>
import "C"

import (
	"fmt"
	"math"

	"github.com/duetapp/duet/audio"
)

// ratioDen is the denominator of the ratios given to speexdsp: fine enough
// for steps of 0.02 ppm.
// ratioDen is the denominator of the ratios given to speexdsp. Ratio steps
// are 1/ratioDen (21 ppm, 0.036 cents of pitch: inaudible; a drift
// controller dithers between neighbours). Larger denominators overflow
// speexdsp's 32-bit phase arithmetic when the ratio changes, and crash it
// (seen with 4 × 48000 here).
const ratioDen = audio.SampleRate

// Resampler converts one mono stream. See the package doc.
type Resampler struct {
	st    *C.SpeexResamplerState
	ratio float64
	// in and out lengths handed to C; fields, so Process does not allocate.
	inLen, outLen C.spx_uint32_t
}

// New returns a resampler at ratio 1 with speexdsp quality 0 (fastest) to
// 10 (best); 3 is a good balance for live audio.
func New(quality int) (*Resampler, error) {
	var cerr C.int
	st := C.speex_resampler_init(1, audio.SampleRate, audio.SampleRate, C.int(quality), &cerr)
	if st == nil || cerr != 0 {
		return nil, fmt.Errorf("resample: init quality %d: %s", quality, C.GoString(C.speex_resampler_strerror(cerr)))
	}
	r := &Resampler{st: st, ratio: 1}
	C.speex_resampler_skip_zeros(st)
	return r, nil
}

// Ratio returns the output samples made per input sample, as set (rounded
// to a step of 1/ratioDen).
func (r *Resampler) Ratio() float64 { return r.ratio }

// SetRatio sets how many output samples each input sample makes: above 1
// stretches, below 1 shrinks. It must be within 0.5…2.
func (r *Resampler) SetRatio(ratio float64) error {
	if !(ratio >= 0.5 && ratio <= 2) {
		return fmt.Errorf("resample: ratio %v out of range", ratio)
	}
	num := C.spx_uint32_t(math.Round(ratioDen / ratio))
	if e := C.speex_resampler_set_rate_frac(r.st, num, ratioDen, audio.SampleRate, audio.SampleRate); e != 0 {
		return fmt.Errorf("resample: ratio %v: %s", ratio, C.GoString(C.speex_resampler_strerror(e)))
	}
	r.ratio = ratioDen / float64(num)
	return nil
}

// InputLatency is the delay the resampler adds, in input samples.
func (r *Resampler) InputLatency() int {
	return int(C.speex_resampler_get_input_latency(r.st))
}

// Process converts as much of in as fits in out and returns how many
// samples it consumed and produced.
func (r *Resampler) Process(in, out []float32) (consumed, produced int) {
	if len(in) == 0 || len(out) == 0 {
		return 0, 0
	}
	r.inLen = C.spx_uint32_t(len(in))
	r.outLen = C.spx_uint32_t(len(out))
	C.speex_resampler_process_float(r.st, 0, (*C.float)(&in[0]), &r.inLen, (*C.float)(&out[0]), &r.outLen)
	return int(r.inLen), int(r.outLen)
}

// Close frees the resampler; safe to call twice.
func (r *Resampler) Close() {
	if r.st != nil {
		C.speex_resampler_destroy(r.st)
		r.st = nil
	}
}
