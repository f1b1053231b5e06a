package jittertest

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/jitter"
)

// Path is a clean path between two audio devices on one clock, as two JACK
// clients on one machine talking over loopback: the sender's callback
// captures a block, its encoder sends every frame completed in it at once,
// and each packet reaches the receiver's reader some fraction of a
// millisecond later (encoding, SRTP, UDP, goroutine wake-ups), in order.
// The receiver's callback runs once a block, at a fixed phase from the
// sender's, give or take the scheduler's jitter; a packet in by then is
// inserted, and the block read then plays at the block's true instant.
type Path struct {
	// Block is both devices' block, Frame the samples per packet; 0 means
	// 128 and 64.
	Block, Frame int
	// Phase is how long after the sender's callback the receiver's runs,
	// modulo a block (JACK runs both in one cycle: a few µs).
	Phase time.Duration
	// NetMin…NetMax bounds each packet's delay from the sender's callback
	// to the receiver's reader, uniform; both 0 mean 0.1…0.3 ms.
	NetMin, NetMax time.Duration
	// CallbackJitter: the receiver's callbacks run up to this early or
	// late, uniform.
	CallbackJitter time.Duration
	// HiccupEvery: on average one packet in HiccupEvery is held up by
	// HiccupMin…HiccupMax (the sender's encoder or the receiver's reader
	// goroutine stalls), and the packets behind it with it; 0: none.
	HiccupEvery          int
	HiccupMin, HiccupMax time.Duration
	// FirstHiccup holds up every packet that reaches the receiver in the
	// stream's first 50 ms…50 ms+FirstHiccup until then: its reader
	// stalls once while the stream starts (threads starting, JACK's graph
	// changing as ports connect), during the playout's first measuring.
	FirstHiccup time.Duration
	// Duration is how long the sender sends; 0 means a minute.
	Duration time.Duration
	Seed     uint64
	// DeviceClock reads with ReadAt at the device's smoothed block instant
	// (audio.BlockClock over the callbacks' instants), as the app's
	// pipeline can; false reads with Read, at the wall clock of the
	// callback.
	DeviceClock bool
}

func (p *Path) defaults() {
	if p.Block <= 0 {
		p.Block = 128
	}
	if p.Frame <= 0 {
		p.Frame = 64
	}
	if p.NetMin == 0 && p.NetMax == 0 {
		p.NetMin, p.NetMax = 100*time.Microsecond, 300*time.Microsecond
	}
	if p.Duration <= 0 {
		p.Duration = time.Minute
	}
}

// PathResult is what Simulate measured. Delays are from the instant a
// packet's frame was complete at the sender (its last sample captured) to
// the true instant its first sample played: what the path and the playout
// add to the codec's frame and look-ahead.
type PathResult struct {
	// Packets sent, Hit by a hiccup (or queued behind one), Played
	// (decoded), Late (dropped for arriving after their time).
	Packets, Hit, Played, Late int
	// ConcealEvents are runs of concealment from the first sound on;
	// ConcealPerMin per minute of playout. Underruns are waits for a late
	// packet.
	ConcealEvents int64
	ConcealPerMin float64
	Underruns     int64
	// MeanDelay is over all packets played; Steady is the median delay
	// over the second half of the run.
	MeanDelay, Steady time.Duration
	// Oracle is the least constant delay at which every packet not hit by
	// a hiccup is in by the read that plays its first sample (a playout
	// that decodes nothing ahead and holds no samples back).
	Oracle time.Duration
	// MaxExcursion is the most a played packet's delay rose above Steady;
	// Jumps counts the times it went more than 1 ms above, HighPct the
	// share of packets played that much above.
	MaxExcursion time.Duration
	Jumps        int
	JumpsPerMin  float64
	HighPct      float64
	// Start is when the first sound played, Settle when the delay last
	// left Steady ± 0.5 ms in the run's first half (at least Start); both
	// from the first packet's arrival.
	Start, Settle time.Duration
	// Target is the playout's mean target (W3C jitterBufferTargetDelay
	// over the samples emitted); Stats its final figures.
	Target time.Duration
	Stats  jitter.PlayoutStats
}

// Simulate plays p's packets through a Playout made with cfg (its Frame,
// Now and Played are set here), deterministically from p.Seed, and
// measures it. See Path.
func Simulate(cfg jitter.PlayoutConfig, p Path) (PathResult, error) {
	p.defaults()
	arrivals, hit := p.arrivals()
	run, err := p.run(cfg, arrivals)
	if err != nil {
		return PathResult{}, err
	}
	st, atStart := run.st, run.atStart
	r := PathResult{Packets: len(arrivals), Played: len(run.plays), Stats: st,
		Late:          int(st.PacketsDiscarded - atStart.PacketsDiscarded),
		ConcealEvents: st.ConcealmentEvents - atStart.ConcealmentEvents,
		Underruns:     st.Underruns - atStart.Underruns,
	}
	for j := range hit {
		if hit[j] {
			r.Hit++
		} else if o := run.avail[j] - dur((j+1)*p.Frame); o > r.Oracle && run.avail[j] > 0 {
			r.Oracle = o
		}
	}
	if n := st.JitterBufferEmittedCount; n > 0 {
		r.Target = st.JitterBufferTargetDelay / time.Duration(n)
	}
	if len(run.plays) > 0 {
		r.delays(run.plays, run.started, arrivals[0])
	}
	return r, nil
}

// play is one packet played: the true instant its first sample played,
// and its delay (see PathResult).
type play struct{ at, delay time.Duration }

// pathRun is what one run of a Path recorded.
type pathRun struct {
	plays   []play
	avail   []time.Duration // true instant of the read each packet is first in for
	started time.Duration   // when the first sound played; -1: never
	// The playout's stats at the last arrival and when it started to play.
	st, atStart jitter.PlayoutStats
}

// run plays arrivals (see arrivals) through a Playout made with cfg, the
// receiver's callbacks running once a block.
func (p *Path) run(cfg jitter.PlayoutConfig, arrivals []time.Duration) (pathRun, error) {
	const ts0, seq0 = 1 << 31, 65000
	var cur time.Duration // the wall clock
	var corr time.Duration
	r := pathRun{avail: make([]time.Duration, len(arrivals)), started: -1}
	cfg.Frame = p.Frame
	cfg.Now = func() time.Duration { return cur }
	cfg.Played = func(ts uint32, _, played time.Duration) {
		j := int((ts - ts0) / uint32(p.Frame))
		at := played - corr
		r.plays = append(r.plays, play{at, at - dur((j+1)*p.Frame)})
	}
	pl := jitter.NewPlayout(cfg, frameDecoder(p.Frame))

	rng := rand.New(rand.NewPCG(p.Seed, 2))
	var clock audio.BlockClock
	out := make([]float32, p.Block)
	payload := []byte{1}
	next := 0
	end := arrivals[len(arrivals)-1] + 2*dur(p.Block)
	for m := 0; ; m++ {
		instant := dur(m*p.Block) + p.Phase
		if instant > end {
			break
		}
		cur = instant
		if p.CallbackJitter > 0 {
			cur += time.Duration((2*rng.Float64() - 1) * float64(p.CallbackJitter))
		}
		for ; next < len(arrivals) && arrivals[next] <= cur; next++ {
			r.avail[next] = instant
			pl.Insert(uint16(seq0+next), uint32(ts0+next*p.Frame), arrivals[next], payload)
		}
		if p.DeviceClock {
			now := time.Duration(clock.Tick(int64(cur), p.Block))
			corr = now - instant
			pl.ReadAt(out, now)
		} else {
			corr = cur - instant
			pl.Read(out)
		}
		if instant <= arrivals[len(arrivals)-1] {
			// The figures stop at the last arrival, before the playout
			// conceals the stream's end.
			r.st = pl.Stats()
		}
		if r.started < 0 && len(r.plays) > 0 {
			r.started = r.plays[0].at
			r.atStart = pl.Stats()
			// The first read that played may have been partly silence.
			r.atStart.ConcealmentEvents, r.atStart.Underruns = 0, 0
		}
	}
	return r, nil
}

// delays fills in the figures of the packets' delays: the steady delay,
// excursions above it, when the first sound played (started) and when the
// delay settled, from the first packet's arrival (first).
func (r *PathResult) delays(plays []play, started, first time.Duration) {
	minutes := (plays[len(plays)-1].at - started).Minutes()
	if minutes > 0 {
		r.ConcealPerMin = float64(r.ConcealEvents) / minutes
	}
	second := make([]time.Duration, 0, len(plays)/2+1)
	for _, pl := range plays[len(plays)/2:] {
		second = append(second, pl.delay)
	}
	slices.Sort(second)
	r.Steady = second[len(second)/2]
	r.Start, r.Settle = started-first, started-first
	var sum time.Duration
	high := false
	halfway := plays[len(plays)/2].at
	for _, pl := range plays {
		sum += pl.delay
		e := pl.delay - r.Steady
		r.MaxExcursion = max(r.MaxExcursion, e)
		if pl.at < halfway && (e > 500*time.Microsecond || e < -500*time.Microsecond) {
			r.Settle = max(r.Settle, pl.at-first)
		}
		if e > time.Millisecond {
			r.HighPct++
			if !high {
				r.Jumps++
			}
		}
		high = e > time.Millisecond
	}
	r.MeanDelay = sum / time.Duration(len(plays))
	r.HighPct *= 100 / float64(len(plays))
	if minutes > 0 {
		r.JumpsPerMin = float64(r.Jumps) / minutes
	}
}

// arrivals returns when each packet reaches the receiver's reader, and
// whether a hiccup held it up.
func (p *Path) arrivals() ([]time.Duration, []bool) {
	rng := rand.New(rand.NewPCG(p.Seed, 1))
	n := int(p.Duration / dur(p.Frame))
	at := make([]time.Duration, n)
	hit := make([]bool, n)
	var stall time.Duration // a stalled goroutine passes nothing on before
	for j := range n {
		// Frame j is sent by the callback after the block that completes
		// it: the sender's callback for samples up to (k+1)·Block runs at
		// that instant.
		k := ((j+1)*p.Frame + p.Block - 1) / p.Block
		a := dur(k*p.Block) + p.NetMin + time.Duration(rng.Float64()*float64(p.NetMax-p.NetMin))
		if j > 0 {
			a = max(a, at[j-1]) // in order, like one goroutine on loopback
		}
		if stall > 0 && a <= stall {
			a, hit[j] = stall, true
		}
		if first := at[0] + 50*time.Millisecond; j > 0 && p.FirstHiccup > 0 && a >= first && a < first+p.FirstHiccup {
			a, hit[j] = first+p.FirstHiccup, true
		}
		if p.HiccupEvery > 0 && rng.IntN(p.HiccupEvery) == 0 {
			stall = a + p.HiccupMin + time.Duration(rng.Float64()*float64(p.HiccupMax-p.HiccupMin))
			a, hit[j] = stall, true
		}
		at[j] = a
	}
	return at, hit
}

// dur is how long n samples last.
func dur(n int) time.Duration { return audio.Duration(n) }
