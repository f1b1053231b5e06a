package app

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
)

// fakeClock is a session clock a test moves by hand, one device block at
// a time: the audio thread's and the network's clock alike.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }

func newTestPipeline(t testing.TB, monitor float32, clk *fakeClock) *pipeline {
	cfg := pipelineConfig{
		frame:        codec.DefaultFrame,
		bitrate:      codec.DefaultBitrate,
		jitterTarget: audio.Samples(DefaultJitterTarget),
		monitor:      monitor,
		maxBlock:     4096,
	}
	if clk != nil {
		cfg.now = clk.now
	}
	p, err := newPipeline(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// partner is the far side of a duet as the receiving pipeline sees it: it
// sings a tone and sends it in whichever codec its schedule says, packet
// by packet, with the encoders, packet sizes and codec changes of a
// pipeline's encoder goroutine, for a device of 128-sample blocks.
type partner struct {
	encs encoders
	sw   sendSwitch
	src  *tone.Sine
	ring []float32 // captured, not yet sent
	seq  uint16
	ts   uint32
	pcm  []float32
	buf  []byte
}

func newPartner(hz float64) *partner {
	return &partner{encs: encoders{base: codec.DefaultBitrate}, src: &tone.Sine{Hz: hz, Amp: 0.5},
		pcm: make([]float32, 128), buf: make([]byte, codec.MaxPacket)}
}

// partnerPacket is one packet the partner sent.
type partnerPacket struct {
	seq  uint16
	ts   uint32
	kind codec.Kind
	data []byte
}

// packets captures one 128-sample block and returns the packets it
// completes, in codec want.
func (f *partner) packets(t testing.TB, want codec.Kind) []partnerPacket {
	f.src.Read(f.pcm)
	f.ring = append(f.ring, f.pcm...)
	kind := f.sw.next(want, len(f.ring), 128, audio.Samples(codec.DefaultFrame))
	size := packetSize(kind, 128, audio.Samples(codec.DefaultFrame))
	enc, err := f.encs.get(kind, size, codec.DefaultBitrate)
	if err != nil {
		t.Fatal(err)
	}
	var out []partnerPacket
	for len(f.ring) >= size {
		n, err := enc.Encode(f.ring[:size], f.buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, partnerPacket{f.seq, f.ts, kind, append([]byte(nil), f.buf[:n]...)})
		f.ring = f.ring[size:]
		f.seq++
		f.ts += uint32(size)
	}
	return out
}

// block captures one block and sends its packets to p, arriving now.
func (f *partner) block(t testing.TB, p *pipeline, want codec.Kind) {
	for _, pk := range f.packets(t, want) {
		p.receive(1, pk.seq, pk.ts, pk.kind, pk.data)
	}
}

// TestPipelineLevels drives the audio thread by hand: the mic, the
// partner's decoded voice and the output all reach their meters.
func TestPipelineLevels(t *testing.T) {
	clk := &fakeClock{}
	p := newTestPipeline(t, 1, clk)
	p.connect(nil, 1)
	far := newPartner(660)
	defer far.encs.close()
	in := make([]float32, 128)
	out := make([]float32, 128)
	src := &tone.Sine{Hz: 440, Amp: 0.3}
	for i := range 600 {
		if i == 200 {
			// The playout starts after measuring 0.3 s: the meters
			// measure from 0.53 s on, what they got since their last
			// read.
			p.micMeter.Level()
			p.partnerMeter.Level()
			p.outMeter.Level()
		}
		far.block(t, p, codec.Opus)
		src.Read(in)
		p.process(in, out)
		clk.t += audio.Duration(128)
	}
	l := p.micMeter.Level()
	if math.Abs(l.Peak-(-10.46)) > 0.2 || math.Abs(l.RMS-(-13.47)) > 0.2 {
		t.Errorf("mic level %+v, want peak -10.5 and RMS -13.5 dBFS", l)
	}
	if l := p.partnerMeter.Level(); l.RMS < -11 || l.RMS > -7 {
		t.Errorf("partner level %+v, want RMS near -9 dBFS", l)
	}
	if l := p.outMeter.Level(); l.RMS < -10 || l.RMS > -5 {
		t.Errorf("output level %+v, want about -7.5 dBFS (two tones)", l)
	}
}

// TestPipelineSwitchesClickFree plays a partner who sings a steady tone
// and changes codec every 0.3 s (Opus, Opus Custom, L24, L16 and back):
// what the singer hears has no step larger than 1.5 times the tone's own
// steepest, nothing is concealed, and the latency follows the codec.
func TestPipelineSwitchesClickFree(t *testing.T) {
	const hz = 440
	clk := &fakeClock{}
	p := newTestPipeline(t, 0, clk)
	p.connect(nil, 1)
	far := newPartner(hz)
	defer far.encs.close()
	in := make([]float32, 128)
	out := make([]float32, 128)
	var heard []float32
	legs := []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24, codec.L16, codec.Opus, codec.L24, codec.OpusCustom, codec.Opus}
	latency := map[codec.Kind]time.Duration{}
	const perLeg = 112 // blocks, 0.3 s
	for i := range perLeg * len(legs) {
		far.block(t, p, legs[i/perLeg])
		p.process(in, out)
		heard = append(heard, out...)
		clk.t += audio.Duration(128)
		if k, n, ok := p.decoder.received(); ok && i%perLeg == perLeg-1 {
			latency[k] = audio.Duration(n) + codec.FormatOf(k).Lookahead()
		}
	}
	start := 0
	for start < len(heard) && math.Abs(float64(heard[start])) < 0.05 {
		start++
	}
	heard = heard[min(start+2400, len(heard)):]
	slope := 2 * math.Pi * hz / audio.SampleRate * 0.5
	step, at := 0.0, 0
	for i := 1; i < len(heard); i++ {
		if d := math.Abs(float64(heard[i] - heard[i-1])); d > step {
			step, at = d, i
		}
	}
	st := p.playout.Stats()
	t.Logf("largest step %.4f at %d (the tone's steepest %.4f); %d samples concealed; codec delays %v", step, at, slope, st.ConcealedSamples, latency)
	if step > 1.5*slope {
		t.Errorf("a step of %.4f, more than 1.5 × the tone's %.4f", step, slope)
	}
	if st.ConcealmentEvents > 0 || st.DecodeErrors > 0 {
		t.Errorf("%d concealment events, %d decode errors on a clean feed", st.ConcealmentEvents, st.DecodeErrors)
	}
	for k, want := range map[codec.Kind]time.Duration{
		codec.Opus:       7500 * time.Microsecond, // 5 ms + 2.5 ms
		codec.OpusCustom: audio.Duration(128) + audio.Duration(codec.CustomLookahead),
		codec.L24:        audio.Duration(128),
	} {
		if latency[k] != want {
			t.Errorf("%v: codec delay %v, want %v", k, latency[k], want)
		}
	}
}

// TestCallbackNoAllocs: the whole audio callback allocates nothing, with
// everything it may do at once: the partner's codec changing from packet
// to packet (Opus, Opus Custom, L24, L16), packets lost and concealed,
// Opus frames recovered from redundancy, malformed packets rejected by the
// decoder, a backing track playing and a take recording. Before the Opus
// decoder returned predeclared errors, each malformed packet allocated.
func TestCallbackNoAllocs(t *testing.T) {
	clk := &fakeClock{}
	p := newTestPipeline(t, 1, clk)
	p.connect(nil, 1)
	song := &track.Track{Name: "song", Samples: make([]float32, 10*audio.SampleRate)}
	(&tone.Sine{Hz: 220, Amp: 0.2}).Read(song.Samples)
	p.player.SetTrack(song)
	p.player.Schedule(track.Schedule{Gen: 1, Playing: true, At: int64(clk.t)})
	// The take's writer flushes only at Close: it runs on a goroutine of
	// its own, whose allocations AllocsPerRun would count too.
	take, err := record.Start(record.Config{Dir: t.TempDir(), Track: song, Flush: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p.take.Store(take)

	// The partner's packets, encoded beforehand, block by block: one in
	// 13 lost (Opus ones come back from redundancy with the next block),
	// one in 17 malformed. AllocsPerRun calls its function once unmeasured
	// and then, here, once: each call plays the blocks of every codec
	// twice, and what is measured is all they allocate, not an average
	// rounded down to 0.
	const warm, each = 200, 160
	type delivery struct {
		pk        partnerPacket
		recovered bool
	}
	far := newPartner(330)
	defer far.encs.close()
	legs := []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24, codec.L16}
	bad := []byte{0xff, 0xff} // a TOC byte announcing more frames than there are
	blocks := make([][]delivery, warm+2*each)
	var red []delivery
	badOpus := 0 // in the measured blocks
	for i := range blocks {
		blocks[i] = red
		red = nil
		for _, pk := range far.packets(t, legs[i/20%len(legs)]) {
			switch {
			case pk.seq%13 == 0:
				if pk.kind == codec.Opus {
					red = append(red, delivery{pk, true})
				}
			case pk.seq%17 == 0:
				pk.data = bad
				blocks[i] = append(blocks[i], delivery{pk, false})
				if pk.kind == codec.Opus && i >= warm+each {
					badOpus++
				}
			default:
				blocks[i] = append(blocks[i], delivery{pk, false})
			}
		}
	}
	if badOpus == 0 {
		t.Fatal("no malformed Opus packet among the measured blocks")
	}

	in := make([]float32, 128)
	out := make([]float32, 128)
	(&tone.Sine{Hz: 440, Amp: 0.3}).Read(in)
	i := 0
	// block is one device block: the network goroutine's packets, then the
	// callback, then the encoder's side drained.
	block := func() {
		for _, d := range blocks[i] {
			if d.recovered {
				p.recover(1, d.pk.seq, d.pk.ts, d.pk.data)
			} else {
				p.receive(1, d.pk.seq, d.pk.ts, d.pk.kind, d.pk.data)
			}
		}
		i++
		p.process(in, out)
		clk.t += audio.Duration(128)
		for p.capture.Len() > 0 {
			p.capture.Read(p.sendBuf[:128])
		}
	}
	for range warm { // playing, and every codec's decoder warm
		block()
	}
	var before jitter.PlayoutStats
	allocs := testing.AllocsPerRun(1, func() {
		before = p.playout.Stats()
		for range each {
			block()
		}
	})
	if allocs != 0 {
		t.Errorf("the callback allocated %.0f times in %d blocks", allocs, each)
	}
	st := p.playout.Stats()
	t.Logf("while measured: %d samples played, %d concealment events, %d frames recovered, %d packets rejected",
		st.PlayedSamples-before.PlayedSamples, st.ConcealmentEvents-before.ConcealmentEvents,
		st.PacketsRecovered-before.PacketsRecovered, st.DecodeErrors-before.DecodeErrors)
	if st.PlayedSamples == before.PlayedSamples || st.ConcealmentEvents == before.ConcealmentEvents ||
		st.PacketsRecovered == before.PacketsRecovered || st.DecodeErrors == before.DecodeErrors {
		t.Error("not everything happened while measured")
	}
	if st.SilentSamples != before.SilentSamples || st.PacketsDiscarded != before.PacketsDiscarded {
		t.Errorf("the voice stopped or came late while measured: before %+v, after %+v", before, st)
	}
	if _, _, ok := p.sung.load(); !ok {
		t.Error("the track never played")
	}
	if err := take.Close(); err != nil {
		t.Fatal(err)
	}
	if take.Length() == 0 {
		t.Error("nothing was recorded")
	}
}

func TestSendSwitchWaitsForBlocks(t *testing.T) {
	const opus = 240
	var s sendSwitch
	if k := s.next(codec.Opus, 0, 128, opus); k != codec.Opus {
		t.Fatalf("first packet in %v", k)
	}
	// Opus frames of 240 against blocks of 128: the ring holds 128, 16,
	// 144, … after each block; Opus Custom starts when it holds whole
	// blocks.
	ring := 0
	for b := 1; b <= 15; b++ {
		ring += 128
		k := s.next(codec.OpusCustom, ring, 128, opus)
		if want := map[bool]codec.Kind{true: codec.OpusCustom, false: codec.Opus}[ring%128 == 0]; k != want {
			t.Fatalf("block %d, ring %d: %v, want %v", b, ring, k, want)
		}
		if k == codec.OpusCustom {
			break
		}
		ring %= opus
	}
	// Back to Opus at once.
	if k := s.next(codec.Opus, 128, 128, opus); k != codec.Opus {
		t.Errorf("to Opus: %v", k)
	}
	// Blocks that never line up: the change comes after maxAlignWait.
	s = sendSwitch{kind: codec.Opus}
	for w := 0; w <= maxAlignWait; w++ {
		if k := s.next(codec.L16, 100, 96, opus); (k == codec.L16) != (w == maxAlignWait) {
			t.Fatalf("wake %d: %v", w, k)
		}
	}
}

func TestPacketSize(t *testing.T) {
	for _, tc := range []struct {
		kind  codec.Kind
		block int
		want  int
	}{
		{codec.Opus, 128, 240},
		{codec.OpusCustom, 64, 64}, {codec.OpusCustom, 128, 128}, {codec.OpusCustom, 256, 256},
		{codec.OpusCustom, 1024, 512}, {codec.OpusCustom, 960, 960}, {codec.OpusCustom, 96, 64}, {codec.OpusCustom, 0, 128},
		{codec.L16, 64, 64}, {codec.L24, 256, 256}, {codec.L24, 512, 256}, {codec.L16, 300, 150}, {codec.L16, 257, 1},
	} {
		if got := packetSize(tc.kind, tc.block, 240); got != tc.want {
			t.Errorf("%v on blocks of %d: packets of %d, want %d", tc.kind, tc.block, got, tc.want)
		}
	}
}

func TestCodecName(t *testing.T) {
	for _, tc := range []struct {
		kind   codec.Kind
		packet int
		want   string
	}{
		{codec.Opus, 240, "Opus 5 ms"}, {codec.Opus, 120, "Opus 2.5 ms"},
		{codec.OpusCustom, 64, "Opus Custom 1.3 ms"}, {codec.OpusCustom, 128, "Opus Custom 2.7 ms"},
		{codec.L24, 128, "L24"}, {codec.L16, 64, "L16"},
	} {
		if got := codecName(tc.kind, tc.packet); got != tc.want {
			t.Errorf("codecName(%v, %d) = %q, want %q", tc.kind, tc.packet, got, tc.want)
		}
	}
}

// BenchmarkHostCallback measures the audio thread's work per 128-frame
// callback on the host (hand packets to the jitter buffer, decode on
// demand, mix the send and the ears, meters) and reports it as a share of
// the 2.67 ms period, for each codec the partner may send.
func BenchmarkHostCallback(b *testing.B) {
	for _, k := range []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24} {
		b.Run(k.String(), func(b *testing.B) {
			clk := &fakeClock{}
			p := newTestPipeline(b, 1, clk)
			p.connect(nil, 1)
			far := newPartner(330)
			defer far.encs.close()
			// The partner's packets, a second of them made before the
			// clock runs and sent again and again, renumbered.
			var blocks [][]partnerPacket
			for range 375 {
				blocks = append(blocks, far.packets(b, k))
			}
			in := make([]float32, 128)
			out := make([]float32, 128)
			(&tone.Sine{Hz: 440, Amp: 0.3}).Read(in)
			var seq uint16
			var ts uint32
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				for _, pk := range blocks[i%len(blocks)] {
					p.receive(1, seq, ts, pk.kind, pk.data)
					seq++
					ts += uint32(packetSize(pk.kind, 128, audio.Samples(codec.DefaultFrame)))
				}
				i++
				p.process(in, out)
				clk.t += audio.Duration(128)
				for p.capture.Len() > 0 { // the encoder's side, drained
					p.capture.Read(p.sendBuf[:128])
				}
			}
			perCall := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(100*float64(perCall)/float64(audio.Duration(128)), "%period")
		})
	}
}

// BenchmarkEncodePacket measures the encoder goroutine's work per packet
// of each codec, as a share of the packet's duration.
func BenchmarkEncodePacket(b *testing.B) {
	for _, k := range []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24} {
		b.Run(k.String(), func(b *testing.B) {
			var encs encoders
			encs.base = codec.DefaultBitrate
			defer encs.close()
			size := packetSize(k, 128, audio.Samples(codec.DefaultFrame))
			enc, err := encs.get(k, size, codec.DefaultBitrate)
			if err != nil {
				b.Fatal(err)
			}
			pcm := make([]float32, size)
			(&tone.Sine{Hz: 440, Amp: 0.3}).Read(pcm)
			pkt := make([]byte, codec.MaxPacket)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc.Encode(pcm, pkt); err != nil {
					b.Fatal(err)
				}
			}
			perCall := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(100*float64(perCall)/float64(audio.Duration(size)), "%packet")
		})
	}
}
