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
// Its delay is measured NetEQ-style, against the pace of the fastest
// packets of the last two seconds (arrival less RTP timestamp), so the
// clocks' offset cancels: each packet decoded tells how long after that
// pace it plays (its lag). The target lag is a high quantile of the recent
// packets' relative delay (Quantile, moved by the user's Bias) plus what
// playout itself needs: a device block, the resampler's chunk and its
// latency.
//
// It grows at once when packets come a little late (the Buffer conceals
// while it waits, up to a frame, and the lag grows by the wait), treats
// packets later than that as lost (a spike costs concealment, not lasting
// delay), and moves toward its target, or follows the sender's clock
// drift, only by playing a little faster or slower through a resampler
// steered by a drift tracker: never by dropping or repeating frames, and at
// most 0.1 % (1.7 cents), which no singer hears; so it shrinks slowly, at
// most 1 ms a second.
//
// Insert and Read belong to the audio thread, Stats to anyone.
type Playout struct {
	buf     *Buffer
	delays  *delayWindow
	tracker *drift.Tracker
	rs      *resample.Resampler
	now     func() time.Duration
	frame   int // samples per packet, from the config

	maxBlock int
	stage    [32]float32 // decoded audio waiting for the resampler
	stagePos int
	stageLen int
	held     float64 // input samples inside the resampler
	lag      int64   // the last packet's lag, samples; see Playout
	lagKnown bool

	target   atomic.Int64  // samples
	quantile atomic.Uint64 // float64 bits, set by SetBias
	ratioPPM atomic.Int64
	jitterUS atomic.Int64
}

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
	// Now is the clock of Insert's arrival times; nil means a monotonic
	// clock starting at New.
	Now func() time.Duration
}

// NewPlayout returns an adaptive playout decoding through dec.
func NewPlayout(cfg PlayoutConfig, dec Decoder) (*Playout, error) {
	if cfg.Quantile <= 0 {
		cfg.Quantile = BiasQuantile(cfg.Bias)
	}
	cfg.Quantile = max(0.5, min(0.9999, cfg.Quantile))
	if cfg.Now == nil {
		start := time.Now()
		cfg.Now = func() time.Duration { return time.Since(start) }
	}
	rs, err := resample.New(resample.Fastest)
	if err != nil {
		return nil, err
	}
	if cfg.WaitLimit == 0 {
		cfg.WaitLimit = cfg.Frame // spikes cost concealment, not lasting delay
	}
	p := &Playout{
		buf:     New(cfg.Config, dec),
		delays:  newDelayWindow(cfg.Quantile),
		tracker: drift.New(cfg.Target),
		rs:      rs,
		now:     cfg.Now,
		frame:   cfg.Frame,
	}
	p.target.Store(int64(cfg.Target))
	p.quantile.Store(math.Float64bits(cfg.Quantile))
	return p, nil
}

// BiasQuantile maps the user's bias, -1 (tight) … +1 (safe), to the
// quantile of relative delay the playout waits for: 0.95 … 0.98 … 0.998,
// evenly on a log scale of the share allowed late. Measured on the lab's
// traces (duetlab jitter), 0.98 keeps late loss well within 1 % at 1.1 to
// 1.15 times the oracle's delay on the jittery paths.
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

// Insert stores a packet that arrived at arrival (on Now's clock) for
// playout.
func (p *Playout) Insert(seq uint16, timestamp uint32, arrival time.Duration, payload []byte) {
	// In samples, without overflowing (arrival*48000 would after 53 h).
	samples := int64(arrival/time.Second)*48000 + int64(arrival%time.Second)*48000/int64(time.Second)
	p.delays.quantile = math.Float64frombits(p.quantile.Load())
	p.delays.add(timestamp, samples)
	p.jitterUS.Store(int64(p.delays.jitter * 1e6 / 48000))
	p.buf.insert(seq, timestamp, arrival, payload)
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
	p.held = 0
	p.lagKnown = false
	p.stagePos, p.stageLen = 0, 0
}

// Read fills out with the voice, played at the rate that keeps the lag at
// its target.
func (p *Playout) Read(out []float32) {
	p.maxBlock = max(p.maxBlock, len(out))
	now := p.now()
	defer p.measureLag()
	if !p.buf.playing {
		// Still filling: the Buffer plays silence until its first target.
		p.buf.read(out, now)
		p.stagePos, p.stageLen = 0, 0
		return
	}
	// A packet must be in by the read that plays its first sample, up to a
	// block before; it is decoded up to a resampler chunk earlier still,
	// and plays the resampler's latency later: on top of that, the link's
	// jitter.
	target := int(p.delays.needed) + p.maxBlock + len(p.stage) + resample.Latency
	p.target.Store(int64(target))
	p.tracker.SetTarget(target)
	p.buf.target = target
	ratio := 1.0
	p.buf.room = p.frame
	if p.lagKnown {
		ratio = p.tracker.Update(int(p.lag), 0, float64(len(out))/48000)
		// Quick to grow, slow to shrink: below its target the playout
		// waits for a late packet (the wait adds to the lag at once);
		// at its target, the packet counts as lost.
		p.buf.room = max(0, target-int(p.lag))
	}
	p.rs.SetRatio(ratio)
	p.ratioPPM.Store(int64((ratio - 1) * 1e6))
	for done := 0; done < len(out); {
		if p.stagePos == p.stageLen {
			// The stage's first sample plays after the output made so
			// far and what the resampler holds.
			at := now + time.Duration(float64(done)+p.held)*time.Second/48000
			p.buf.read(p.stage[:], at)
			p.stagePos, p.stageLen = 0, len(p.stage)
		}
		c, n := p.rs.Process(p.stage[p.stagePos:p.stageLen], out[done:])
		p.stagePos += c
		done += n
		// The resampler takes input in gulps; what it holds is what it
		// took less what its output used up. Leaning slowly on its
		// nominal latency keeps rounding from adding up over hours.
		p.held += float64(c) - float64(n)/ratio
		p.held += (resample.Latency - p.held) / 4096
	}
}

// measureLag takes the lag of the last packet decoded, if one was.
func (p *Playout) measureLag() {
	if !p.buf.played {
		return
	}
	p.buf.played = false
	at := p.buf.lastPlayed
	samples := int64(at/time.Second)*48000 + int64(at%time.Second)*48000/int64(time.Second)
	p.lag = p.delays.lag(p.buf.lastTS, samples)
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

// Close frees the resampler.
func (p *Playout) Close() { p.rs.Close() }
