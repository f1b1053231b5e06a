// Package resample changes a mono stream's rate by a ratio that may change
// while it runs, through libsamplerate (Secret Rabbit Code, cgo). Duet uses
// it to follow clock drift: a microphone on one sound card heard through
// another's clock, where the ratio sits within a few hundred ppm of 1 and
// moves a little every block.
//
// libsamplerate glides from one ratio to the next across a block, so
// steering it makes no click. speexdsp's resampler was tried first and
// dropped: for a ratio just below 1 it builds a sinc table of filter length
// × the ratio's denominator (megabytes, recomputed on every change), and a
// fine denominator overflows its 32-bit phase arithmetic and crashes.
//
// A Resampler is not safe for concurrent use; Process neither blocks nor
// allocates.
package resample

/*
#cgo pkg-config: samplerate
#include <samplerate.h>

// duet_process runs src_process with an SRC_DATA on the C stack, so that no
// Go memory holds the Go pointers it passes.
static int duet_process(SRC_STATE *st, const float *in, long nin, float *out, long nout,
		double ratio, long *used, long *made) {
	SRC_DATA d = {0};
	d.data_in = in;
	d.input_frames = nin;
	d.data_out = out;
	d.output_frames = nout;
	d.src_ratio = ratio;
	int e = src_process(st, &d);
	*used = d.input_frames_used;
	*made = d.output_frames_gen;
	return e;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
)

// Quality picks libsamplerate's converter.
type Quality int

// The converters: Fastest is a band-limited sinc (97 dB SNR, 80 % of the
// band), fine for following drift live; Best is for offline work.
const (
	Fastest Quality = C.SRC_SINC_FASTEST
	Medium  Quality = C.SRC_SINC_MEDIUM_QUALITY
	Best    Quality = C.SRC_SINC_BEST_QUALITY
)

// Resampler converts one mono stream. See the package doc.
type Resampler struct {
	st         *C.SRC_STATE
	ratio      float64
	used, made C.long // fields, so Process does not allocate
}

// New returns a resampler at ratio 1.
func New(q Quality) (*Resampler, error) {
	var cerr C.int
	st := C.src_new(C.int(q), 1, &cerr)
	if st == nil {
		return nil, fmt.Errorf("resample: %s", C.GoString(C.src_strerror(cerr)))
	}
	return &Resampler{st: st, ratio: 1}, nil
}

// Ratio returns the output samples made per input sample.
func (r *Resampler) Ratio() float64 { return r.ratio }

// SetRatio sets how many output samples each input sample makes from the
// next Process on (above 1 stretches, below 1 shrinks), gliding there
// across that call. It must be within 1/256…256.
func (r *Resampler) SetRatio(ratio float64) error {
	if r.st == nil {
		return errors.New("resample: closed")
	}
	if !(ratio > 0) || C.src_is_valid_ratio(C.double(ratio)) == 0 {
		return fmt.Errorf("resample: ratio %v out of range", ratio)
	}
	r.ratio = ratio
	return nil
}

// Process converts as much of in as fits in out and returns how many
// samples it consumed and produced. It holds a filter's worth of input
// back (Latency), so in a live stream the output trails the input by that
// much.
func (r *Resampler) Process(in, out []float32) (consumed, produced int) {
	if len(in) == 0 || len(out) == 0 || r.st == nil {
		return 0, 0
	}
	e := C.duet_process(r.st, (*C.float)(&in[0]), C.long(len(in)), (*C.float)(&out[0]), C.long(len(out)),
		C.double(r.ratio), &r.used, &r.made)
	if e != 0 {
		return 0, 0
	}
	return int(r.used), int(r.made)
}

// Reset forgets the stream so far (what the filter holds), keeping the
// ratio: for a new stream.
func (r *Resampler) Reset() {
	if r.st != nil {
		C.src_reset(r.st)
	}
}

// Close frees the resampler; safe to call twice. Afterwards Process does
// nothing and SetRatio fails.
func (r *Resampler) Close() {
	if r.st != nil {
		C.src_delete(r.st)
		r.st = nil
	}
}

// Latency is how many input samples the Fastest converter holds back at
// ratios near 1: the delay it adds to a live stream (TestLatency measures
// it).
const Latency = 20

// Convert resamples a whole recording from one rate to another at the best
// quality, for files decoded at their own rate (a backing track at
// 44.1 kHz). The result has round(len(in) × to/from) samples, aligned with
// the input: sample i of in sits at i × to/from in the output.
func Convert(in []float32, from, to int) ([]float32, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("resample: bad rates %d → %d", from, to)
	}
	if from == to {
		return in, nil
	}
	r, err := New(Best)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ratio := float64(to) / float64(from)
	if err := r.SetRatio(ratio); err != nil {
		return nil, err
	}
	want := int(math.Round(float64(len(in)) * ratio))
	out := make([]float32, want)
	// The filter needs input beyond the last sample to let the last outputs
	// go: silence, as much as the longest filter looks ahead.
	in = append(in[:len(in):len(in)], make([]float32, 8192)...)
	made := 0
	for made < want && len(in) > 0 {
		used, n := r.Process(in, out[made:])
		if used == 0 && n == 0 {
			return nil, errors.New("resample: converter stalled")
		}
		in = in[used:]
		made += n
	}
	return out[:made], nil
}
