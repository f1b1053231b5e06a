package jitter

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// frameDecoder decodes every packet to a 240-sample frame of ones.
type frameDecoder struct{}

func (frameDecoder) Decode(p []byte, pcm []float32) (int, error) {
	for i := range pcm[:240] {
		pcm[i] = 1
	}
	return 240, nil
}
func (frameDecoder) Conceal(pcm []float32) error { clear(pcm); return nil }

// simulatePlayout plays seconds of a 5 ms packet stream from a sender whose
// clock runs ppm fast, over a path that delays each packet by delay(i), and
// reads 128-sample blocks on the receiver's clock. It reports the playout's
// stats after settle seconds and the range since of its lag (how long
// after the fastest packets' pace it plays; see Playout), in samples.
func simulatePlayout(t *testing.T, seconds, settle float64, ppm float64, delay func(i int) time.Duration) (before, after PlayoutStats, lo, hi int64) {
	t.Helper()
	var now time.Duration
	p := NewPlayout(PlayoutConfig{Config: Config{Frame: 240, Target: 240, WaitStep: 120}, Now: func() time.Duration { return now }}, frameDecoder{})
	out := make([]float32, 128)
	period := time.Duration(float64(5*time.Millisecond) / (1 + ppm*1e-6))
	type pkt struct {
		at  time.Duration
		seq int
	}
	var pending []pkt
	sent := 0
	lo, hi = math.MaxInt64, 0
	for tick := 0; float64(tick)*128/48000 < seconds; tick++ {
		now = time.Duration(tick) * 128 * time.Second / 48000
		for time.Duration(sent)*period <= now {
			pending = append(pending, pkt{time.Duration(sent)*period + delay(sent), sent})
			sent++
		}
		for len(pending) > 0 && pending[0].at <= now {
			p.Insert(uint16(pending[0].seq), uint32(pending[0].seq*240), pending[0].at, []byte{1})
			pending = pending[1:]
		}
		p.Read(out)
		if now.Seconds() >= settle {
			if before == (PlayoutStats{}) {
				before = p.Stats()
			}
			lag := p.lag - p.delays.arrived
			lo, hi = min(lo, lag), max(hi, lag)
		}
	}
	return before, p.Stats(), lo, hi
}

// TestPlayoutHoldsTargetUnderDrift: a steady link with the sender's clock
// up to 200 ppm off plays for ten simulated minutes without underruns or
// concealment once settled, its delay within a frame of its target, the
// rate following the drift.
func TestPlayoutHoldsTargetUnderDrift(t *testing.T) {
	for _, ppm := range []float64{-200, 0, 200} {
		t.Run(fmt.Sprintf("%+.0fppm", ppm), func(t *testing.T) {
			before, after, lo, hi := simulatePlayout(t, 600, 20, ppm, func(int) time.Duration { return 20 * time.Millisecond })
			t.Logf("target %v, lag %d…%d samples, rate %+d ppm, underruns %d→%d",
				after.TargetDelay, lo, hi, after.RatePPM, before.Underruns, after.Underruns)
			if after.Underruns != before.Underruns || after.ConcealedSamples != before.ConcealedSamples {
				t.Errorf("%d underruns, %d samples concealed after settling",
					after.Underruns-before.Underruns, after.ConcealedSamples-before.ConcealedSamples)
			}
			target := int64(after.TargetDelay * 48000 / time.Second)
			if lo < target-240 || hi > target+240 {
				t.Errorf("lag %d…%d samples, want within a frame of the target %d", lo, hi, target)
			}
			if math.Abs(float64(after.RatePPM)+ppm) > 150 {
				t.Errorf("rate %+d ppm with the sender %+.0f ppm off, want about %+.0f", after.RatePPM, ppm, -ppm)
			}
		})
	}
}

// TestPlayoutSpikeCostsNoLastingDelay: a 60 ms spike is concealed, its
// late packets dropped, and the buffer is back at its target long after,
// instead of having grown by the spike.
func TestPlayoutSpikeCostsNoLastingDelay(t *testing.T) {
	spikeAt := 2000 // packet 2000: 10 s in
	_, after, _, hi := simulatePlayout(t, 60, 50, 0, func(i int) time.Duration {
		d := 20 * time.Millisecond
		if i >= spikeAt && i < spikeAt+12 {
			d += 60*time.Millisecond - time.Duration(i-spikeAt)*5*time.Millisecond
		}
		return d
	})
	target := int64(after.TargetDelay * 48000 / time.Second)
	t.Logf("after the spike: target %v, lag up to %d samples in the last 10 s, %d underruns", after.TargetDelay, hi, after.Underruns)
	if hi > target+240 {
		t.Errorf("40 s after the spike the lag is %d samples, want back near the target %d", hi, target)
	}
}

// TestPlayoutDelayStats: on a steady link the W3C delay sums say each
// decoded sample played after its packet arrived and within the target,
// and the Played hook sees every packet once, in order, after it arrived.
func TestPlayoutDelayStats(t *testing.T) {
	var now time.Duration
	var lastTS uint32
	var played, early int
	cfg := PlayoutConfig{Config: Config{Frame: 240, Target: 240, WaitStep: 120,
		Played: func(ts uint32, arrival, at time.Duration) {
			if played > 0 && ts != lastTS+240 {
				t.Errorf("played ts %d after %d", ts, lastTS)
			}
			if at < arrival {
				early++
			}
			lastTS = ts
			played++
		}}, Now: func() time.Duration { return now }}
	p := NewPlayout(cfg, frameDecoder{})
	out := make([]float32, 128)
	sent := 0
	for tick := range 48000 * 10 / 128 {
		now = time.Duration(tick) * 128 * time.Second / 48000
		for ; time.Duration(sent)*5*time.Millisecond+20*time.Millisecond <= now; sent++ {
			p.Insert(uint16(sent), uint32(sent*240), now, []byte{1})
		}
		p.Read(out)
	}
	st := p.Stats()
	if early > 0 {
		t.Errorf("%d packets played before they arrived", early)
	}
	// The first 100 ms are measured, not played.
	if int64(played)*240 != st.JitterBufferEmittedCount || played < sent-measureFirst/240-10 {
		t.Errorf("hook saw %d packets of %d sent, stats %d samples", played, sent, st.JitterBufferEmittedCount)
	}
	n := time.Duration(st.JitterBufferEmittedCount)
	delay, target := st.JitterBufferDelay/n, st.JitterBufferTargetDelay/n
	t.Logf("mean delay %v, mean target %v, target now %v", delay, target, st.TargetDelay)
	// The target is for a packet's first sample; the mean is over all
	// 5 ms of it.
	if delay <= 0 || delay > target+5*time.Millisecond {
		t.Errorf("mean delay %v, want within (0, %v]", delay, target+5*time.Millisecond)
	}
	if d := target - st.TargetDelay; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("mean target %v, want about the steady %v", target, st.TargetDelay)
	}
	var bare Stats
	b := newBuffer(0)
	b.Insert(1, []byte{1})
	b.Read(make([]float32, frame))
	if bare = b.Stats(); bare.JitterBufferEmittedCount != 0 || bare.JitterBufferDelay != 0 {
		t.Errorf("a bare Buffer counted delays: %+v", bare)
	}
}

func TestBiasQuantile(t *testing.T) {
	for _, tc := range []struct{ bias, want float64 }{
		{-2, 0.95}, {-1, 0.95}, {0, 0.98}, {1, 0.998}, {5, 0.998},
	} {
		if got := BiasQuantile(tc.bias); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("BiasQuantile(%v) = %v, want %v", tc.bias, got, tc.want)
		}
	}
	if BiasQuantile(-0.5) >= BiasQuantile(0) || BiasQuantile(0.5) <= BiasQuantile(0) {
		t.Error("BiasQuantile does not grow with the bias")
	}
}

// BenchmarkPlayout: one 128-sample device block of a 64-sample-frame
// stream (two packets in, one read out), the audio thread's work per
// callback. It must not allocate.
func BenchmarkPlayout(b *testing.B) {
	_, block := blockPlayout(b)
	for range 48000 / 128 { // past the start
		block()
	}
	b.ReportAllocs()
	for b.Loop() {
		block()
	}
}

// blockPlayout returns a playout of 64-sample frames on a fake clock and a
// func doing one 128-sample device block's work: two packets in, one read
// out at the block's instant.
func blockPlayout(tb testing.TB) (*Playout, func()) {
	tb.Helper()
	var now time.Duration
	p := NewPlayout(PlayoutConfig{Config: Config{Frame: 64, WaitStep: 64}, Now: func() time.Duration { return now }}, frameDecoder64{})
	out := make([]float32, 128)
	payload := []byte{1}
	seq := 0
	return p, func() {
		now += 128 * time.Second / 48000
		for range 2 {
			p.Insert(uint16(seq), uint32(seq*64), now, payload)
			seq++
		}
		p.ReadAt(out, now)
	}
}

// frameDecoder64 decodes every packet to a 64-sample frame.
type frameDecoder64 struct{}

func (frameDecoder64) Decode(p []byte, pcm []float32) (int, error) {
	clear(pcm[:64])
	return 64, nil
}
func (frameDecoder64) Conceal(pcm []float32) error { clear(pcm); return nil }

// TestPlayoutDoesNotAllocate: the audio thread's work per callback (two
// packets in, a block out, at the device's instant) allocates nothing,
// while starting or once playing.
func TestPlayoutDoesNotAllocate(t *testing.T) {
	p, block := blockPlayout(t)
	if n := testing.AllocsPerRun(100, block); n != 0 {
		t.Errorf("%v allocations per block while starting", n)
	}
	if n := testing.AllocsPerRun(1000, block); n != 0 || !p.buf.playing {
		t.Errorf("%v allocations per block while playing (playing: %v)", n, p.buf.playing)
	}
}

// TestPlayoutStartSkipsNotLate: a backlog that comes at once when the
// stream starts (packets queued before anyone read them) is older than
// where the playout starts; those it drops count as skipped, not as
// discarded for coming late, and neither does anything on the clean
// stream after them. Configured as the app does (Frame a 128-sample
// device block, which sizes the buffer, while packets are 64), the
// packets measured before the start overflow the buffer: the oldest make
// way, skipped, and the stream is not reset.
func TestPlayoutStartSkipsNotLate(t *testing.T) {
	var now time.Duration
	p := NewPlayout(PlayoutConfig{Config: Config{Frame: 128, WaitStep: 64}, Now: func() time.Duration { return now }}, frameDecoder64{})
	out := make([]float32, 128)
	const backlog = 40 // 53 ms of 64-sample packets, all arriving at once
	seq := 0
	for range 500 {
		now += 128 * time.Second / 48000
		// Packet seq was complete at (seq+1)·64 samples less the
		// backlog's length; it arrives 0.2 ms after that, or at the
		// start, whichever is later.
		for ; ; seq++ {
			at := max(dur((seq+1-backlog)*64)+200*time.Microsecond, 0)
			if at > now {
				break
			}
			p.Insert(uint16(seq), uint32(seq*64), at, []byte{1})
		}
		p.ReadAt(out, now)
	}
	st := p.Stats()
	if st.PacketsSkipped < backlog/2 || st.PacketsDiscarded != 0 || st.ConcealmentEvents != 0 || st.Resets != 0 {
		t.Errorf("%d packets skipped at the start (want at least %d), %d discarded, %d concealment events, %d resets (want 0)",
			st.PacketsSkipped, backlog/2, st.PacketsDiscarded, st.ConcealmentEvents, st.Resets)
	}
}

// dur is how long n samples last.
func dur(n int) time.Duration { return time.Duration(n) * time.Second / 48000 }

// TestPlayoutSkip: the device goes on without ten of the reads (a stalled
// callback it skipped) while the packets keep coming. Told so, the playout
// drops what those reads would have played and keeps its lag, concealing
// nothing; not told, the voice plays the skipped 26.7 ms late. Told of 60
// (160 ms, more than it decodes to drop), it starts again at its lag.
func TestPlayoutSkip(t *testing.T) {
	for _, c := range []struct {
		told    bool
		skipped int
	}{{true, 10}, {false, 10}, {true, 60}} {
		told, skipped := c.told, c.skipped
		var now time.Duration
		p := NewPlayout(PlayoutConfig{Config: Config{Frame: 240, Target: 240, WaitStep: 120}, Now: func() time.Duration { return now }}, frameDecoder{})
		out := make([]float32, 128)
		const skipAt = 48000 * 5 / 128
		sent := 0
		var before, target int64
		for tick := 0; tick < 48000*6/128; tick++ {
			now = dur(tick * 128)
			for ; dur(sent*240)+3*time.Millisecond <= now; sent++ {
				p.Insert(uint16(sent), uint32(sent*240), dur(sent*240)+3*time.Millisecond, []byte{1})
			}
			switch {
			case tick == skipAt:
				before, target = p.lag, p.target.Load()
			case tick > skipAt && tick <= skipAt+skipped:
				continue // the device played these blocks without us
			case tick == skipAt+skipped+1 && told:
				p.Skip(skipped * 128)
			}
			p.ReadAt(out, now)
		}
		moved, raised := p.lag-before, p.target.Load()-target
		st := p.Stats()
		t.Logf("told %v of %d blocks: the lag moved %d samples, the target %d, %d concealed", told, skipped, moved, raised, st.ConcealedSamples)
		switch {
		case told && (moved < -8 || moved > 8 || raised < -8 || raised > 8 || st.ConcealedSamples != 0):
			t.Errorf("told of the skip: the lag moved %d samples, the target %d, %d concealed; want ±8, ±8, none", moved, raised, st.ConcealedSamples)
		case !told && moved < int64(skipped*128-60):
			t.Errorf("not told: the lag moved %d samples, want about %d (the test shows nothing)", moved, skipped*128)
		}
	}
}
