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
// Near follows the same kind of drift by cubic interpolation, in Go: 2
// samples held back against the sinc's 20, for the partner's voice, whose
// every sample of delay a singer hears (with 64-sample blocks, 3.2 ms port
// to port became 2.8); the split devices' bridge keeps the sinc.
//
// A Converter changes a whole recording's rate at the best quality, for
// song files decoded at their own rate: it takes the recording in pieces
// and holds its output to a limit.
//
// A Resampler, Near or Converter is not safe for concurrent use; Process
// neither blocks nor allocates.
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

// ErrTooLong reports a recording whose conversion would pass a
// Converter's limit.
var ErrTooLong = errors.New("resample: longer than the limit")

// Converter resamples one recording that arrives in pieces, from one fixed
// rate to another at the best quality, for files decoded at their own rate
// (a backing track at 44.1 kHz). Its output never grows past the limit it
// was made with. Given the recording's length beforehand (Reserve), it
// allocates the output once; else it gathers it in blocks and joins them
// at the end, holding twice the output at most. Its other memory is a
// fixed amount held in C. A Converter is not safe for concurrent use.
type Converter struct {
	r      *Resampler // nil when the rates are equal
	ratio  float64
	limit  int
	in     int64       // input samples written
	blocks [][]float32 // the output: each block full but the last
	made   int         // samples in blocks
}

// block is how many samples the output grows by when its length was not
// reserved: 256 kB.
const block = 1 << 16

// NewConverter returns a converter from rate from to rate to whose output
// may hold at most limit samples.
func NewConverter(from, to, limit int) (*Converter, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("resample: bad rates %d → %d", from, to)
	}
	c := &Converter{ratio: float64(to) / float64(from), limit: max(0, limit)}
	if from == to {
		return c, nil
	}
	r, err := New(Best)
	if err != nil {
		return nil, err
	}
	if err := r.SetRatio(c.ratio); err != nil {
		r.Close()
		return nil, err
	}
	c.r = r
	return c, nil
}

// outLen is the output length of n input samples: round(n × to/from).
func (c *Converter) outLen(n int64) int64 { return int64(math.Round(float64(n) * c.ratio)) }

// Reserve sizes the output, before the first Write, for a recording of n
// input samples in all, so that it is allocated once; it fails with
// ErrTooLong, allocating nothing, if that would pass the limit.
func (c *Converter) Reserve(n int64) error {
	want := c.outLen(n)
	if n < 0 || want > int64(c.limit) {
		return ErrTooLong
	}
	if len(c.blocks) == 0 && want > 0 {
		c.blocks = [][]float32{make([]float32, 0, want)}
	}
	return nil
}

// room returns the free end of the output's last block, adding a block
// when it is full; nil at the limit.
func (c *Converter) room() []float32 {
	if n := len(c.blocks); n > 0 {
		if last := c.blocks[n-1]; len(last) < cap(last) {
			return last[len(last):cap(last)]
		}
	}
	if c.made >= c.limit {
		return nil
	}
	b := make([]float32, 0, min(block, c.limit-c.made))
	c.blocks = append(c.blocks, b)
	return b[:cap(b)]
}

// grew counts n samples just written into room.
func (c *Converter) grew(n int) {
	last := &c.blocks[len(c.blocks)-1]
	*last = (*last)[:len(*last)+n]
	c.made += n
}

// Write converts p, the next piece of the recording. It fails with
// ErrTooLong, converting nothing, once the output would pass the limit.
func (c *Converter) Write(p []float32) error {
	if c.outLen(c.in+int64(len(p))) > int64(c.limit) {
		return ErrTooLong
	}
	c.in += int64(len(p))
	for len(p) > 0 {
		room := c.room()
		if room == nil {
			// The filter trails its input, so this does not happen; if
			// it did, the rest could only make samples past the limit,
			// which Finish would cut.
			return nil
		}
		if c.r == nil {
			n := copy(room, p)
			p = p[n:]
			c.grew(n)
			continue
		}
		used, n := c.r.Process(p, room)
		if used == 0 && n == 0 {
			return errors.New("resample: converter stalled")
		}
		p = p[used:]
		c.grew(n)
	}
	return nil
}

// Finish lets the filter give out its last samples and returns the whole
// output: round(n × to/from) samples for n written, aligned with the input
// (input sample i sits at i × to/from).
func (c *Converter) Finish() ([]float32, error) {
	want := int(c.outLen(c.in))
	// The filter needs input beyond the last sample to let the last
	// outputs go: silence, as much as it looks ahead (a few hundred
	// samples at Best).
	var silence [1024]float32
	for idle := 0; c.made < want && c.r != nil; {
		room := c.room()
		_, n := c.r.Process(silence[:], room[:min(len(room), want-c.made)])
		if n == 0 {
			if idle++; idle == 64 {
				return nil, errors.New("resample: converter stalled")
			}
		}
		c.grew(n)
	}
	if len(c.blocks) == 1 && c.made == want && cap(c.blocks[0]) == want {
		return c.blocks[0], nil // reserved and filled
	}
	// Joined, or cut to what came when the reservation was too long.
	out := make([]float32, 0, min(want, c.made))
	for _, b := range c.blocks {
		out = append(out, b[:min(len(b), want-len(out))]...)
	}
	return out, nil
}

// Close frees the converter's C memory; safe to call twice.
func (c *Converter) Close() {
	if c.r != nil {
		c.r.Close()
	}
}
