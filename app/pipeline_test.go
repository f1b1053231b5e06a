package app

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/tone"
)

func newTestPipeline(t testing.TB, monitor float32) *pipeline {
	p, err := newPipeline(pipelineConfig{
		frame:        codec.DefaultFrame,
		bitrate:      codec.DefaultBitrate,
		jitterTarget: audio.Samples(DefaultJitterTarget),
		monitor:      monitor,
		maxBlock:     4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// encodedFrames makes n Opus packets of a 660 Hz tone.
func encodedFrames(t testing.TB, n int) [][]byte {
	enc, err := codec.NewEncoder(codec.DefaultFrame, codec.DefaultBitrate)
	if err != nil {
		t.Fatal(err)
	}
	src := &tone.Sine{Hz: 660, Amp: 0.3}
	pcm := make([]float32, enc.FrameSamples())
	var pkts [][]byte
	for range n {
		src.Read(pcm)
		buf := make([]byte, codec.MaxPacket)
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, buf[:m])
	}
	return pkts
}

// TestPipelineLevels drives the audio thread by hand: the mic, the
// partner's decoded voice and the output all reach their meters.
func TestPipelineLevels(t *testing.T) {
	p := newTestPipeline(t, 1)
	p.connect(nil, 1)
	pkts := encodedFrames(t, 100)
	in := make([]float32, 120) // half a frame per block
	out := make([]float32, 120)
	src := &tone.Sine{Hz: 440, Amp: 0.3}
	for i := range 2 * len(pkts) {
		if i%2 == 0 {
			p.receive(1, uint16(i/2), uint32(i/2*240), pkts[i/2])
		}
		src.Read(in)
		p.process(in, out)
	}
	l := p.micMeter.Level()
	if math.Abs(l.Peak-(-10.46)) > 0.2 || math.Abs(l.RMS-(-13.47)) > 0.2 {
		t.Errorf("mic level %+v, want peak -10.5 and RMS -13.5 dBFS", l)
	}
	if l := p.partnerMeter.Level(); l.RMS < -16 || l.RMS > -12 {
		t.Errorf("partner level %+v, want RMS near -13.5 dBFS", l)
	}
	if l := p.outMeter.Level(); l.RMS < -13 || l.RMS > -7 {
		t.Errorf("output level %+v, want about -10.5 dBFS (two tones)", l)
	}
}

// BenchmarkHostCallback measures the audio thread's work per 128-frame
// callback on the host (hand packets to the jitter buffer, decode on
// demand, mix the send and the ears, meters) and reports it as a share of
// the 2.67 ms period; BenchmarkEncodeFrame the encoder goroutine's per
// 5 ms frame.
func BenchmarkHostCallback(b *testing.B) {
	p := newTestPipeline(b, 1)
	p.connect(nil, 1)
	pkts := encodedFrames(b, 200)
	in := make([]float32, 128)
	out := make([]float32, 128)
	(&tone.Sine{Hz: 440, Amp: 0.3}).Read(in)
	samples, seq := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		// One 240-sample packet arrives for every 240 samples played.
		for samples >= 240*seq-480 {
			p.receive(1, uint16(seq), uint32(seq*240), pkts[seq%len(pkts)])
			seq++
		}
		p.process(in, out)
		samples += len(in)
		for p.capture.Len() > 0 { // the encoder's side, drained
			p.capture.Read(p.sendBuf[:128])
		}
	}
	if st := p.jb.Stats(); st.PlayedSamples < int64(b.N)*64 || st.ConcealedSamples > st.PlayedSamples/10 {
		b.Fatalf("the benchmark did not decode: %+v", st)
	}
	perCall := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(100*float64(perCall)/float64(audio.Duration(128)), "%period")
}

func BenchmarkEncodeFrame(b *testing.B) {
	p := newTestPipeline(b, 1)
	frame := make([]float32, p.enc.FrameSamples())
	(&tone.Sine{Hz: 440, Amp: 0.3}).Read(frame)
	pkt := make([]byte, codec.MaxPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.enc.Encode(frame, pkt); err != nil {
			b.Fatal(err)
		}
	}
	perCall := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(100*float64(perCall)/float64(codec.DefaultFrame), "%frame")
}
