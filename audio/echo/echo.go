// Package echo removes the echo of what the speaker plays from what the
// microphone hears, for singers who use speakers instead of headphones.
// Two cancellers from Debian's libraries sit behind one type: speexdsp's
// (Speex) and WebRTC audio processing 0.3's desktop AEC (WebRTC), both
// through cgo.
//
// Samples are mono float32 at 48 kHz. Process takes the device callback's
// blocks, of any size: the microphone block and the block played to the
// speaker in that same callback (the reference). The libraries work in
// frames of their own (WebRTC: 10 ms; Speex: Options.Frame), so a Canceller
// gathers blocks into frames and its output trails its input by up to a
// frame less the largest block size dividing both (Latency): nothing when
// the callback size is the frame, 448 samples (9.3 ms) for 128-sample
// callbacks and a 10 ms frame.
//
// The echo comes back after the device's output and input latency (the
// echo path delay, from calibration; Options.Delay, SetDelay). Speex gets
// the reference delayed by that much, less a safety margin, so its filter
// spends its length on the room; WebRTC is told the delay and aligns the
// reference itself.
//
// Default is WebRTC, from the lab's synthetic room (go run ./cmd/duetlab
// echo: a synthetic singer through a mildly clipping loudspeaker and a
// 200 ms reverberant room, 128-sample callbacks). WebRTC takes the echo
// down by 32 dB after 2 s, keeps the near-end singer within 2.8 dB in double
// talk and holds above 20 dB through a change of room (its nonlinear
// suppressor covers while its filter relearns), for 55–100 µs per 10 ms.
// Its three-band filter bank takes 0.6 dB off the bottom of a voice, which
// a shelf undoes (shelf.go); its band edges (7–8 and 16 kHz) stay notched.
// Its price is latency: 8 ms inside the library plus the bridging to its
// 10 ms frames, 17.3 ms in all at 128-sample callbacks. Speex never touches
// the near-end voice (0.7 dB) and, with Frame set to the callback size,
// adds no latency at all, but on singing its filter converges slowly (16 dB
// after 6 s with 10 ms frames, 23 dB with 128-sample frames; not back to
// 20 dB within 6 s of a room change), costs 2–4 times the CPU and, through
// its DC notch, cuts 2 dB at 100 Hz.
//
// Process and Close belong to the audio thread: Process neither blocks nor
// allocates and makes one cgo call per library frame. SetDelay, Latency and
// Stats are safe from any goroutine.
package echo

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
)

// Kind names a canceller implementation.
type Kind int

// The cancellers.
const (
	Speex  Kind = iota // speexdsp's MDF canceller
	WebRTC             // WebRTC audio processing 0.3, desktop AEC, extended filter
)

func (k Kind) String() string {
	switch k {
	case Speex:
		return "speex"
	case WebRTC:
		return "webrtc"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Kinds lists the cancellers.
func Kinds() []Kind { return []Kind{Speex, WebRTC} }

// ErrKind is returned by New for a Kind it does not know.
var ErrKind = errors.New("echo: unknown canceller")

// Limits and defaults.
const (
	// MaxDelay is the longest echo path delay a Canceller follows.
	MaxDelay = 500 * time.Millisecond
	// DefaultTail is Speex's filter length beyond the echo path delay.
	DefaultTail = 200 * time.Millisecond
	// DefaultFrame is Speex's frame when Options.Frame is 0: 10 ms.
	DefaultFrame = audio.SampleRate / 100
	// margin is how much of Speex's filter reaches before the stated delay,
	// for a calibration a little off.
	margin = audio.SampleRate * 2 / 1000
)

// Options configure a Canceller. The zero value is what singing wants: no
// noise suppression, no AGC, no residual echo suppression.
type Options struct {
	// Delay is the echo path delay: the output plus input latency of the
	// device, as calibrated. SetDelay changes it later.
	Delay time.Duration
	// Tail is how long an echo Speex models beyond Delay (its filter
	// length); 0 means DefaultTail. WebRTC's filter is 128 ms long.
	Tail time.Duration
	// Frame is Speex's frame in samples. Make it the device callback size
	// and Speex adds no latency; a small frame costs more CPU. 0 means
	// DefaultFrame. WebRTC's frame is always 10 ms.
	Frame int
	// NoiseSuppression removes steady background noise (and with it some
	// breath and reverb of the voice).
	NoiseSuppression bool
	// AGC levels the voice, undoing dynamics the singer means.
	AGC bool
	// SuppressResidual lets Speex's preprocessor suppress the echo its
	// filter leaves. It costs the near-end voice in double talk.
	SuppressResidual bool
	// EstimateDelay lets WebRTC find the delay itself instead of trusting
	// Delay.
	EstimateDelay bool
}

// engine is one library's canceller working in whole frames.
type engine interface {
	// process cancels one frame; delay is the echo path delay in samples
	// for engines that align the reference themselves. False when the
	// library refused the frame (out is then undefined).
	process(mic, ref, out []float32, delay int) bool
	// delay is how far the library's output trails its input, in samples.
	delay() int
	close()
}

// Canceller removes echo from a microphone stream. See the package doc.
type Canceller struct {
	kind  Kind
	eng   engine
	frame int

	// One library frame being gathered, and its output.
	mic, ref, res []float32
	fill          int

	// line delays the reference for Speex (alignRef); pos is the next write.
	line     []float32
	pos      int
	alignRef bool

	// q is the output waiting to be given out, a ring of cap 2 frames.
	q      []float32
	qr, qn int

	delay   atomic.Int64 // echo path delay, samples
	latency atomic.Int64 // added latency, samples
	refused atomic.Int64 // frames the library refused
}

// New returns a canceller of the given kind.
func New(kind Kind, o Options) (*Canceller, error) {
	c := &Canceller{kind: kind}
	switch kind {
	case Speex:
		c.frame = o.Frame
		if c.frame <= 0 {
			c.frame = DefaultFrame
		}
		tail := o.Tail
		if tail <= 0 {
			tail = DefaultTail
		}
		s, err := newSpeex(c.frame, audio.Samples(tail)+margin, o)
		if err != nil {
			return nil, err
		}
		c.eng = s
		c.alignRef = true
		c.line = make([]float32, audio.Samples(MaxDelay)+1)
	case WebRTC:
		c.frame = webrtcFrame
		a, err := newWebRTC(o)
		if err != nil {
			return nil, err
		}
		c.eng = a
	default:
		return nil, fmt.Errorf("%w: %d", ErrKind, int(kind))
	}
	c.mic = make([]float32, c.frame)
	c.ref = make([]float32, c.frame)
	c.res = make([]float32, c.frame)
	c.q = make([]float32, 2*c.frame)
	c.SetDelay(o.Delay)
	c.latency.Store(int64(c.eng.delay()))
	return c, nil
}

// Kind returns the canceller's implementation.
func (c *Canceller) Kind() Kind { return c.kind }

// SetDelay sets the echo path delay (clamped to 0…MaxDelay). Safe from any
// goroutine; takes effect from the next frame, and the canceller then
// reconverges.
func (c *Canceller) SetDelay(d time.Duration) {
	c.delay.Store(int64(audio.Samples(min(max(d, 0), MaxDelay))))
}

// Delay returns the echo path delay in use.
func (c *Canceller) Delay() time.Duration { return audio.Duration(int(c.delay.Load())) }

// Latency returns how long the output trails the microphone: up to a
// library frame, depending on the callback sizes seen so far (it settles
// within a few dozen callbacks of a steady size). Safe from any goroutine.
func (c *Canceller) Latency() time.Duration { return audio.Duration(c.LatencySamples()) }

// LatencySamples is Latency in samples.
func (c *Canceller) LatencySamples() int { return int(c.latency.Load()) }

// Refused returns how many frames the library refused (passed through
// silent). Safe from any goroutine.
func (c *Canceller) Refused() int64 { return c.refused.Load() }

// Process writes to out the microphone block mic with the echo of ref
// removed; ref is what was played to the speaker in the same callback. All
// three have the same length, any length. Audio thread only: it neither
// blocks nor allocates. After Close it copies mic to out.
func (c *Canceller) Process(mic, ref, out []float32) {
	if c.eng == nil {
		copy(out, mic)
		return
	}
	for len(mic) > 0 {
		n := min(len(mic), c.frame-c.fill)
		copy(c.mic[c.fill:], mic[:n])
		if c.alignRef {
			c.delayRef(ref[:n], c.ref[c.fill:c.fill+n])
		} else {
			copy(c.ref[c.fill:], ref[:n])
		}
		c.fill += n
		if c.fill == c.frame {
			c.fill = 0
			if !c.eng.process(c.mic, c.ref, c.res, int(c.delay.Load())) {
				c.refused.Add(1)
				clear(c.res)
			}
			c.push(c.res)
		}
		c.pop(out[:n])
		mic, ref, out = mic[n:], ref[n:], out[n:]
	}
}

// delayRef writes in into the delay line and reads out what was written
// the echo path delay (less the margin) ago.
func (c *Canceller) delayRef(in, out []float32) {
	d := max(int(c.delay.Load())-margin, 0)
	size := len(c.line)
	for i, v := range in {
		c.line[c.pos] = v
		r := c.pos - d
		if r < 0 {
			r += size
		}
		out[i] = c.line[r]
		c.pos++
		if c.pos == size {
			c.pos = 0
		}
	}
}

func (c *Canceller) push(p []float32) {
	w := (c.qr + c.qn) % len(c.q)
	k := copy(c.q[w:], p)
	copy(c.q, p[k:])
	c.qn += len(p)
}

// pop gives out the oldest queued output. When the queue holds too little
// (the callback size left a frame unfinished) it gives silence first and
// grows the latency by as much, once: the queue then always has enough.
func (c *Canceller) pop(out []float32) {
	if short := len(out) - c.qn; short > 0 {
		clear(out[:short])
		out = out[short:]
		c.latency.Add(int64(short))
	}
	k := copy(out, c.q[c.qr:min(c.qr+len(out), len(c.q))])
	copy(out[k:], c.q[:len(out)-k])
	c.qr = (c.qr + len(out)) % len(c.q)
	c.qn -= len(out)
}

// Close frees the library's canceller; safe to call twice. Not concurrently
// with Process.
func (c *Canceller) Close() {
	if c.eng != nil {
		c.eng.close()
		c.eng = nil
	}
}
