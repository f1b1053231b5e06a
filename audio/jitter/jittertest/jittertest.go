// Package jittertest replays packet-arrival traces (net/trace) into a
// jitter.Playout on a simulated clock, deterministically and faster than
// real time, and measures it against the oracle: the smallest fixed delay
// that would have kept late loss within a bound on the same trace, found
// in hindsight.
//
// Delays are measured from each packet's baseline: the earliest it could
// have arrived, a line through the trace's fastest packets (arrival against
// RTP timestamp; its slope is the sender's clock drift), so the path's
// fixed delay and the clocks' offset and drift drop out. A packet played at
// baseline + D was delayed D by the receiver. Play times are those of a
// packet's first sample on the simulated clock, where a device block read
// at t starts playing at t.
//
// Simulate plays a clean path instead (see Path): two devices on one clock,
// the sender's blocks framing its packets, the receiver's callbacks
// jittering, rare goroutine stalls; it measures concealment, the delay's
// excursions and how soon the playout settles, against the least delay at
// which every packet is in before the read that plays it.
//
// Nothing here is safe for concurrent use; Replay uses one goroutine.
package jittertest

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/net/trace"
)

// ErrEmpty reports a trace with too few packets to measure.
var ErrEmpty = errors.New("jittertest: trace has fewer than two packets")

// Options shape a replay.
type Options struct {
	// Block is the device block read at a time, in samples; 0 means 128.
	Block int
	// Warmup is how long from the start is left out of the figures (the
	// playout finding its feet); 0 means 5 s.
	Warmup time.Duration
	// MaxLate is the oracle's late-loss bound, a fraction; 0 means 0.01.
	MaxLate float64
}

func (o *Options) defaults() {
	if o.Block <= 0 {
		o.Block = 128
	}
	if o.Warmup <= 0 {
		o.Warmup = 5 * time.Second
	}
	if o.MaxLate <= 0 {
		o.MaxLate = 0.01
	}
}

// Result is what one replay measured after the warmup.
type Result struct {
	// Packets is the distinct packets that arrived, Late those the
	// playout dropped for arriving after their time (LatePct of Packets).
	Packets, Late int
	LatePct       float64
	// MeanDelay and P95Delay are over the packets played: how long after
	// its baseline each played. BufferDelay is W3C's mean
	// jitterBufferDelay: after its arrival. Target is the mean target
	// (W3C jitterBufferTargetDelay over the samples emitted).
	MeanDelay, P95Delay, BufferDelay, Target time.Duration
	// Oracle is the smallest fixed delay from the baseline with late loss
	// within Options.MaxLate on the same packets, reading the same
	// blocks; Ratio is MeanDelay over it.
	Oracle time.Duration
	Ratio  float64
	// ConcealedPct is the share of played samples that were concealed,
	// ConcealPerMin the concealment events per minute of playout,
	// Underruns the waits for a late packet.
	ConcealedPct, ConcealPerMin float64
	Underruns                   int64
	// Stats are the playout's own at the last arrival.
	Stats jitter.PlayoutStats
}

// frameDecoder makes a frame of the trace's length from any packet.
type frameDecoder int

func (d frameDecoder) Decode(_ []byte, pcm []float32) (int, error) {
	clear(pcm[:d])
	return int(d), nil
}

func (frameDecoder) Conceal(pcm []float32) error { clear(pcm); return nil }

// Replay plays tr through a Playout made with cfg (its Frame, Now and
// Played are set here) and measures it. See the package doc.
func Replay(cfg jitter.PlayoutConfig, tr *trace.Trace, o Options) (Result, error) {
	o.defaults()
	if len(tr.Records) < 2 {
		return Result{}, ErrEmpty
	}
	line := fitBaseline(tr)
	run, err := replay(cfg, tr, o, line)
	if err != nil {
		return Result{}, err
	}
	st, warm := run.st, run.warm
	res := Result{
		Packets:   run.packets,
		Late:      int(st.PacketsDiscarded - warm.PacketsDiscarded),
		Underruns: st.Underruns - warm.Underruns,
		Stats:     st,
	}
	if res.Packets > 0 {
		res.LatePct = 100 * float64(res.Late) / float64(res.Packets)
	}
	if played := st.PlayedSamples - warm.PlayedSamples; played > 0 {
		res.ConcealedPct = 100 * float64(st.ConcealedSamples-warm.ConcealedSamples) / float64(played)
		res.ConcealPerMin = float64(st.ConcealmentEvents-warm.ConcealmentEvents) / (float64(played) / 48000 / 60)
	}
	if n := st.JitterBufferEmittedCount - warm.JitterBufferEmittedCount; n > 0 {
		res.BufferDelay = (st.JitterBufferDelay - warm.JitterBufferDelay) / time.Duration(n)
		res.Target = (st.JitterBufferTargetDelay - warm.JitterBufferTargetDelay) / time.Duration(n)
	}
	if delays := run.delays; len(delays) > 0 {
		var sum time.Duration
		for _, d := range delays {
			sum += d
		}
		res.MeanDelay = sum / time.Duration(len(delays))
		slices.Sort(delays)
		res.P95Delay = delays[int(0.95*float64(len(delays)-1))]
	}
	res.Oracle = oracle(tr, line, o)
	if res.Oracle > 0 {
		res.Ratio = float64(res.MeanDelay) / float64(res.Oracle)
	}
	return res, nil
}

// replayRun is what one replay recorded after the warmup.
type replayRun struct {
	delays  []time.Duration // of the packets played, from their baseline
	packets int             // distinct packets that arrived
	// The playout's stats at the warmup's end and at the last arrival.
	warm, st jitter.PlayoutStats
}

// replay plays tr through a Playout made with cfg, reading o.Block samples
// at a time on a simulated clock.
func replay(cfg jitter.PlayoutConfig, tr *trace.Trace, o Options, line baseline) (replayRun, error) {
	var r replayRun
	var now time.Duration
	ts := newTimestamps(tr)
	cfg.Frame = tr.Frame
	cfg.Now = func() time.Duration { return now }
	cfg.Played = func(t uint32, _, played time.Duration) {
		if played >= o.Warmup {
			r.delays = append(r.delays, played-line.at(ts.unwrap(t)))
		}
	}
	p := jitter.NewPlayout(cfg, frameDecoder(tr.Frame))

	out := make([]float32, o.Block)
	payload := []byte{1}
	// The figures stop at the last arrival, before the playout starts to
	// conceal the stream's end; play goes on to hear the packets held.
	last := tr.Records[len(tr.Records)-1].Arrival
	end := last + time.Second
	seen := map[uint32]bool{} // timestamps that came, for duplicates
	next := 0
	for tick := 0; ; tick++ {
		now = time.Duration(tick) * time.Duration(o.Block) * time.Second / 48000
		if now > end {
			break
		}
		if now >= o.Warmup && tick > 0 && r.warm == (jitter.PlayoutStats{}) {
			r.warm = p.Stats()
		}
		for ; next < len(tr.Records) && tr.Records[next].Arrival <= now; next++ {
			rec := tr.Records[next]
			if !seen[rec.TS] && rec.Arrival >= o.Warmup {
				r.packets++
			}
			seen[rec.TS] = true
			p.Insert(rec.Seq, rec.TS, rec.Arrival, payload)
		}
		p.Read(out)
		if now >= last && r.st == (jitter.PlayoutStats{}) {
			r.st = p.Stats()
		}
	}
	return r, nil
}

// Oracle returns the smallest fixed delay from the baseline that would
// have kept late loss within o.MaxLate on tr, for a receiver reading
// o.Block samples at a time (see the package doc).
func Oracle(tr *trace.Trace, o Options) (time.Duration, error) {
	o.defaults()
	if len(tr.Records) < 2 {
		return 0, ErrEmpty
	}
	return oracle(tr, fitBaseline(tr), o), nil
}

// oracle finds the delay by bisection: late loss only falls as it grows.
// A packet due to play at P must have arrived by the read that plays P,
// the last at or before it.
func oracle(tr *trace.Trace, line baseline, o Options) time.Duration {
	type pkt struct{ base, arrival time.Duration }
	var pkts []pkt
	ts := newTimestamps(tr)
	seen := map[uint32]bool{}
	for _, r := range tr.Records {
		b := line.at(ts.unwrap(r.TS))
		if seen[r.TS] || r.Arrival < o.Warmup {
			continue
		}
		seen[r.TS] = true
		pkts = append(pkts, pkt{b, r.Arrival})
	}
	if len(pkts) == 0 {
		return 0
	}
	block := time.Duration(o.Block) * time.Second / 48000
	late := func(d time.Duration) float64 {
		n := 0
		for _, p := range pkts {
			// Reads fall at whole multiples of block from zero.
			if read := (p.base + d) / block * block; p.arrival > read {
				n++
			}
		}
		return float64(n) / float64(len(pkts))
	}
	lo, hi := time.Duration(0), time.Second
	for hi-lo > 10*time.Microsecond {
		mid := (lo + hi) / 2
		if late(mid) <= o.MaxLate {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// timestamps unwraps 32-bit RTP timestamps, seen roughly in order, into
// 64-bit counts from the trace's first.
type timestamps struct {
	first uint32
	high  int64
}

func newTimestamps(tr *trace.Trace) *timestamps { return &timestamps{first: tr.Records[0].TS} }

func (t *timestamps) unwrap(ts uint32) int64 {
	ext := t.high + int64(int32(ts-t.first-uint32(t.high)))
	t.high = max(t.high, ext)
	return ext
}

// baseline is the earliest arrival for a timestamp: the line
// offset + ts·(1+slope)/48000 under every packet.
type baseline struct {
	offset time.Duration
	slope  float64
}

func (b baseline) at(ts int64) time.Duration {
	return b.offset + time.Duration(float64(ts)*(1+b.slope)/48000*float64(time.Second))
}

// fitBaseline fits the line through the fastest packet of each second of
// timestamps (least squares), then lowers it to touch the fastest of all.
func fitBaseline(tr *trace.Trace) baseline {
	type point struct{ x, y float64 } // ts seconds, arrival − ts seconds
	ts := newTimestamps(tr)
	fastest := map[int64]point{}
	all := make([]point, 0, len(tr.Records))
	for _, r := range tr.Records {
		x := float64(ts.unwrap(r.TS)) / 48000
		p := point{x, r.Arrival.Seconds() - x}
		all = append(all, p)
		if f, ok := fastest[int64(math.Floor(x))]; !ok || p.y < f.y {
			fastest[int64(math.Floor(x))] = p
		}
	}
	var n, sx, sy, sxx, sxy float64
	for _, p := range fastest {
		n++
		sx += p.x
		sy += p.y
		sxx += p.x * p.x
		sxy += p.x * p.y
	}
	slope := 0.0
	if d := n*sxx - sx*sx; n >= 2 && d > 0 {
		slope = (n*sxy - sx*sy) / d
	}
	offset := math.Inf(1)
	for _, p := range all {
		offset = min(offset, p.y-slope*p.x)
	}
	return baseline{offset: time.Duration(offset * float64(time.Second)), slope: slope}
}
