package codec

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
)

func sine(n int, hz float64, phase int) []float32 {
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(0.5 * math.Sin(2*math.Pi*hz*float64(phase+i)/audio.SampleRate))
	}
	return p
}

func TestFrameSamples(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
		err  bool
	}{
		{2500 * time.Microsecond, 120, false},
		{5 * time.Millisecond, 240, false},
		{10 * time.Millisecond, 480, false},
		{20 * time.Millisecond, 960, false},
		{3 * time.Millisecond, 0, true},
		{40 * time.Millisecond, 0, true},
	} {
		got, err := FrameSamples(tc.d)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("FrameSamples(%v) = %d, %v; want %d, err %v", tc.d, got, err, tc.want, tc.err)
		}
		if tc.err && !errors.Is(err, ErrFrame) {
			t.Errorf("FrameSamples(%v) error %v is not ErrFrame", tc.d, err)
		}
	}
}

// TestRoundTrip encodes a tone at each frame size and checks the decoded
// signal matches the input, shifted by the codec's 2.5 ms look-ahead.
func TestRoundTrip(t *testing.T) {
	for _, frame := range []time.Duration{2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		t.Run(frame.String(), func(t *testing.T) {
			enc, err := NewEncoder(frame, DefaultBitrate)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			n := enc.FrameSamples()
			const total = audio.SampleRate / 2
			in := sine(total, 440, 0)
			out := make([]float32, 0, total)
			pkt := make([]byte, MaxPacket)
			pcm := make([]float32, 960)
			for i := 0; i+n <= total; i += n {
				m, err := enc.Encode(in[i:i+n], pkt)
				if err != nil {
					t.Fatal(err)
				}
				k, err := dec.Decode(pkt[:m], pcm)
				if err != nil {
					t.Fatal(err)
				}
				if k != n {
					t.Fatalf("decoded %d samples, want %d", k, n)
				}
				out = append(out, pcm[:k]...)
			}
			shift := audio.Samples(Lookahead)
			var errSum, sigSum float64
			for i := audio.SampleRate / 10; i < len(out); i++ {
				d := float64(out[i] - in[i-shift])
				errSum += d * d
				sigSum += float64(in[i-shift]) * float64(in[i-shift])
			}
			snr := 10 * math.Log10(sigSum/errSum)
			if snr < 20 {
				t.Errorf("SNR after round trip = %.1f dB, want ≥ 20 dB", snr)
			}
		})
	}
}

func TestConcealContinuesTone(t *testing.T) {
	enc, _ := NewEncoder(DefaultFrame, DefaultBitrate)
	dec, _ := NewDecoder()
	pkt := make([]byte, MaxPacket)
	pcm := make([]float32, 240)
	for i := 0; i < 40; i++ {
		m, err := enc.Encode(sine(240, 440, i*240), pkt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Decode(pkt[:m], pcm); err != nil {
			t.Fatal(err)
		}
	}
	clear(pcm)
	if err := dec.Conceal(pcm); err != nil {
		t.Fatal(err)
	}
	var energy float64
	for _, v := range pcm {
		energy += float64(v * v)
	}
	if rms := math.Sqrt(energy / float64(len(pcm))); rms < 0.05 {
		t.Errorf("concealed frame RMS = %.3f, want the tone to carry on (≥ 0.05)", rms)
	}
}

func TestEncodeWrongLength(t *testing.T) {
	enc, _ := NewEncoder(DefaultFrame, DefaultBitrate)
	if _, err := enc.Encode(make([]float32, 100), make([]byte, MaxPacket)); err == nil {
		t.Fatal("Encode of 100 samples with a 240-sample frame succeeded")
	}
}

func TestDecodeGarbage(t *testing.T) {
	dec, _ := NewDecoder()
	pcm := make([]float32, 960)
	// A TOC byte announcing more frames than the packet holds.
	if _, err := dec.Decode([]byte{0xff, 0xff}, pcm); err == nil {
		t.Fatal("Decode of a malformed packet succeeded")
	}
}

// TestDecoderNoAllocs: the decoder runs on the audio thread, and a bad
// packet from the network must cost it no allocation either (it did when
// errors were wrapped with fmt.Errorf).
func TestDecoderNoAllocs(t *testing.T) {
	enc, _ := NewEncoder(DefaultFrame, DefaultBitrate)
	dec, _ := NewDecoder()
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(sine(240, 440, 0), pkt)
	pcm := make([]float32, 960)
	bad := []byte{0xff, 0xff} // a TOC byte announcing more frames than there are
	for name, f := range map[string]func() error{
		"Decode":    func() error { _, err := dec.Decode(pkt[:n], pcm); return err },
		"Conceal":   func() error { return dec.Conceal(pcm[:240]) },
		"malformed": func() error { _, err := dec.Decode(bad, pcm); return err },
		"empty":     func() error { _, err := dec.Decode(nil, pcm); return err },
		"too long":  func() error { _, err := dec.Decode(pkt[:n], pcm[:120]); return err },
	} {
		err := f()
		if good := name == "Decode" || name == "Conceal"; good != (err == nil) {
			t.Errorf("%s: error %v", name, err)
		}
		if a := testing.AllocsPerRun(200, func() { f() }); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}

func BenchmarkEncode5ms(b *testing.B) {
	enc, _ := NewEncoder(DefaultFrame, DefaultBitrate)
	in := sine(240, 440, 0)
	pkt := make([]byte, MaxPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(in, pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode5ms(b *testing.B) {
	enc, _ := NewEncoder(DefaultFrame, DefaultBitrate)
	dec, _ := NewDecoder()
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(sine(240, 440, 0), pkt)
	pcm := make([]float32, 960)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(pkt[:n], pcm); err != nil {
			b.Fatal(err)
		}
	}
}
