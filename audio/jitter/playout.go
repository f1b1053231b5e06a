package jitter

import (
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio/drift"
	"github.com/duetapp/duet/audio/resample"
)

// Playout is the adaptive playout of one incoming voice, around a Buffer:
// it sets its target delay from the link's measured jitter (a high quantile
// of relative delay over the last two seconds, plus a frame and a device
// block), grows at once when packets come a little late (the Buffer
// conceals while it waits, up to a frame), treats packets later than that
// as lost (a spike costs concealment, not lasting delay), and moves toward
// its target, or follows the sender's clock drift, only by playing a little
// faster or slower through a resampler steered by a drift tracker: never by
// dropping or repeating frames, and at most 0.1 % (1.7 cents), which no
// singer hears.
//
// Insert and Read belong to the audio thread, Stats to anyone.
type Playout struct {
	buf     *Buffer
	delays  *delayWindow
	tracker *drift.Tracker
	rs      *resample.Resampler
	now     func() time.Duration
	frame   int // samples per packet, from the config

	lastArrival time.Duration
	maxBlock    int
	stage       [32]float32 // decoded audio waiting for the resampler
	stagePos    int
	stageLen    int
	held        float64 // input samples inside the resampler

	target   atomic.Int64 // samples
	ratioPPM atomic.Int64
	jitterUS atomic.Int64
}

// PlayoutConfig adds to Config what adaptation needs.
type PlayoutConfig struct {
	Config
	// Quantile is the share of packets that must arrive in time: 0.95
	// ("tight", least delay) to 0.999 ("safe"); 0 means 0.98.
	Quantile float64
	// Now is the clock of Insert's arrival times; nil means a monotonic
	// clock starting at New.
	Now func() time.Duration
}

// NewPlayout returns an adaptive playout decoding through dec.
func NewPlayout(cfg PlayoutConfig, dec Decoder) (*Playout, error) {
	if cfg.Quantile <= 0 {
		cfg.Quantile = 0.98
	}
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
	return p, nil
}

// Now returns the playout's clock, for stamping arrivals.
func (p *Playout) Now() time.Duration { return p.now() }

// Insert stores a packet that arrived at arrival (on Now's clock) for
// playout.
func (p *Playout) Insert(seq uint16, timestamp uint32, arrival time.Duration, payload []byte) {
	// In samples, without overflowing (arrival*48000 would after 53 h).
	samples := int64(arrival/time.Second)*48000 + int64(arrival%time.Second)*48000/int64(time.Second)
	p.delays.add(timestamp, samples)
	p.jitterUS.Store(int64(p.delays.jitter * 1e6 / 48000))
	p.lastArrival = arrival
	p.buf.insert(seq, timestamp, arrival, payload)
}

// Reset forgets the stream (a new connection).
func (p *Playout) Reset() {
	p.buf.Reset()
	p.delays.reset()
	p.tracker.Reset()
	p.rs.Reset()
	p.held = 0
	p.lastArrival = 0
	p.stagePos, p.stageLen = 0, 0
}

// Read fills out with the voice, played at the rate that keeps the buffer
// at its target.
func (p *Playout) Read(out []float32) {
	p.maxBlock = max(p.maxBlock, len(out))
	now := p.now()
	if !p.buf.playing {
		// Still filling: the Buffer plays silence until its first target.
		p.buf.read(out, now)
		p.stagePos, p.stageLen = 0, 0
		return
	}
	// Just before a packet arrives the buffer is a frame below its
	// continuous level, and then it must still hold a device block and a
	// resampler chunk; on top of that, the link's jitter.
	target := int(p.delays.needed) + p.frame + p.maxBlock + len(p.stage)
	p.target.Store(int64(target))
	p.tracker.SetTarget(target)
	p.buf.target = target + resample.Latency
	level := p.buf.buffered() + p.stageLen - p.stagePos + int(p.held)
	frameDur := time.Duration(p.frame) * time.Second / 48000
	since := min(now-p.lastArrival, frameDur)
	ratio := p.tracker.Update(level, since.Seconds(), float64(len(out))/48000)
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
		TargetDelay: time.Duration(p.target.Load()+resample.Latency) * time.Second / 48000,
		Jitter:      time.Duration(p.jitterUS.Load()) * time.Microsecond,
		RatePPM:     p.ratioPPM.Load(),
	}
}

// Close frees the resampler.
func (p *Playout) Close() { p.rs.Close() }
