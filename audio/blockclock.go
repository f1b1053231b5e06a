package audio

import "math"

// BlockClock turns the jittery instants at which a device's callbacks run
// into a smooth timeline: the instant each block's first sample passed the
// converter, from a second-order delay-locked loop over the sample count
// (F. Adriaensen, "Using a DLL to filter time", 2005). The track player and
// the recorder need that, not the scheduler's whims. It belongs to the
// audio thread.
type BlockClock struct {
	// CatchesUp says the device runs every block it owes (see CatchUp):
	// no run of late callbacks is then taken for skipped blocks.
	CatchesUp bool

	t0, per float64 // filtered time of the current block, ns per sample
	b, c    float64
	n       int // the current block's length
	off     int // samples since they went more than maxStep off it
	started bool
	late    bool    // the last callback came a block or more after its time
	lateBy  float64 // by how much, ns
	lateRun int     // callbacks in a row late by skipLate blocks, not catching up
	stalls  int
	skipped int
}

// blockClockHz is the loop's bandwidth: slow enough to average callback
// jitter over seconds, fast enough to settle within a few.
const blockClockHz = 0.5

// A callback late by a stalled thread (and the quick ones that catch up
// after it, within the stall's length) says nothing about the device's
// clock: each error counts for at most maxStep, and one beyond resyncAfter
// not at all. An offset that lasts resyncSamples is real (an xrun dropped
// samples, the device restarted): the timeline moves to it at once, the
// rate it learnt kept, instead of gliding there.
const (
	maxStep       = 1e6  // ns
	resyncAfter   = 20e6 // ns
	resyncSamples = SampleRate / 10
)

// Blocks skipped show as skipRun callbacks in a row late by skipLate
// blocks or more, each at least three quarters of a block after the last
// (not catching up).
// skipLate is less than one: the timeline sits at the callbacks' mean
// lateness, so a skipped block can measure a little under one (a stall
// is counted from a whole block). Three, not two: a timer-paced device on
// a loaded machine (the tests' and the lab's) catches up so slowly that
// two callbacks can look like a skip, and did in duetlab track.
const (
	skipLate = 0.75
	skipRun  = 3
)

// Tick takes the instant now (ns on any monotonic clock) at which the
// callback for a block of n samples runs, and returns the filtered instant
// of that block's start.
func (c *BlockClock) Tick(now int64, n int) int64 {
	t := float64(now)
	if !c.started {
		c.started = true
		c.t0 = t
		c.per = 1e9 / SampleRate
		omega := 2 * math.Pi * blockClockHz * float64(n) / SampleRate
		c.b, c.c = math.Sqrt2*omega, omega*omega
		c.n = n
		return now
	}
	predicted := c.t0 + c.per*float64(c.n)
	c.n = n
	e := t - predicted
	// A whole block late: its deadline passed before the callback ran,
	// so the device played or took that block without us (an xrun, or a
	// stall a larger buffer would have hidden). The callbacks after a
	// stall are late by as much till they catch up: one stall each.
	block := c.per * float64(n)
	late := e >= block
	if late && !c.late {
		c.stalls++
	}
	switch {
	case c.CatchesUp || e < skipLate*block:
		c.lateRun = 0
	case c.lateRun > 0 && e > c.lateBy-block/4:
		c.lateRun++
	default:
		c.lateRun = 1
	}
	if c.lateRun >= skipRun {
		// The device went on without us (JACK skips a client that
		// misses its cycle; an xrun), so its timeline moved by the
		// whole blocks it played meanwhile.
		c.lateRun = 0
		k := math.Round(e / block)
		c.t0 += k * block
		predicted += k * block
		e -= k * block
		c.skipped += int(k) * n
		if math.Abs(e) > maxStep {
			// Not whole blocks (the device's timeline itself moved):
			// follow it all, as a resync would.
			c.t0 += e
			predicted += e
			e = 0
		}
		late = false
	}
	c.late, c.lateBy = late, e
	if math.Abs(e) > maxStep {
		if c.off += n; c.off >= resyncSamples {
			c.t0, c.off = t, 0 // a real jump: follow it, keep the rate
			return now
		}
	} else {
		c.off = 0
	}
	if math.Abs(e) > resyncAfter {
		c.t0 = predicted
		return int64(math.Round(c.t0))
	}
	e = max(-maxStep, min(maxStep, e))
	c.t0 = predicted + c.b*e
	c.per += c.c * e / float64(c.n)
	return int64(math.Round(c.t0))
}

// Skipped counts the samples the device played (and captured) without a
// callback: blocks it went on without us after a stall, seen as a callback
// late by a block or more and the next not catching up. Tick's timeline
// has moved past them already; what plays must skip them too, or be that
// much late for good.
func (c *BlockClock) Skipped() int { return c.skipped }

// Stalls counts the callbacks that ran a block or more after their time,
// a run of them (the stall and the catch-up after it) once: the times
// this computer's audio missed a deadline.
func (c *BlockClock) Stalls() int { return c.stalls }
