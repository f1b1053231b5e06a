// Package meter measures signal levels for display (peak and RMS, dBFS)
// without making the audio thread do the arithmetic: the audio thread only
// copies each block into a lock-free ring; Level, called by whoever displays
// the meter (typically 20–60 times a second), drains the ring and measures
// what arrived since its last call.
//
// Write belongs to the audio thread; Level may be called from any goroutine.
// When nobody reads the meter the ring fills and Write drops blocks: a
// meter nobody looks at costs nothing.
package meter

import (
	"math"
	"sync"

	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/ring"
)

// Silent is the level reported for silence, in dBFS.
const Silent = -120.0

// Level is a signal's level over an interval, in dBFS (0 = full scale).
type Level struct {
	Peak, RMS float64
}

// Meter measures one signal. See the package doc.
type Meter struct {
	ring *ring.Ring[float32]

	mu   sync.Mutex // guards buf and the ring's consumer side
	buf  []float32
	last Level
}

// New returns a meter that holds up to about half a second between reads.
func New() *Meter {
	return &Meter{ring: ring.New[float32](1 << 15), buf: make([]float32, 1<<15), last: Level{Peak: Silent, RMS: Silent}}
}

// Write hands one block to the meter. Audio thread only; never blocks.
func (m *Meter) Write(p []float32) {
	m.ring.Write(p)
}

// Level drains what was written since the last call and returns its level;
// with nothing new it repeats the last level (Silent before any audio).
func (m *Meter) Level() Level {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.ring.Read(m.buf)
	if n == 0 {
		return m.last
	}
	p := m.buf[:n]
	m.last = Level{Peak: dbfs(measure.Peak(p)), RMS: dbfs(measure.RMS(p))}
	return m.last
}

func dbfs(v float64) float64 {
	return math.Max(Silent, measure.DBFS(v))
}
