package jitter

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio/drift"
	"github.com/duetapp/duet/audio/resample"
)

// Playout is the adaptive playout of one incoming voice, around a Buffer.
//
// Its delay is measured where it matters, on the reads' clock: each
// packet counts from the first read it was in for (see delayWindow), so a
// burst of packets framed by the sender's device blocks, and the phase of
// the receiver's blocks against them, are in the measure once. The target
// is a high quantile of those transits (Quantile, moved by the user's Bias;
// 99.8 % where that costs a quarter millisecond at most: freeQuantile)
// plus what playout itself takes between decoding a packet and playing its
// first sample: the resampler's latency, measured. A packet within the
// quantile is then in before the read that decodes it, and nothing more is
// added: not a device block (the reads' grid is in the measure already),
// nor a resampler chunk (the resampler is fed only what each read needs,
// and decoding starts on frame boundaries).
//
// It starts once it has measured 300 ms of packets (measureFirst), playing
// the first packet held exactly at the target; older ones are dropped. It
// grows at once when packets come late while it is below its target (the
// Buffer conceals while it waits, in steps of Config.WaitStep, and the lag
// grows by the wait); at its target a late packet counts as lost, so a lone
// one costs its frame's concealment, not a lasting rise in delay. When
// more packets come late than the bias allows, the quantile tightens (see
// noteLate). It moves toward a changed target, and follows the sender's clock drift, only
// by playing a little faster or slower through a resampler steered by a
// drift tracker: never by dropping or repeating frames, and at most 0.1 %
// (1.7 cents), which no singer hears; so it shrinks slowly, at most 1 ms a
// second. The one exception is a device that went on without our reads
// (Skip): the voice those reads would have played is dropped at once,
// behind the device's own glitch, not played that much late.
//
// Times are on one clock: Insert's arrivals and ReadAt's play instants
// (Now's clock for Read). Pass ReadAt the device's smoothed block instant
// (audio.BlockClock) where there is one: the callback's wall clock jitters
// with the scheduler, and the measure with it.
//
// Insert and Read belong to the audio thread, Stats to anyone.
type Playout struct {
	buf     *Buffer
	delays  *delayWindow
	tracker *drift.Tracker
	rs      *resample.Near
	now     func() time.Duration
	frame   int // samples per packet, from the config

	// Packets inserted since the last read: they are in for the next.
	pendTS  [64]uint32
	pendArr [64]int64
	pending int

	stage    [32]float32  // decoded audio waiting for the resampler
	discard  [256]float32 // what Skip plays to no one
	stagePos int
	stageLen int
	held     float64 // input samples inside the resampler
	lag      int64   // the last packet's play instant less its timestamp, samples
	lagKnown bool
	base     int64 // a transit from the start, keeping the tracker's numbers small
	based    bool
	decodes  int // the Buffer's count of packets decoded, at the last look
	// Where the next read should start (samples), and how far reads
	// stray from that, on average.
	lastRead   int64
	block      int // the last read's length, samples
	readJitter float64
	// The log of how much fewer packets the quantile lets be late than the
	// bias says, ≤ 0: see noteLate.
	tighten   float64
	lateShare float64 // of packets, averaged
	// The most samples between decoding a packet and playing its first,
	// this second and the last; leadAt is when this second began.
	lead   [2]int
	leadAt int64

	target   atomic.Int64  // samples, from the fastest arrivals; see Stats
	quantile atomic.Uint64 // float64 bits, set by SetBias
	ratioPPM atomic.Int64
	jitterUS atomic.Int64
}

// guard is how long before a read runs a packet must have come to count
// as in for it, in samples (0.125 ms; more while the sender's clock runs
// slow, see flush). One that came closer made it by a hair's breadth: as
// the callbacks jitter, or the clocks drift, the next like it may miss, so
// it counts for the next read. The need then rises while such packets are
// still in time, and playout follows it before the first is late. A larger
// guard costs a block of delay at more phases of the reads against the
// arrivals; a smaller one trusts the jitter's tail less.
const guard = 6

// margin is added to the target, in samples: the reads' instants and the
// resampler's hold are known to a sample or two, and the packets that set
// the need are in by exactly that.
const margin = 4

// measureFirst is how much of the stream a Playout measures before it
// starts, in samples: 300 ms, many periods of any framing pattern, and
// enough packets (225 of Opus Custom's) that one stall as the stream
// starts — a thread holding up 3 or 4 packets — stays outside the 2 %
// tail the start is set by. In 100 ms (75 packets) it was the tail, and
// playout started milliseconds high and drained them at 1 ms a second
// (TestFirstHiccup). Until it starts the need is the plain quantile of
// what was measured (see delayWindow.held).
const measureFirst = 14400

// PlayoutConfig adds to Config what adaptation needs.
type PlayoutConfig struct {
	Config
	// Bias is the user's choice from tight (-1: least delay, about 2 %
	// of packets late on a jittery link) to safe (+1: more delay, about
	// 0.2 % late); 0, the default, keeps late loss within 1 %. See
	// BiasQuantile; SetBias changes it while playing.
	Bias float64
	// Quantile, if set, overrides Bias: the share of packets that must
	// arrive in time, 0.5…0.9999.
	Quantile float64
	// Now is the clock of Insert's arrival times and of Read; nil means a
	// monotonic clock starting at New. ReadAt takes its instant on the
	// same clock.
	Now func() time.Duration
}

// NewPlayout returns an adaptive playout decoding through dec.
func NewPlayout(cfg PlayoutConfig, dec Decoder) *Playout {
	if cfg.Quantile <= 0 {
		cfg.Quantile = BiasQuantile(cfg.Bias)
	}
	cfg.Quantile = max(0.5, min(0.9999, cfg.Quantile))
	if cfg.Now == nil {
		start := time.Now()
		cfg.Now = func() time.Duration { return time.Since(start) }
	}
	rs := resample.NewNear()
	if cfg.WaitLimit == 0 {
		cfg.WaitLimit = cfg.Frame // spikes cost concealment, not lasting delay
	}
	p := &Playout{
		buf:     New(cfg.Config, dec),
		delays:  newDelayWindow(cfg.Quantile),
		tracker: drift.New(0),
		rs:      rs,
		now:     cfg.Now,
		frame:   cfg.Frame,
	}
	p.buf.manual = true
	p.quantile.Store(math.Float64bits(cfg.Quantile))
	return p
}

// BiasQuantile maps the user's bias, -1 (tight) … +1 (safe), to the
// quantile of relative delay the playout waits for: 0.95 … 0.98 … 0.998,
// evenly on a log scale of the share allowed late; a Playout tightens it
// while more than 2/5 of that share come late. Measured on the lab's
// traces (duetlab jitter), 0.98 keeps late loss within 0.85 % at 1.02 to
// 1.23 times the oracle's delay on the jittery paths.
func BiasQuantile(bias float64) float64 {
	bias = max(-1, min(1, bias))
	late := 0.02 * math.Pow(10, -bias) // +1: 0.002
	if bias < 0 {
		late = 0.02 * math.Pow(2.5, -bias) // -1: 0.05
	}
	return 1 - late
}

// SetBias moves the tight ↔ safe bias (see PlayoutConfig.Bias) while
// playing; the target follows within a second or so. Safe from any
// goroutine.
func (p *Playout) SetBias(bias float64) {
	p.quantile.Store(math.Float64bits(BiasQuantile(bias)))
}

// Now returns the playout's clock, for stamping arrivals.
func (p *Playout) Now() time.Duration { return p.now() }

// samples converts an instant to samples without overflowing (d*48000
// would after 53 h).
func samples(d time.Duration) int64 {
	return int64(d/time.Second)*48000 + int64(d%time.Second)*48000/int64(time.Second)
}

// Insert stores a packet that arrived at arrival (on Now's clock) for
// playout. It counts as in for the next read.
func (p *Playout) Insert(seq uint16, timestamp uint32, arrival time.Duration, payload []byte) {
	if p.pending == len(p.pendTS) {
		// More than a read's worth: measure them from the last arrival.
		last := p.pendArr[p.pending-1]
		p.flush(last, last, 0)
	}
	p.pendTS[p.pending], p.pendArr[p.pending] = timestamp, samples(arrival)
	p.pending++
	late := p.buf.stats.late.Load()
	p.buf.insert(seq, timestamp, arrival, payload)
	p.noteLate(p.buf.stats.late.Load() != late)
}

// noteLate steers the quantile by the share of packets that came too late
// to play, averaged over about ten seconds: above the goal the bias sets
// (0.8 % at the default), the quantile rises, up to ten times fewer late;
// below it, it falls back to the bias's, never lower. A path whose delay
// has a long tail gets the margin its tail needs, one with a short tail
// keeps the least delay.
func (p *Playout) noteLate(late bool) {
	goal := (1 - math.Float64frombits(p.quantile.Load())) / 2.5
	alpha := float64(max(p.frame, 64)) / (10 * 48000)
	x := 0.0
	if late {
		x = 1
	}
	p.lateShare += (x - p.lateShare) * alpha
	p.tighten += alpha * (1 - p.lateShare/goal)
	p.tighten = max(math.Log(0.1), min(0, p.tighten))
}

// flush measures the packets inserted since the last read as in for the
// read at now, or for the next, block samples later, if they came less than
// the guard before the read ran at wall (samples, on Now's clock).
func (p *Playout) flush(now, wall, block int64) {
	p.delays.quantile = 1 - (1-math.Float64frombits(p.quantile.Load()))*math.Exp(p.tighten)
	// A clock running slow at the sender makes packets creep later
	// against the reads: the guard sees one near its read early enough
	// for playout to grow by a block before it misses it.
	g := guard + int64(p.delays.creep()*float64(48000+block*1000))
	for i := range p.pending {
		in := now
		if wall-p.pendArr[i] < g {
			in += block
		}
		p.delays.add(p.pendTS[i], in, p.pendArr[i])
	}
	p.pending = 0
	p.jitterUS.Store(int64(p.delays.jitter * 1e6 / 48000))
}

// InsertRecovered stores a frame recovered from a later packet's
// redundancy (RFC 2198 RED; see net/red), with the sequence number and
// timestamp it was first sent with, if it is still to be played (see
// Buffer.InsertRecovered). arrival is the carrying packet's; it does not
// count toward the delay estimate, being no measure of this frame's path.
func (p *Playout) InsertRecovered(seq uint16, timestamp uint32, arrival time.Duration, payload []byte) {
	p.buf.insertRecovered(seq, timestamp, arrival, payload)
}

// Reset forgets the stream (a new connection).
func (p *Playout) Reset() {
	p.buf.Reset()
	p.delays.reset()
	p.tracker.Reset()
	p.rs.Reset()
	p.pending = 0
	p.held = 0
	p.lagKnown = false
	p.based = false
	p.lead = [2]int{}
	p.lastRead, p.readJitter = 0, 0
	p.tighten, p.lateShare = 0, 0
	p.stagePos, p.stageLen = 0, 0
}

// Read fills out with the voice, played at the rate that keeps the lag at
// its target; out[0] plays now on Now's clock.
func (p *Playout) Read(out []float32) { p.ReadAt(out, p.now()) }

// ReadAt is Read with out[0] playing at now on Now's clock: the device's
// smoothed instant for the block (audio.BlockClock), on the clock that
// stamps Insert's arrivals.
func (p *Playout) ReadAt(out []float32, now time.Duration) {
	nowS := samples(now)
	if p.lastRead != 0 {
		// How far the reads stray from their blocks: the wall clock's
		// jitter when Read is used, ~0 for a device's smoothed clock.
		d := float64(nowS - p.lastRead)
		p.readJitter += (math.Abs(d) - p.readJitter) / 16
	}
	p.lastRead, p.block = nowS+int64(len(out)), len(out)
	p.flush(nowS, samples(p.now()), int64(len(out)))
	defer p.measureLag()
	if !p.delays.known {
		p.buf.read(out, now) // silence: nothing has come
		return
	}
	target := p.publishTarget()
	if !p.buf.playing {
		o, ok := p.startAt(nowS, target, len(out))
		p.buf.read(out[:o], now) // silence until the start
		if !ok {
			p.stagePos, p.stageLen = 0, 0
			return
		}
		out, now = out[o:], now+time.Duration(o)*time.Second/48000
		nowS += int64(o)
		p.start(target)
	}
	ratio := p.steer(target, len(out))
	p.play(out, now, nowS, ratio)
}

// Skip drops the n samples of voice the device played without reading
// them: blocks it went on without a stalled callback (see
// audio.BlockClock.Skipped). They would have played before the next read,
// which comes n samples later on the reads' clock; dropping them keeps the
// voice at its lag, where keeping them would leave it n samples late for
// playout to drain at 1 ms a second. They count as played, as they were
// due to be: the device's glitch is where they went. More than maxSkip
// starts playout again at its target instead, dropping whole packets
// rather than decoding them. Call it before the next ReadAt.
func (p *Playout) Skip(n int) {
	if n <= 0 {
		return
	}
	// The packets that came meanwhile were in for the skipped read
	// after their arrival: measured from the next one, each would count
	// the skip as the path's delay, and the need rise by it.
	start, block := p.lastRead, int64(max(1, p.block))
	for i := range p.pending {
		k := (p.pendArr[i] + guard - start + block - 1) / block
		in := start + max(0, min(k*block, int64(n)))
		p.delays.add(p.pendTS[i], in, p.pendArr[i])
	}
	p.pending = 0
	p.lastRead += int64(n)
	if !p.buf.playing {
		return // starting places the voice anyway
	}
	if n > maxSkip {
		p.buf.playing = false
		return
	}
	ratio := 1 + float64(p.ratioPPM.Load())/1e6
	for at := start; n > 0; {
		m := min(n, len(p.discard))
		p.play(p.discard[:m], instant(at), at, ratio)
		at += int64(m)
		n -= m
	}
	p.measureLag()
}

// maxSkip is the most samples Skip decodes to drop (100 ms: a fraction of
// a millisecond's work); beyond, playout starts again.
const maxSkip = 4800

// instant converts samples to an instant, the inverse of samples.
func instant(n int64) time.Duration {
	return time.Duration(n/48000)*time.Second + time.Duration(n%48000)*time.Second/48000
}

// publishTarget returns the lag to hold, in samples: the packets within
// the quantile are in by the read that decodes them, and play the
// resampler's latency later. It tells Stats and the Buffer.
func (p *Playout) publishTarget() int64 {
	target := p.delays.needed + int64(p.leadMax()) + margin
	// Reported from the fastest arrivals (W3C jitterBufferTargetDelay):
	// the reads' phase against them is playout delay too.
	report := max(0, int(target-p.delays.arrived))
	p.target.Store(int64(report))
	p.buf.target = report
	return target
}

// start makes the Buffer play from the first packet held, with the
// resampler empty, at the target lag.
func (p *Playout) start(target int64) {
	if !p.based {
		p.base, p.based = target, true
	}
	p.delays.held = true
	p.buf.start()
	p.rs.Reset()
	p.held = 0
	p.stagePos, p.stageLen = 0, 0
	p.lagKnown = false
}

// steer sets the resampler's ratio for a read of n samples toward the
// target lag, and how far below it the Buffer may wait for a late packet.
func (p *Playout) steer(target int64, n int) float64 {
	p.tracker.SetTarget(int(target - p.base))
	ratio := 1.0
	p.buf.room = 0
	if p.lagKnown {
		ratio = p.tracker.Update(int(p.lag-p.base), 0, float64(n)/48000)
		// Quick to grow, slow to shrink: below its target the playout
		// waits for a late packet (the wait adds to the lag at once);
		// at its target, the packet counts as lost.
		p.buf.room = int(max(0, target-p.lag))
	}
	p.rs.SetRatio(ratio)
	p.ratioPPM.Store(int64((ratio - 1) * 1e6))
	return ratio
}

// play fills out, which plays from now (nowS in samples), with the voice
// resampled at ratio.
func (p *Playout) play(out []float32, now time.Duration, nowS int64, ratio float64) {
	for done := 0; done < len(out); {
		if p.stagePos == p.stageLen {
			p.decodeStage(now, nowS, done)
		}
		// Feed only what the rest of this read needs beyond what the
		// resampler holds, so it never holds more than its latency and a
		// packet is decoded no earlier than that before it plays.
		need := float64(len(out)-done)/ratio + resample.NearLatency - p.held
		feed := min(p.stageLen-p.stagePos, max(1, int(math.Ceil(need))))
		c, n := p.rs.Process(p.stage[p.stagePos:p.stagePos+feed], out[done:])
		if c == 0 && n == 0 {
			clear(out[done:]) // the resampler failed: never spin
			return
		}
		p.stagePos += c
		done += n
		// What it holds is what it took less what its output used up.
		// Leaning slowly on its nominal latency keeps rounding from
		// adding up over hours.
		p.held += float64(c) - float64(n)/ratio
		p.held += (resample.NearLatency - p.held) / 4096
	}
}

// decodeStage fills the stage from the Buffer, done samples into a read
// playing from now. It decodes on a frame's boundary, so each packet's
// first sample is the stage's first and plays the resampler's latency
// after it is decoded.
func (p *Playout) decodeStage(now time.Duration, nowS int64, done int) {
	n := len(p.stage)
	if r := p.buf.remaining(); r > 0 {
		n = min(n, r)
	}
	at := now + time.Duration((float64(done)+p.held)*float64(time.Second)/48000)
	p.buf.read(p.stage[:n], at)
	p.stagePos, p.stageLen = 0, n
	if p.buf.decodes != p.decodes {
		p.decodes = p.buf.decodes
		p.noteLead(int(math.Ceil(p.held))+p.buf.lastOffset, nowS)
	}
}

// startAt returns where in a read of n samples at now to start playing so
// that the first packet held plays at the target lag, dropping packets too
// old for it; ok is false until measureFirst has been measured, and while
// no packet is held or the start falls beyond this read (o is then n).
func (p *Playout) startAt(now, target int64, n int) (o int, ok bool) {
	if p.delays.span() < measureFirst {
		return n, false
	}
	// The read's instant may be off by its jitter, and the lag is
	// measured from it: start that much above the target, for the
	// tracker to take back once it has averaged it out.
	target += int64(2 * p.readJitter)
	for {
		ts, held := p.buf.firstHeld()
		if !held {
			return n, false
		}
		// The resampler starts empty: the first sample fed plays first.
		at := p.delays.unwrap(ts) + target
		if at < now {
			p.buf.dropFirst()
			continue
		}
		if at-now >= int64(n) {
			return n, false
		}
		return int(at - now), true
	}
}

// noteLead takes how long after its decoding a packet plays, in samples.
func (p *Playout) noteLead(lead int, now int64) {
	if now-p.leadAt >= 48000 {
		p.lead[1], p.lead[0], p.leadAt = p.lead[0], 0, now
	}
	p.lead[0] = max(p.lead[0], lead)
}

// leadMax is the most samples between decoding a packet and playing it of
// late: the resampler's latency at least.
func (p *Playout) leadMax() int {
	return max(resample.NearLatency, p.lead[0], p.lead[1])
}

// measureLag takes the lag of the last packet decoded, if one was.
func (p *Playout) measureLag() {
	if !p.buf.played {
		return
	}
	p.buf.played = false
	p.lag = samples(p.buf.lastPlayed) - p.delays.unwrap(p.buf.lastTS)
	p.lagKnown = true
}

// PlayoutStats are the adaptive figures on top of the Buffer's.
type PlayoutStats struct {
	Stats
	// TargetDelay is the delay the playout aims for (W3C
	// jitterBufferTargetDelay), Jitter RFC 3550's interarrival jitter,
	// RatePPM how far playback runs from real time to get there.
	TargetDelay time.Duration
	Jitter      time.Duration
	RatePPM     int64
}

// Stats returns the figures now. Safe from any goroutine.
func (p *Playout) Stats() PlayoutStats {
	return PlayoutStats{
		Stats:       p.buf.Stats(),
		TargetDelay: time.Duration(p.target.Load()) * time.Second / 48000,
		Jitter:      time.Duration(p.jitterUS.Load()) * time.Microsecond,
		RatePPM:     p.ratioPPM.Load(),
	}
}
