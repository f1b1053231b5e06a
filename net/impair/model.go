package impair

import (
	"math/rand/v2"
	"time"
)

// DuplicateGap is how long after the first copy a duplicated packet
// arrives.
const DuplicateGap = time.Millisecond

// Model is a Profile's per-packet fate, without a socket: what Conn does to
// each packet written, for offline traces and simulations that run on a
// clock of their own. The same Profile (and Seed) and the same sequence of
// Send calls give the same fates. A Model is not safe for concurrent use.
type Model struct {
	p        Profile
	rng      *rand.Rand
	bad      bool          // Gilbert–Elliott state
	last     time.Duration // the latest arrival scheduled, for in-order delivery
	rateFree time.Duration // when the bottleneck's link is free again
	queue    []queued      // packets in the bottleneck: waiting, or on the link
	queued   int           // their bytes
}

// queued is a packet in the bottleneck until it has left the link.
type queued struct {
	done time.Duration
	size int
}

// Fate is what happens to one packet.
type Fate struct {
	// Lost is set when the loss model dropped the packet, RateDropped
	// when the bottleneck's queue was full.
	Lost, RateDropped bool
	// Queued is how long the packet waited in the bottleneck's queue
	// for the link (0 without one).
	Queued time.Duration
	// Arrival is when the first copy arrives, on Send's clock; further
	// copies come DuplicateGap apart.
	Arrival time.Duration
	// Copies is how many copies arrive: 0 when dropped, 2 when duplicated.
	Copies int
}

// NewModel returns the model of one direction of path p, seeded by p.Seed.
func NewModel(p Profile) *Model {
	return &Model{p: p, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x5eed))}
}

// Send decides the fate of a packet of size bytes sent at now (any clock
// whose zero is fixed; now must not go backwards).
func (m *Model) Send(now time.Duration, size int) Fate {
	if m.lost() {
		return Fate{Lost: true}
	}
	at, queued, ok := m.when(now, size)
	if !ok {
		return Fate{RateDropped: true}
	}
	f := Fate{Arrival: at, Copies: 1, Queued: queued}
	if m.p.Duplicate > 0 && m.rng.Float64() < m.p.Duplicate {
		f.Copies = 2
	}
	return f
}

// lost advances the loss model by one packet.
func (m *Model) lost() bool {
	g := m.p.Loss
	if g == (GilbertElliott{}) {
		return false
	}
	if m.bad {
		if m.rng.Float64() < g.PGood {
			m.bad = false
		}
	} else if m.rng.Float64() < g.PBad {
		m.bad = true
	}
	if m.bad {
		return m.rng.Float64() < g.LossBad
	}
	return m.rng.Float64() < g.LossGood
}

// when picks a packet's arrival time and its wait in the bottleneck's
// queue, or reports that the queue is full.
func (m *Model) when(now time.Duration, size int) (at, wait time.Duration, ok bool) {
	at = now
	rate := m.p.RateBps
	if m.p.Limit != nil {
		rate = m.p.Limit.Rate()
	}
	if rate > 0 {
		// The link is a FIFO: drop what has left it, then the packet
		// must fit in the queue's bytes (or, by default, wait at most
		// 200 ms for the link).
		for len(m.queue) > 0 && m.queue[0].done <= now {
			m.queued -= m.queue[0].size
			m.queue = m.queue[1:]
		}
		size += m.p.Overhead
		start := max(now, m.rateFree)
		if m.p.QueueBytes > 0 && m.queued+size > m.p.QueueBytes || m.p.QueueBytes <= 0 && start-now > 200*time.Millisecond {
			return 0, 0, false
		}
		m.rateFree = start + time.Duration(int64(size)*8*int64(time.Second)/int64(rate))
		m.queue = append(m.queue, queued{m.rateFree, size})
		m.queued += size
		at, wait = m.rateFree, start-now
	} else {
		m.queue, m.queued = m.queue[:0], 0
	}
	d := m.p.Delay
	if m.p.Jitter > 0 {
		d += time.Duration(m.rng.ExpFloat64() * float64(m.p.Jitter))
	}
	if m.p.SpikeProb > 0 && m.rng.Float64() < m.p.SpikeProb {
		d += m.p.SpikeDelay
	}
	at += d
	if !m.p.Reorder && at < m.last {
		at = m.last
	}
	m.last = max(m.last, at)
	return at, wait, true
}
