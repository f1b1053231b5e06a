package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/duetapp/duet/audio/measure"
)

func newPCMPair(t testing.TB, k Kind, packet int) (*PCMEncoder, *PCMDecoder) {
	t.Helper()
	enc, err := NewPCMEncoder(k, packet)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := NewPCMDecoder(k)
	if err != nil {
		t.Fatal(err)
	}
	return enc, dec
}

// TestPCMWire checks the bytes on the wire: big-endian two's complement,
// full scale ±1, clipped, NaN as 0.
func TestPCMWire(t *testing.T) {
	in := []float32{0, 0.5, -0.5, -1, 1, 2, -2, float32(math.NaN()), 1.0 / (1 << 15), -1.0 / (1 << 23)}
	for _, tc := range []struct {
		k    Kind
		want []byte
	}{
		{L16, []byte{
			0x00, 0x00, 0x40, 0x00, 0xc0, 0x00, 0x80, 0x00, 0x7f, 0xff,
			0x7f, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
		}},
		{L24, []byte{
			0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x7f, 0xff, 0xff,
			0x7f, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff,
		}},
	} {
		t.Run(tc.k.String(), func(t *testing.T) {
			enc, dec := newPCMPair(t, tc.k, len(in))
			dst := make([]byte, MaxPacket)
			n, err := enc.Encode(in, dst)
			if err != nil {
				t.Fatal(err)
			}
			if string(dst[:n]) != string(tc.want) {
				t.Fatalf("Encode wrote % x\nwant          % x", dst[:n], tc.want)
			}
			out := make([]float32, 960)
			m, err := dec.Decode(dst[:n], out)
			if err != nil || m != len(in) {
				t.Fatalf("Decode = %d, %v; want %d samples", m, err, len(in))
			}
			step := float32(1.0 / (1 << 15))
			if tc.k == L24 {
				step = 1.0 / (1 << 23)
			}
			want := []float32{0, 0.5, -0.5, -1, 1 - step, 1 - step, -1, 0, 1.0 / (1 << 15), 0}
			if tc.k == L24 {
				want[9] = -step
			}
			for i := range want {
				if out[i] != want[i] {
					t.Errorf("sample %d: %v came back as %v, want %v", i, in[i], out[i], want[i])
				}
			}
		})
	}
}

// TestPCMRoundTrip: a voice comes back within half a quantisation step,
// with no delay.
func TestPCMRoundTrip(t *testing.T) {
	in := voice(4800)
	for _, tc := range []struct {
		k    Kind
		step float64
	}{{L16, 1.0 / (1 << 15)}, {L24, 1.0 / (1 << 23)}} {
		enc, dec := newPCMPair(t, tc.k, 128)
		out, sizes := codeAll(t, enc, dec, in[:4736])
		if sizes[0] != 128*tc.k.sampleBytes() {
			t.Errorf("%v: %d-byte payload for 128 samples", tc.k, sizes[0])
		}
		for i := range out {
			if d := math.Abs(float64(out[i] - in[i])); d > tc.step/2*1.0001 {
				t.Fatalf("%v: sample %d off by %g, more than half a step", tc.k, i, d)
			}
		}
		if enc.Bitrate() != 48000*8*tc.k.sampleBytes() {
			t.Errorf("%v: Bitrate() = %d", tc.k, enc.Bitrate())
		}
		if err := enc.SetBitrate(128000); !errors.Is(err, ErrFixedBitrate) {
			t.Errorf("%v: SetBitrate error %v, want ErrFixedBitrate", tc.k, err)
		}
	}
}

// TestPCMDecodeRejects: payloads of the wrong length are refused and leave
// the decoder as it was (its concealment still mirrors the last good
// packet).
func TestPCMDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		k    Kind
		bad  []int // payload lengths, bytes
		good int
	}{
		{L16, []int{0, 1, 3, 127, 514, 1024}, 512},
		{L24, []int{0, 1, 2, 4, 190, 771, 1536}, 768},
	} {
		t.Run(tc.k.String(), func(t *testing.T) {
			_, dec := newPCMPair(t, tc.k, 64)
			ref, _ := NewPCMDecoder(tc.k)
			good := make([]byte, tc.good)
			for i := range good {
				good[i] = byte(i * 7)
			}
			pcm, want := make([]float32, 960), make([]float32, 960)
			dec.Decode(good, pcm)
			ref.Decode(good, want)
			for _, n := range tc.bad {
				if _, err := dec.Decode(make([]byte, n), pcm); !errors.Is(err, ErrPCMLength) {
					t.Errorf("Decode of %d bytes: error %v, want ErrPCMLength", n, err)
				}
			}
			if _, err := dec.Decode(good, pcm[:tc.good/tc.k.sampleBytes()-1]); !errors.Is(err, ErrShortBuffer) {
				t.Errorf("Decode into too short a buffer: error %v, want ErrShortBuffer", err)
			}
			dec.Conceal(pcm[:100])
			ref.Conceal(want[:100])
			if !equalSamples(pcm[:100], want[:100]) {
				t.Error("a rejected payload changed the concealment")
			}
		})
	}
	if _, err := NewPCMDecoder(Opus); !errors.Is(err, ErrFormat) {
		t.Errorf("NewPCMDecoder(Opus) error %v, want ErrFormat", err)
	}
	for _, n := range []int{0, MaxPCMFrame + 1} {
		if _, err := NewPCMEncoder(L16, n); !errors.Is(err, ErrPacketFrames) {
			t.Errorf("NewPCMEncoder(L16, %d) error %v, want ErrPacketFrames", n, err)
		}
	}
}

// TestPCMConcealJoins loses packets of a tone, one and three in a row, and
// checks the output never jumps by much more than the tone's own steepest
// step: no click where the loss starts or where the voice comes back. It
// fails for silence (a jump of up to the tone's amplitude) and for a
// repeated packet (a jump back to its first sample).
func TestPCMConcealJoins(t *testing.T) {
	const packet = 64
	in := sine(packet*60, 440, 0)
	enc, dec := newPCMPair(t, L24, packet)
	pkt := make([]byte, MaxPacket)
	pcm := make([]float32, 960)
	var out []float32
	lost := map[int]bool{10: true, 30: true, 31: true, 32: true}
	for i := 0; i*packet < len(in); i++ {
		n, _ := enc.Encode(in[i*packet:(i+1)*packet], pkt)
		if lost[i] {
			// As the jitter buffer waits for a late packet: a part first.
			dec.Conceal(pcm[:packet/2])
			dec.Conceal(pcm[packet/2 : packet])
			out = append(out, pcm[:packet]...)
			continue
		}
		k, _ := dec.Decode(pkt[:n], pcm)
		out = append(out, pcm[:k]...)
	}
	toneStep := 0.5 * 2 * math.Pi * 440 / 48000
	for i := 1; i < len(out); i++ {
		if d := math.Abs(float64(out[i] - out[i-1])); d > 1.6*toneStep {
			t.Fatalf("jump of %.4f at sample %d (packet %d), the tone's steepest step is %.4f", d, i, i/packet, toneStep)
		}
	}
	// The first lost packet sounds (the fade), the third of a run is
	// silent.
	if rms := measure.RMS(out[10*packet : 10*packet+16]); rms < 0.1 {
		t.Errorf("concealment starts at RMS %.3f, want the voice fading (≥ 0.1)", rms)
	}
	if peak := measure.Peak(out[32*packet : 33*packet]); peak != 0 {
		t.Errorf("third lost packet peaks at %.3f, want silence after the fade", peak)
	}
}

func TestPCMConcealBeforeFirst(t *testing.T) {
	_, dec := newPCMPair(t, L16, 64)
	pcm := []float32{1, 1, 1}
	if err := dec.Conceal(pcm); err != nil || pcm[0] != 0 || pcm[2] != 0 {
		t.Errorf("Conceal before any packet = %v, %v; want silence", pcm, err)
	}
}

func TestPCMNoAllocs(t *testing.T) {
	enc, dec := newPCMPair(t, L24, 128)
	in := sine(128, 440, 0)
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(in, pkt)
	pcm := make([]float32, 960)
	for name, f := range map[string]func(){
		"Encode":    func() { enc.Encode(in, pkt) },
		"Decode":    func() { dec.Decode(pkt[:n], pcm) },
		"Conceal":   func() { dec.Conceal(pcm[:100]) },
		"malformed": func() { dec.Decode(pkt[:n-1], pcm) },
	} {
		if a := testing.AllocsPerRun(200, f); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}

// FuzzPCMDecode: garbage payloads and buffers of any size never crash the
// decoder, write past pcm or make samples outside [-1, 1). Each input gets
// a new decoder, so a failure replays alone.
func FuzzPCMDecode(f *testing.F) {
	f.Add([]byte{0x7f, 0xff, 0x80, 0x00}, false, uint16(960), uint8(0))
	f.Add([]byte{0x7f, 0xff, 0xff, 0x80, 0x00, 0x00}, true, uint16(960), uint8(30))
	f.Add([]byte{1, 2, 3}, false, uint16(1), uint8(200))
	f.Add(make([]byte, 768), true, uint16(256), uint8(64))
	const guard = 64
	buf := make([]float32, 1024+guard)
	f.Fuzz(func(t *testing.T, packet []byte, wide bool, room uint16, conceal uint8) {
		k, width := L16, 2
		if wide {
			k, width = L24, 3
		}
		dec, err := NewPCMDecoder(k)
		if err != nil {
			t.Fatal(err)
		}
		// A packet first, so the concealment has something to mirror.
		dec.Decode([]byte{0x40, 0, 0, 0x20, 0, 0}[:2*width], buf)
		size := int(room) % 1024
		for i := range buf {
			buf[i] = 12345
		}
		n, err := dec.Decode(packet, buf[:size:size])
		valid := len(packet) > 0 && len(packet)%width == 0 && len(packet) <= MaxPCMFrame*width
		switch {
		case err == nil && (!valid || n != len(packet)/width || n > size):
			t.Fatalf("Decode of %d bytes wrote %d samples into %d", len(packet), n, size)
		case err != nil && valid && len(packet)/width <= size:
			t.Fatalf("Decode of a good %d-byte payload: %v", len(packet), err)
		}
		c := min(int(conceal), size)
		if err := dec.Conceal(buf[:c]); err != nil {
			t.Fatal(err)
		}
		for i, v := range buf[:max(n, c)] {
			if !(v >= -1 && v < 1) {
				t.Fatalf("sample %d is %v", i, v)
			}
		}
		for i := size; i < len(buf); i++ {
			if buf[i] != 12345 {
				t.Fatalf("wrote buf[%d] past pcm's %d samples", i, size)
			}
		}
	})
}

func BenchmarkEncodeL24x64(b *testing.B) {
	enc, _ := newPCMPair(b, L24, 64)
	in := voice(64)
	pkt := make([]byte, MaxPacket)
	b.ReportAllocs()
	for b.Loop() {
		enc.Encode(in, pkt)
	}
}

func BenchmarkDecodeL24x64(b *testing.B) {
	enc, dec := newPCMPair(b, L24, 64)
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(voice(64), pkt)
	pcm := make([]float32, 960)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(pkt[:n], pcm); err != nil {
			b.Fatal(err)
		}
	}
}
