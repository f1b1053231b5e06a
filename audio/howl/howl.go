// Package howl detects acoustic feedback (howling) in a mono 48 kHz
// stream, so that the caller can mute the send and tell the singer why.
//
// Howl is one loop gain above 1 at one frequency: a single sinusoid that
// grows steadily from round trip to round trip, at a frequency that does
// not move. Singing is different on each count: a voice has harmonics, a
// held note wavers with vibrato (±30 cents at 5–6 Hz), and a note grows
// only for its attack. The Detector looks at the spectrum every 10 ms
// (2048-point Hann FFT), follows the strongest peak while it holds most of
// the energy and stays within ±10 cents, and reports howl once that peak has
// kept rising for 110 ms (at least 1 dB in each half; a fast howl is found
// within about 150–200 ms of its start) or for 470 ms at a slower rate.
//
// It cannot tell a straight tone with no vibrato that the singer swells on
// purpose from howl; a singer rarely does that for long.
//
// Process belongs to the audio thread: it neither blocks nor allocates.
// Howling is safe from any goroutine.
package howl

import (
	"math"
	"math/cmplx"
	"sync/atomic"

	"github.com/duetapp/duet/audio"
)

const (
	size  = 2048                   // FFT length, samples
	hop   = audio.SampleRate / 100 // analysis every 10 ms
	lowHz = 80                     // peaks below are ignored
	// floor is the peak level, in dBFS of a sine's amplitude, below which
	// nothing counts as howl.
	floor = -60.0
	// tonal is the share of the energy the peak must hold.
	tonal = 0.5
	// cents is how far the peak may move from where its track started.
	cents = 10.0
	// maxStep is the largest rise in one hop, in dB, that is still growth
	// rather than a note's attack.
	maxStep = 6.0
	// history is how many hops of a track's levels are kept.
	history = 48
)

// Detector finds howl in one stream. See the package doc.
type Detector struct {
	buf  []float32 // the last size samples, a ring
	pos  int       // next write in buf
	fill int       // samples since the last analysis

	win []float64    // Hann window
	x   []complex128 // FFT work
	tw  []complex128 // twiddles
	rev []int        // bit reversal

	track   float64   // Hz where the current track started; 0 = none
	levels  []float64 // the track's levels, dBFS, a ring of history
	n       int       // hops in the track
	howling bool

	hz atomic.Uint64 // math.Float64bits of the howl's Hz; 0 = none
}

// New returns a detector.
func New() *Detector {
	d := &Detector{
		buf:    make([]float32, size),
		win:    make([]float64, size),
		x:      make([]complex128, size),
		tw:     make([]complex128, size/2),
		rev:    make([]int, size),
		levels: make([]float64, history),
	}
	for i := range d.win {
		d.win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/size)
	}
	for i := range d.tw {
		d.tw[i] = cmplx.Rect(1, -2*math.Pi*float64(i)/size)
	}
	bits := 0
	for 1<<bits < size {
		bits++
	}
	for i := range d.rev {
		r := 0
		for b := range bits {
			r |= (i >> b & 1) << (bits - 1 - b)
		}
		d.rev[i] = r
	}
	return d
}

// Process looks at the next block and reports whether the stream howls.
// Audio thread only.
func (d *Detector) Process(p []float32) bool {
	for len(p) > 0 {
		n := min(len(p), hop-d.fill)
		for _, v := range p[:n] {
			d.buf[d.pos] = v
			d.pos = (d.pos + 1) % size
		}
		d.fill += n
		p = p[n:]
		if d.fill == hop {
			d.fill = 0
			d.analyse()
		}
	}
	return d.howling
}

// Howling returns the frequency of the howl found, if any. Safe from any
// goroutine.
func (d *Detector) Howling() (hz float64, ok bool) {
	hz = math.Float64frombits(d.hz.Load())
	return hz, hz != 0
}

// Reset forgets what was heard, for after the caller has muted the loop.
// Audio thread only.
func (d *Detector) Reset() {
	clear(d.buf)
	d.fill, d.track, d.n, d.howling = 0, 0, 0, false
	d.hz.Store(0)
}

func (d *Detector) analyse() {
	for i := range d.x {
		d.x[d.rev[i]] = complex(float64(d.buf[(d.pos+i)%size])*d.win[i], 0)
	}
	d.fft()
	lo := lowHz * size / audio.SampleRate
	var total, peak float64
	k := lo
	for i := lo; i < size/2-1; i++ {
		pw := real(d.x[i])*real(d.x[i]) + imag(d.x[i])*imag(d.x[i])
		total += pw
		if pw > peak {
			peak, k = pw, i
		}
	}
	var around float64 // the Hann window's main lobe
	for i := max(k-2, 0); i <= k+2; i++ {
		around += real(d.x[i])*real(d.x[i]) + imag(d.x[i])*imag(d.x[i])
	}
	// A sine of amplitude A peaks at A·size/4 through a Hann window.
	level := 20 * math.Log10(math.Sqrt(peak)*4/size+1e-12)
	if total == 0 || around/total < tonal || level < floor {
		d.end()
		return
	}
	// Parabolic interpolation on the log spectrum gives the frequency to a
	// small fraction of a bin.
	a, b, c := math.Log(cmplx.Abs(d.x[k-1])+1e-20), math.Log(cmplx.Abs(d.x[k])+1e-20), math.Log(cmplx.Abs(d.x[k+1])+1e-20)
	delta := 0.0
	if den := a - 2*b + c; den != 0 {
		delta = 0.5 * (a - c) / den
	}
	hz := (float64(k) + delta) * audio.SampleRate / size
	if d.track == 0 || math.Abs(1200*math.Log2(hz/d.track)) > cents {
		d.end()
		d.track = hz
	}
	d.levels[d.n%history] = level
	d.n++
	if !d.howling && d.grows() {
		d.howling = true
		d.hz.Store(math.Float64bits(hz))
	}
}

// grows applies the growth rules to the track: over its last hops, each
// half must have risen by at least dB, with no jump like an attack.
func (d *Detector) grows() bool {
	rules := [...]struct {
		hops int
		dB   float64
	}{{12, 1}, {history, 1.5}}
	at := func(back int) float64 { return d.levels[(d.n-1-back)%history] }
	for _, r := range rules {
		if d.n < r.hops {
			continue
		}
		steady := true
		for i := range r.hops - 1 {
			if at(i)-at(i+1) > maxStep {
				steady = false
				break
			}
		}
		half := r.hops / 2
		if steady && at(0)-at(half) >= r.dB && at(half)-at(r.hops-1) >= r.dB {
			return true
		}
	}
	return false
}

// end ends the current track.
func (d *Detector) end() {
	d.track, d.n = 0, 0
	if d.howling {
		d.howling = false
		d.hz.Store(0)
	}
}

// fft transforms d.x in place (radix 2, input already bit-reversed).
func (d *Detector) fft() {
	for m := 2; m <= size; m <<= 1 {
		step := size / m
		for s := 0; s < size; s += m {
			for j := range m / 2 {
				t := d.tw[j*step] * d.x[s+j+m/2]
				u := d.x[s+j]
				d.x[s+j] = u + t
				d.x[s+j+m/2] = u - t
			}
		}
	}
}
