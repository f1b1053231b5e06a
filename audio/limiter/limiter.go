// Package limiter protects ears from sudden loud sound at the output: a peak
// limiter with no look-ahead (so no added latency) that never lets a
// sample past its ceiling.
//
// The gain follows a peak envelope: the envelope jumps to any sample above
// it (instant attack: the ceiling holds from the first loud sample), holds
// for 10 ms so that a loud low note is not distorted cycle by cycle, then
// falls back with a 100 ms time constant, so that the gain recovers
// smoothly. While the envelope is at or below the ceiling the gain is
// exactly 1: below the ceiling the limiter is transparent, bit for bit.
// NaN and infinite samples become silence.
//
// Samples are float32 at 48 kHz. Process belongs to the audio thread and
// neither blocks nor allocates; Reduction is safe from any goroutine.
package limiter

import (
	"math"
	"sync/atomic"

	"github.com/duetapp/duet/audio"
)

// DefaultCeiling is the ceiling Duet uses, in dBFS.
const DefaultCeiling = -1.0

const (
	hold    = audio.SampleRate / 100 // 10 ms
	release = 0.1                    // seconds, time constant
)

// Limiter limits one mono stream. See the package doc.
type Limiter struct {
	ceiling float32
	fall    float32 // envelope factor per sample in release
	env     float32
	held    int // samples of hold left

	deepest atomic.Uint32 // math.Float32bits of the lowest gain since Reduction
}

// New returns a limiter with its ceiling at ceilingDB dBFS (≤ 0).
func New(ceilingDB float64) *Limiter {
	l := &Limiter{
		ceiling: float32(math.Pow(10, min(ceilingDB, 0)/20)),
		fall:    float32(math.Exp(-1 / (release * audio.SampleRate))),
	}
	l.deepest.Store(math.Float32bits(1))
	return l
}

// Process limits p in place. Audio thread only.
func (l *Limiter) Process(p []float32) {
	lowest := float32(1)
	for i, v := range p {
		a := v
		if a < 0 {
			a = -a
		}
		if !(a <= math.MaxFloat32) { // NaN or ±Inf
			p[i], a = 0, 0
		}
		switch {
		case a >= l.env:
			l.env, l.held = a, hold
		case l.held > 0:
			l.held--
		default:
			l.env *= l.fall
		}
		if l.env > l.ceiling {
			g := l.ceiling / l.env
			// The clamp only catches float rounding (an ulp or so).
			p[i] = min(max(p[i]*g, -l.ceiling), l.ceiling)
			lowest = min(lowest, g)
		}
	}
	if lowest < 1 {
		for {
			old := l.deepest.Load()
			if lowest >= math.Float32frombits(old) || l.deepest.CompareAndSwap(old, math.Float32bits(lowest)) {
				break
			}
		}
	}
}

// Reduction returns the deepest gain reduction since the last call, in dB
// (0 = none): for a meter or a warning. Safe from any goroutine.
func (l *Limiter) Reduction() float64 {
	g := math.Float32frombits(l.deepest.Swap(math.Float32bits(1)))
	return -20 * math.Log10(float64(g))
}
