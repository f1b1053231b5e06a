// Package mix sums mono sources with per-source gain, on the audio thread.
//
// A Mixer pulls one block from each of its inputs and adds them, scaled by
// their gains. Inputs are added before the mixer is used; gains and mutes
// may then be changed from any goroutine (they are atomics), everything else
// belongs to the audio thread. A Mixer is itself a Source, so mixes nest: the
// host's send mix is the mix-minus of its guest simply because the guest's
// voice is not one of its inputs.
package mix

import (
	"math"
	"sync/atomic"
)

// Source fills out completely with its next samples. Called on the audio
// thread: it must not block or allocate.
type Source interface {
	Read(out []float32)
}

// Input is one source of a Mixer with its gain.
type Input struct {
	src   Source
	gain  atomic.Uint32 // math.Float32bits of the linear gain
	muted atomic.Bool
}

// SetGain sets the linear gain (1 = unity). Safe from any goroutine.
func (in *Input) SetGain(g float32) { in.gain.Store(math.Float32bits(g)) }

// Gain returns the linear gain.
func (in *Input) Gain() float32 { return math.Float32frombits(in.gain.Load()) }

// SetMuted silences the input without losing its gain. Safe from any
// goroutine.
func (in *Input) SetMuted(m bool) { in.muted.Store(m) }

// Muted reports whether the input is muted.
func (in *Input) Muted() bool { return in.muted.Load() }

// Mixer sums its inputs. See the package doc.
type Mixer struct {
	inputs  []*Input
	scratch []float32
}

// New returns a mixer for blocks of up to maxBlock samples.
func New(maxBlock int) *Mixer {
	return &Mixer{scratch: make([]float32, maxBlock)}
}

// Add adds src at linear gain g. Call before the mixer is used.
func (m *Mixer) Add(src Source, g float32) *Input {
	in := &Input{src: src}
	in.SetGain(g)
	m.inputs = append(m.inputs, in)
	return in
}

// Read fills out (at most maxBlock samples) with the sum of the inputs.
// Muted and zero-gain inputs are still read, so their sources keep time.
func (m *Mixer) Read(out []float32) {
	clear(out)
	tmp := m.scratch[:len(out)]
	for _, in := range m.inputs {
		in.src.Read(tmp)
		g := in.Gain()
		if in.Muted() || g == 0 {
			continue
		}
		for i, v := range tmp {
			out[i] += g * v
		}
	}
}

// Live is a Source that plays back the block most recently given to Set: the
// way the current microphone block enters a mix on the audio thread.
type Live struct {
	block []float32
}

// Set makes p the block the next Read returns. The caller keeps ownership;
// Live only reads it, and only until the next Set.
func (l *Live) Set(p []float32) { l.block = p }

// Read copies the current block into out, zero-padding if it is shorter.
func (l *Live) Read(out []float32) {
	n := copy(out, l.block)
	clear(out[n:])
}
