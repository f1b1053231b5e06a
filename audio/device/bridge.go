package device

import (
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/drift"
	"github.com/duetapp/duet/audio/resample"
	"github.com/duetapp/duet/audio/ring"
)

// bridge carries the input of one device into the clock of another: the
// input callback writes raw samples into a ring; the output callback reads
// them through a resampler whose ratio a drift tracker steers to keep the
// ring at its target. Neither side blocks or allocates. If the ring runs
// dry (the input device stalled) the output gets silence and the bridge
// refills to its target before reading again; if it overflows, the newest
// input is dropped. Both count as xruns.
type bridge struct {
	ring    *ring.Ring[float32]
	lastIn  atomic.Int64 // when the last input block arrived, ns since epoch
	epoch   time.Time
	tracker *drift.Tracker
	rs      *resample.Resampler
	target  int
	inBlock time.Duration
	delay   time.Duration // mean latency added, see latency
	// output side
	stage      [32]float32 // input taken from the ring, not yet resampled
	stagePos   int
	stageLen   int
	primed     bool
	underruns  atomic.Int64
	overruns   atomic.Int64
	ratioMicro atomic.Int64 // ratio − 1, in ppm, for stats
}

func newBridge(inBlock, outBlock int) (*bridge, error) {
	rs, err := resample.New(resample.Fastest)
	if err != nil {
		return nil, err
	}
	target := drift.Target(inBlock, outBlock)
	return &bridge{
		ring:    ring.New[float32](8 * (inBlock + outBlock)),
		epoch:   time.Now(),
		tracker: drift.New(target),
		rs:      rs,
		target:  target,
		inBlock: audio.Duration(inBlock),
		// The target fill less the blocks' mean sawtooth, plus the
		// resampler's filter.
		delay: audio.Duration(target - (inBlock+outBlock)/2 + resample.Latency),
	}, nil
}

// write is the input stream's side.
func (b *bridge) write(in []float32) {
	if n := b.ring.Write(in); n < len(in) {
		b.overruns.Add(1)
	}
	b.lastIn.Store(int64(time.Since(b.epoch)))
}

// read fills dst with input resampled into the output's clock.
func (b *bridge) read(dst []float32) {
	// What waits: in the ring, taken from it but not yet resampled, and
	// held inside the resampler's filter (a constant at ratios this near 1).
	waiting := b.ring.Len() + b.stageLen - b.stagePos + resample.Latency
	last := b.lastIn.Load()
	if last == 0 {
		clear(dst) // no input yet
		return
	}
	// The input device has captured up to one block since it last
	// delivered; longer means it stalled, which the level will show.
	since := min(time.Duration(int64(time.Since(b.epoch))-last), b.inBlock)
	if !b.primed {
		// Start when the continuous fill (what waits, and what the input
		// device has captured since its last block) reaches the target,
		// dropping any excess (nothing has played yet): the tracker
		// starts with no error to correct.
		fill := waiting + audio.Samples(since)
		if fill < b.target {
			clear(dst)
			return
		}
		for excess := fill - b.target; excess > 0; {
			n := b.ring.Read(b.stage[:min(excess, len(b.stage))])
			if n == 0 {
				break
			}
			excess -= n
			waiting -= n
		}
		b.stagePos, b.stageLen = 0, 0
		b.primed = true
	}
	ratio := b.tracker.Update(waiting, since.Seconds(), audio.Duration(len(dst)).Seconds())
	b.rs.SetRatio(ratio)
	b.ratioMicro.Store(int64((ratio - 1) * 1e6))
	for done := 0; done < len(dst); {
		if b.stagePos == b.stageLen {
			b.stageLen = b.ring.Read(b.stage[:])
			b.stagePos = 0
			if b.stageLen == 0 {
				clear(dst[done:])
				b.underruns.Add(1)
				b.primed = false
				return
			}
		}
		c, p := b.rs.Process(b.stage[b.stagePos:b.stageLen], dst[done:])
		b.stagePos += c
		done += p
	}
}

// latency is the mean delay the bridge adds.
func (b *bridge) latency() time.Duration { return b.delay }

func (b *bridge) close() { b.rs.Close() }
