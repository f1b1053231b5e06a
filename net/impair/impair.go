// Package impair makes a network worse on purpose, reproducibly: a
// net.PacketConn whose outgoing packets are delayed (a base delay plus
// jitter with occasional spikes), lost in bursts (a Gilbert–Elliott
// model), duplicated, reordered or squeezed through a rate limit, all from
// a seeded generator. This kernel has no netem, so Duet's lab does it in
// user space, on the very sockets WebRTC uses (ICE takes the Conn through
// a UDP mux).
//
// Only writes are impaired: give each peer its own Conn and both
// directions are. A Conn owns one goroutine that delivers delayed packets;
// Close stops it. Methods are safe for concurrent use.
package impair

import (
	"container/heap"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Profile describes one direction of a network path.
type Profile struct {
	Name string
	// Delay is the base one-way delay; Jitter the mean of an exponential
	// extra delay on top of it.
	Delay, Jitter time.Duration
	// SpikeProb is the chance a packet meets a queueing spike of
	// SpikeDelay more (Wi-Fi retries, a busy router).
	SpikeProb  float64
	SpikeDelay time.Duration
	// Reorder lets a packet overtake an earlier one whose extra delay was
	// longer; without it delivery keeps send order (jitter bunches packets
	// up instead), as most real paths do.
	Reorder bool
	// Loss is a Gilbert–Elliott bursty loss model; zero is no loss.
	Loss GilbertElliott
	// Duplicate is the chance a packet is delivered twice.
	Duplicate float64
	// RateBps limits the throughput in bits per second (0 = none): the
	// path's bottleneck, a link of that rate behind a drop-tail queue.
	RateBps int
	// QueueBytes is the bottleneck's queue, in bytes: a packet that does
	// not fit behind those waiting is dropped. 0 means 200 ms of RateBps.
	QueueBytes int
	// Overhead is what each packet costs the bottleneck beyond the bytes
	// written, in bytes: 28 charges the IPv4 and UDP headers a real
	// link carries (WireOverhead); 0 charges the datagram alone.
	Overhead int
	// Limit, if set, is the bottleneck's rate instead of RateBps, which
	// the lab may change while the path is in use (a link that narrows
	// or widens).
	Limit *Limit
	// Observe, if set, is told each packet and its fate as it is
	// written, on the writer's goroutine (it must not block, nor keep
	// the packet): the lab measures the bottleneck's queue (Fate.Queued)
	// and what crosses it there.
	Observe func(packet []byte, f Fate)
	Seed    uint64
	// Cut, if set, is a switch the lab throws to take the path down (a
	// network outage) and up again; while down every packet is lost.
	Cut *Cut
}

// Cut takes a path down while it is down. Its zero value is up; safe for
// concurrent use.
type Cut struct{ down atomic.Bool }

// Set takes the path down (true) or brings it back up.
func (c *Cut) Set(down bool) { c.down.Store(down) }

// Down reports whether the path is down.
func (c *Cut) Down() bool { return c.down.Load() }

// WireOverhead is what an IPv4 network carries for a UDP datagram beyond
// its payload, in bytes: the IP (20) and UDP (8) headers.
const WireOverhead = 28

// Limit is a bottleneck's rate in bits per second (0: none) that can
// change while a path is in use. Safe for concurrent use.
type Limit struct{ bps atomic.Int64 }

// NewLimit returns a Limit of bps bits per second.
func NewLimit(bps int) *Limit {
	l := &Limit{}
	l.Set(bps)
	return l
}

// Set makes the rate bps bits per second; 0 lifts the limit. Packets
// already queued keep the times they were given.
func (l *Limit) Set(bps int) { l.bps.Store(int64(max(bps, 0))) }

// Rate returns the rate in bits per second; 0 is none.
func (l *Limit) Rate() int { return int(l.bps.Load()) }

// GilbertElliott is a two-state loss model: in the good state packets are
// lost with probability LossGood, in the bad state with LossBad; each packet
// moves good→bad with probability PBad and bad→good with PGood. Mean loss
// is (PBad·LossBad + PGood·LossGood) / (PBad + PGood).
type GilbertElliott struct {
	PBad, PGood       float64
	LossGood, LossBad float64
}

// Bursty returns a model with the given mean loss in bursts of about
// burst packets (a bad state that loses half its packets).
func Bursty(mean float64, burst float64) GilbertElliott {
	if mean <= 0 {
		return GilbertElliott{}
	}
	const lossBad = 0.5
	pGood := 1 / burst
	// mean = pBad·lossBad / (pBad + pGood)  →  pBad = mean·pGood / (lossBad − mean)
	return GilbertElliott{PBad: mean * pGood / (lossBad - mean), PGood: pGood, LossBad: lossBad}
}

// Scenarios are the named paths of Duet's lab.
func Scenarios() []Profile {
	return []Profile{
		{Name: "lan", Delay: 200 * time.Microsecond, Jitter: 50 * time.Microsecond},
		{Name: "cable", Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond},
		{Name: "wifi", Delay: 3 * time.Millisecond, Jitter: 2 * time.Millisecond, SpikeProb: 0.01, SpikeDelay: 40 * time.Millisecond, Loss: Bursty(0.005, 3)},
		{Name: "continent", Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: Bursty(0.01, 2)},
		{Name: "mobile", Delay: 60 * time.Millisecond, Jitter: 30 * time.Millisecond, Loss: Bursty(0.05, 4), RateBps: 300_000},
	}
}

// Stats count what the Conn did to the packets written to it.
type Stats struct {
	Sent, Lost, Duplicated, RateDropped int
}

// Conn is an impaired PacketConn: a Model applied to the packets written,
// on the wall clock. See the package doc.
type Conn struct {
	net.PacketConn

	mu      sync.Mutex
	model   *Model
	cut     *Cut
	observe func([]byte, Fate)
	start   time.Time // the model's time zero
	queue   packets
	stats   Stats
	written uint64
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// New wraps conn; writes through the result are impaired by p.
func New(conn net.PacketConn, p Profile) *Conn {
	c := &Conn{
		PacketConn: conn,
		model:      NewModel(p),
		cut:        p.Cut,
		observe:    p.Observe,
		start:      time.Now(),
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	go c.deliver()
	return c
}

type packet struct {
	at   time.Time
	n    uint64 // write order, to break ties
	data []byte
	addr net.Addr
}

type packets []packet

func (q packets) Len() int { return len(q) }
func (q packets) Less(i, j int) bool {
	if q[i].at.Equal(q[j].at) {
		return q[i].n < q[j].n
	}
	return q[i].at.Before(q[j].at)
}
func (q packets) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packets) Push(x any)   { *q = append(*q, x.(packet)) }
func (q *packets) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// WriteTo schedules b for delivery to addr after the profile's delay, or
// drops it; either way it reports success, as a network would.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	now := time.Now()
	c.mu.Lock()
	f := c.model.Send(now.Sub(c.start), len(b))
	c.stats.Sent++
	if c.cut != nil && c.cut.Down() {
		f = Fate{Lost: true}
	}
	if c.observe != nil {
		defer c.observe(b, f) // after the unlock below
	}
	switch {
	case f.Lost:
		c.stats.Lost++
	case f.RateDropped:
		c.stats.RateDropped++
	default:
		if f.Copies > 1 {
			c.stats.Duplicated++
		}
		for i := range f.Copies {
			c.written++
			at := c.start.Add(f.Arrival + time.Duration(i)*DuplicateGap)
			heap.Push(&c.queue, packet{at: at, n: c.written, data: append([]byte(nil), b...), addr: addr})
		}
	}
	c.mu.Unlock()
	if f.Copies > 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return len(b), nil
}

func (c *Conn) deliver() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		var due []packet
		now := time.Now()
		for c.queue.Len() > 0 && !c.queue[0].at.After(now) {
			due = append(due, heap.Pop(&c.queue).(packet))
		}
		next := time.Hour
		if c.queue.Len() > 0 {
			next = c.queue[0].at.Sub(now)
		}
		c.mu.Unlock()
		for _, p := range due {
			c.PacketConn.WriteTo(p.data, p.addr) // a real network does not report delivery
		}
		timer.Reset(next)
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// Stats returns what the Conn has done so far.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close stops delivery (packets still queued are lost, as on a cut link)
// and closes the underlying conn.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.stop) })
	<-c.done
	return c.PacketConn.Close()
}
