package codec

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"github.com/duetapp/duet/audio/tone"
)

// leg is a stretch of a voice sent in one codec.
type leg struct {
	kind    Kind
	packets int
}

// sender encodes a steady tone packet by packet, in whichever codec the
// leg says, each codec's encoder kept from one leg to the next as a Duet
// sender keeps them: Opus in 5 ms frames, the others in 128-sample device
// blocks.
type sender struct {
	encs map[Kind]FrameEncoder
	src  *tone.Sine
}

func newSender(t testing.TB, hz, amp float64) *sender {
	t.Helper()
	s := &sender{encs: map[Kind]FrameEncoder{}, src: &tone.Sine{Hz: hz, Amp: float32(amp)}}
	for k, packet := range map[Kind]int{Opus: 240, OpusCustom: 128, L16: 128, L24: 128} {
		e, err := FormatOf(k).NewEncoder(EncoderOptions{Packet: packet})
		if err != nil {
			t.Fatal(err)
		}
		s.encs[k] = e
		t.Cleanup(func() { e.Close() })
	}
	return s
}

func (s *sender) packet(t testing.TB, k Kind) []byte {
	e := s.encs[k]
	pcm := make([]float32, e.FrameSamples())
	s.src.Read(pcm)
	buf := make([]byte, MaxPacket)
	n, err := e.Encode(pcm, buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// maxStep is the largest sample-to-sample step in p.
func maxStep(p []float32) (step float64, at int) {
	for i := 1; i < len(p); i++ {
		if d := math.Abs(float64(p[i] - p[i-1])); d > step {
			step, at = d, i
		}
	}
	return step, at
}

// sing sends a steady tone of hz leg by leg and decodes each packet with
// dec; it returns what dec wrote, and where in it each leg starts (and,
// last, its end).
func sing(t *testing.T, hz, amp float64, legs []leg, dec func(k Kind, p []byte, pcm []float32) (int, error)) (out []float32, starts []int) {
	t.Helper()
	s := newSender(t, hz, amp)
	pcm := make([]float32, MaxDecoded)
	for _, l := range legs {
		starts = append(starts, len(out))
		for range l.packets {
			n, err := dec(l.kind, s.packet(t, l.kind), pcm)
			if err != nil {
				t.Fatalf("%v: %v", l.kind, err)
			}
			out = append(out, pcm[:n]...)
		}
	}
	return out, append(starts, len(out))
}

// newTestSwitch returns a Switch, closed with the test, keeping the
// voice's delay if keep.
func newTestSwitch(t *testing.T, keep bool) *Switch {
	t.Helper()
	sw, err := NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	if keep {
		sw.KeepDelay()
	}
	return sw
}

// TestSwitchClickFree sends a steady 440 Hz tone through every change of
// codec and back, and decodes it with a Switch: no sample-to-sample step
// is more than 1.5 times the tone's own steepest (2π·440/48000 of its
// amplitude), where switching decoders outright jumps by several times
// that.
func TestSwitchClickFree(t *testing.T) {
	const hz, amp = 440, 0.5
	legs := []leg{{Opus, 40}, {OpusCustom, 60}, {L16, 60}, {Opus, 40}, {L24, 60}, {OpusCustom, 60},
		{L24, 40}, {L16, 40}, {Opus, 40}, {OpusCustom, 40}}
	slope := 2 * math.Pi * hz / 48000 * amp
	const warmup = 2400 // the first decoder's own start from silence

	decode := func(t *testing.T, dec func(k Kind, p []byte, pcm []float32) (int, error)) []float32 {
		out, _ := sing(t, hz, amp, legs, dec)
		return out[warmup:]
	}

	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("switch/keepDelay=%v", keep), func(t *testing.T) {
			sw := newTestSwitch(t, keep)
			out := decode(t, sw.Decode)
			step, at := maxStep(out)
			t.Logf("largest step %.4f at sample %d; the tone's steepest %.4f", step, at+warmup, slope)
			if step > 1.5*slope {
				t.Errorf("a step of %.4f at sample %d, more than 1.5 × the tone's %.4f", step, at+warmup, slope)
			}
			var sum float64
			for _, v := range out {
				sum += float64(v) * float64(v)
			}
			if rms := math.Sqrt(sum / float64(len(out))); rms < 0.8*amp/math.Sqrt2 {
				t.Errorf("RMS %.3f, want about %.3f: the voice went missing", rms, amp/math.Sqrt2)
			}
			if sw.Kind() != OpusCustom {
				t.Errorf("Kind() = %v after a leg of Opus Custom", sw.Kind())
			}
		})
	}
	// The test can fail: with one decoder per codec and no crossfade,
	// the first change already clicks.
	t.Run("outright", func(t *testing.T) {
		decs := map[Kind]FrameDecoder{}
		for _, k := range []Kind{Opus, OpusCustom, L16, L24} {
			d, err := FormatOf(k).NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			decs[k] = d
		}
		out := decode(t, func(k Kind, p []byte, pcm []float32) (int, error) { return decs[k].Decode(p, pcm) })
		step, at := maxStep(out)
		t.Logf("outright: largest step %.4f at sample %d", step, at+warmup)
		if step < 3*slope {
			t.Errorf("switching outright stepped only %.4f (the tone's steepest %.4f): the test would not see a click", step, slope)
		}
	})
}

// TestSwitchKeepsDelay sends a steady 440 Hz tone through every change of
// codec and back: under KeepDelay the tone's phase in the middle of each
// leg is the first leg's, within 0.2 rad (3.5 samples); without it each
// change moves the voice by the difference of look-aheads (56 samples
// between Opus and Opus Custom: 3.2 rad).
func TestSwitchKeepsDelay(t *testing.T) {
	const hz, amp = 440, 0.5
	legs := []leg{{OpusCustom, 60}, {Opus, 40}, {L16, 60}, {OpusCustom, 60}, {L24, 60}, {Opus, 40}, {OpusCustom, 60}}
	w := 2 * math.Pi * hz / 48000
	// phases returns the tone's phase against the output's own sample
	// count over the middle half of each leg after the first.
	phases := func(t *testing.T, keep bool) []float64 {
		out, starts := sing(t, hz, amp, legs, newTestSwitch(t, keep).Decode)
		var ph []float64
		for i := range legs {
			from, to := starts[i]+(starts[i+1]-starts[i])/4, starts[i+1]-(starts[i+1]-starts[i])/4
			var z complex128
			for j := from; j < to; j++ {
				z += complex(float64(out[j]), 0) * cmplx.Exp(complex(0, -w*float64(j)))
			}
			ph = append(ph, cmplx.Phase(z))
		}
		return ph
	}
	off := func(a, b float64) float64 { return math.Abs(math.Remainder(a-b, 2*math.Pi)) }

	ph := phases(t, true)
	for i := 1; i < len(legs); i++ {
		if d := off(ph[i], ph[0]); d > 0.2 {
			t.Errorf("leg %d (%v): the tone %.2f rad from where it was in the first (%v), want within 0.2", i, legs[i].kind, d, legs[0].kind)
		}
	}
	// The test can fail: without KeepDelay the voice moves.
	ph = phases(t, false)
	var most float64
	for i := 1; i < len(legs); i++ {
		most = max(most, off(ph[i], ph[0]))
	}
	if most < 1 {
		t.Errorf("without KeepDelay the tone moved %.2f rad at most: the test would not see a change of delay", most)
	}
}

// TestSwitchConcealAnyLength waits for late packets in 64-sample steps
// (Opus conceals in 120) and in odd lengths: every length asked is filled,
// and the voice joins the next packet without a step.
func TestSwitchConcealAnyLength(t *testing.T) {
	const hz, amp = 440, 0.5
	slope := 2 * math.Pi * hz / 48000 * amp
	for _, k := range []Kind{Opus, OpusCustom, L24} {
		t.Run(k.String(), func(t *testing.T) {
			s := newSender(t, hz, amp)
			sw, err := NewSwitch()
			if err != nil {
				t.Fatal(err)
			}
			defer sw.Close()
			pcm := make([]float32, 960)
			var out []float32
			for i := range 100 {
				p := s.packet(t, k)
				if i%10 == 5 {
					// Late: conceal a little before it comes.
					for _, n := range []int{64, 37, 1} {
						if err := sw.Conceal(pcm[:n]); err != nil {
							t.Fatal(err)
						}
						out = append(out, pcm[:n]...)
					}
				}
				n, err := sw.Decode(k, p, pcm)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, pcm[:n]...)
			}
			out = out[2400:]
			step, at := maxStep(out)
			t.Logf("largest step %.4f at %d; the tone's steepest %.4f", step, at, slope)
			// A wait's concealment joins a packet whose voice is a wait
			// later: the join fades, but over a short carry.
			if step > 2.5*slope {
				t.Errorf("a step of %.4f at %d, more than 2.5 × the tone's %.4f", step, at, slope)
			}
		})
	}
}

func TestSwitchRejects(t *testing.T) {
	sw, err := NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	pcm := make([]float32, 960)
	for _, k := range []Kind{0, 5, 255} {
		if _, err := sw.Decode(k, []byte{1, 2}, pcm); !errors.Is(err, ErrFormat) {
			t.Errorf("Decode(kind %d) = %v, want ErrFormat", k, err)
		}
	}
	if err := sw.Conceal(pcm[:100]); err != nil || pcm[0] != 0 || sw.Kind() != 0 {
		t.Errorf("Conceal before any packet: %v, %v, kind %v", err, pcm[0], sw.Kind())
	}
	if _, err := sw.Decode(L16, []byte{0, 1, 2, 3}, pcm); err != nil {
		t.Fatal(err)
	}
	if _, err := sw.Decode(L24, []byte{1, 2, 3, 4}, pcm); !errors.Is(err, ErrPCMLength) {
		t.Errorf("a bad L24 packet: %v", err)
	}
	if _, err := sw.Decode(OpusCustom, []byte{1}, pcm); !errors.Is(err, ErrMalformed) {
		t.Errorf("a bad Opus Custom packet: %v", err)
	}
	if sw.Kind() != L16 {
		t.Errorf("after rejected packets Kind() = %v, want L16 still", sw.Kind())
	}
}

// TestSwitchNoAllocs: decoding, concealing and changing codec allocate
// nothing, for the audio thread.
func TestSwitchNoAllocs(t *testing.T) {
	s := newSender(t, 440, 0.5)
	sw, err := NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	kinds := []Kind{Opus, OpusCustom, L16, L24, OpusCustom}
	pkts := map[Kind][]byte{}
	for _, k := range kinds {
		pkts[k] = s.packet(t, k)
	}
	pcm := make([]float32, 960)
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		k := kinds[i%len(kinds)]
		i++
		if _, err := sw.Decode(k, pkts[k], pcm); err != nil {
			t.Fatal(err)
		}
		if err := sw.Conceal(pcm[:64+i%50]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per packet", allocs)
	}
}
