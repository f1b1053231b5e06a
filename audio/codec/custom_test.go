package codec

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
)

// The decoders play through the jitter buffer.
var (
	_ jitter.Decoder = (*CustomDecoder)(nil)
	_ jitter.Decoder = (*PCMDecoder)(nil)
	_ jitter.Decoder = FrameDecoder(nil)
)

func newCustomPair(t testing.TB, packet int, o CustomOptions) (*CustomEncoder, *CustomDecoder) {
	t.Helper()
	enc, err := NewCustomEncoder(CustomFrame, packet, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	dec, err := NewCustomDecoder(CustomFrame)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Close() })
	return enc, dec
}

// codeAll runs in through enc and dec packet by packet and returns what
// came out, and the payload sizes.
func codeAll(t testing.TB, enc FrameEncoder, dec FrameDecoder, in []float32) (out []float32, sizes []int) {
	t.Helper()
	n := enc.FrameSamples()
	pkt := make([]byte, MaxPacket)
	pcm := make([]float32, 960)
	for i := 0; i+n <= len(in); i += n {
		m, err := enc.Encode(in[i:i+n], pkt)
		if err != nil {
			t.Fatal(err)
		}
		k, err := dec.Decode(pkt[:m], pcm)
		if err != nil {
			t.Fatal(err)
		}
		if k != n {
			t.Fatalf("decoded %d samples from a packet of %d", k, n)
		}
		out = append(out, pcm[:k]...)
		sizes = append(sizes, m)
	}
	return out, sizes
}

// snr compares out with in delayed by shift samples, after the first
// 100 ms, in dB.
func snr(in, out []float32, shift int) float64 {
	var errSum, sigSum float64
	for i := 4800; i < len(out); i++ {
		d := float64(out[i] - in[i-shift])
		errSum += d * d
		sigSum += float64(in[i-shift]) * float64(in[i-shift])
	}
	return 10 * math.Log10(sigSum/errSum)
}

func voice(n int) []float32 {
	v := &tone.Voice{Base: 220, Amp: 0.5, Seed: 7}
	p := make([]float32, n)
	v.Read(p)
	return p
}

// TestCustomRoundTrip codes a sung voice in packets of one, two and four
// frames and checks it comes back, CustomLookahead later, at the constant
// size the bitrate asks for.
func TestCustomRoundTrip(t *testing.T) {
	in := voice(48000)
	for _, packet := range []int{64, 128, 256} {
		t.Run(strconv.Itoa(packet), func(t *testing.T) {
			enc, dec := newCustomPair(t, packet, CustomOptions{})
			out, sizes := codeAll(t, enc, dec, in)
			// 132 kbit/s: 22 bytes a frame, and a length byte each.
			want := packet / CustomFrame * 23
			for i, s := range sizes {
				if s != want {
					t.Fatalf("packet %d is %d bytes, want %d", i, s, want)
				}
			}
			got := snr(in, out, CustomLookahead)
			if got < 25 {
				t.Errorf("SNR %.1f dB, want ≥ 25 dB", got)
			}
			t.Logf("%d-sample packets of %d bytes: SNR %.1f dB", packet, want, got)
			if got := snr(in, out, CustomLookahead+8); got > 6 {
				t.Errorf("SNR %.1f dB at the wrong shift: the decoder's delay is not %d", got, CustomLookahead)
			}
		})
	}
}

// TestCustomDelay measures the codec's delay by cross-correlating bursts
// with what comes out: 64 samples (1.33 ms) after the frame, against
// 120 (2.5 ms) for standard Opus.
func TestCustomDelay(t *testing.T) {
	in := tone.Bursts(48000, 0.5, 3)
	for _, tc := range []struct {
		name string
		f    Format
		o    EncoderOptions
		want int
	}{
		{"custom64", FormatOf(OpusCustom), EncoderOptions{Packet: 64}, CustomLookahead},
		{"custom128", FormatOf(OpusCustom), EncoderOptions{Packet: 128}, CustomLookahead},
		{"opus2.5ms", FormatOf(Opus), EncoderOptions{Packet: 120}, 120},
		{"l16", FormatOf(L16), EncoderOptions{Packet: 64}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, dec, err := New(tc.f, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			defer dec.Close()
			out, _ := codeAll(t, enc, dec, in)
			lag, score := measure.Delay(in, out, 1000)
			if score < 0.9 || math.Abs(lag-float64(tc.want)) > 1.5 {
				t.Errorf("delay %.2f samples (score %.2f), want %d", lag, score, tc.want)
			}
			t.Logf("%s: %.2f samples = %.3f ms after the packet, %.3f ms with it",
				tc.name, lag, lag/48, (lag+float64(tc.o.Packet))/48)
		})
	}
}

// TestCustomConceal checks concealment carries a tone on, in whole frames
// and in part of one.
func TestCustomConceal(t *testing.T) {
	enc, dec := newCustomPair(t, 64, CustomOptions{})
	codeAll(t, enc, dec, sine(4800, 440, 0))
	for _, n := range []int{64, 128, 100} {
		pcm := make([]float32, n)
		if err := dec.Conceal(pcm); err != nil {
			t.Fatal(err)
		}
		if rms := measure.RMS(pcm); rms < 0.05 {
			t.Errorf("Conceal(%d): RMS %.3f, want the tone to carry on (≥ 0.05)", n, rms)
		}
	}
}

// TestCustomDecodeRejects feeds malformed packets between good ones: each
// is refused with a clear error, and the good ones decode exactly as if
// the bad had never come.
func TestCustomDecodeRejects(t *testing.T) {
	enc, dec := newCustomPair(t, 128, CustomOptions{})
	ref, err := NewCustomDecoder(CustomFrame)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	in := sine(128*20, 440, 0)
	pkt := make([]byte, MaxPacket)
	good, err := enc.Encode(in[:128], pkt)
	if err != nil {
		t.Fatal(err)
	}
	frame := pkt[:23] // one whole frame with its length byte
	bad := []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"length 0", []byte{0}, ErrMalformed},
		{"length 1 (libopus would conceal)", []byte{1, 0}, ErrMalformed},
		{"length past the end", append([]byte{200}, frame[1:]...), ErrMalformed},
		{"trailing byte", append(append([]byte{}, frame...), 7), ErrMalformed},
		{"frame size above the mode's", append([]byte{22, 0x08}, frame[2:]...), ErrMalformed},
		{"stereo", append([]byte{22, 0x04}, frame[2:]...), ErrMalformed},
		{"good frame then a bad one", append(append([]byte{}, frame...), 3, 0x18, 0, 0), ErrMalformed},
		{"more frames than pcm holds", pkt[:good], ErrShortBuffer},
	}
	a, b := make([]float32, 960), make([]float32, 960)
	for i := 0; i+128 <= len(in); i += 128 {
		n, _ := enc.Encode(in[i:i+128], pkt)
		for _, tc := range bad {
			room := 960
			if tc.want == ErrShortBuffer {
				room = 64
			}
			if _, err := dec.Decode(tc.p, a[:room]); !errors.Is(err, tc.want) {
				t.Fatalf("%s: Decode error %v, want %v", tc.name, err, tc.want)
			}
		}
		na, err := dec.Decode(pkt[:n], a)
		if err != nil {
			t.Fatal(err)
		}
		nb, _ := ref.Decode(pkt[:n], b)
		if na != nb || !equalSamples(a[:na], b[:nb]) {
			t.Fatalf("packet %d decodes differently after malformed ones", i/128)
		}
	}
}

func equalSamples(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCustomOptions(t *testing.T) {
	for _, tc := range []struct {
		name          string
		frame, packet int
		o             CustomOptions
		want          error
	}{
		{"frame 128 aborts libopus", 128, 128, CustomOptions{}, ErrCustomFrame},
		{"frame 256 aborts libopus", 256, 256, CustomOptions{}, ErrCustomFrame},
		{"frame 120 gains nothing", 120, 120, CustomOptions{}, ErrCustomFrame},
		{"frame 0", 0, 64, CustomOptions{}, ErrCustomFrame},
		{"packet not whole frames", 64, 96, CustomOptions{}, ErrPacketFrames},
		{"packet 0", 64, 0, CustomOptions{}, ErrPacketFrames},
		{"packet over 20 ms", 64, 1024, CustomOptions{}, ErrPacketFrames},
		{"bitrate low", 64, 64, CustomOptions{Bitrate: 16000}, ErrBitrate},
		{"bitrate high", 64, 64, CustomOptions{Bitrate: 300000}, ErrBitrate},
		{"complexity", 64, 64, CustomOptions{Complexity: 11}, ErrComplexity},
		{"negative complexity", 64, 64, CustomOptions{Complexity: -1}, ErrComplexity},
		{"20 ms", 64, 960, CustomOptions{}, nil},
		{"low complexity VBR", 64, 64, CustomOptions{Bitrate: 96000, Complexity: 1, VBR: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewCustomEncoder(tc.frame, tc.packet, tc.o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil {
				e.Close()
			}
		})
	}
	if _, err := NewCustomDecoder(128); !errors.Is(err, ErrCustomFrame) {
		t.Errorf("NewCustomDecoder(128) error %v, want ErrCustomFrame", err)
	}
}

// TestCustomBitrate checks SetBitrate sizes constant-bitrate frames and
// VBR varies them around the rate.
func TestCustomBitrate(t *testing.T) {
	in := voice(24000)
	enc, dec := newCustomPair(t, 64, CustomOptions{})
	if err := enc.SetBitrate(96000); err != nil {
		t.Fatal(err)
	}
	if err := enc.SetBitrate(10); !errors.Is(err, ErrBitrate) {
		t.Errorf("SetBitrate(10) error %v, want ErrBitrate", err)
	}
	if enc.Bitrate() != 96000 {
		t.Errorf("Bitrate() = %d, want 96000", enc.Bitrate())
	}
	_, sizes := codeAll(t, enc, dec, in)
	if sizes[0] != 1+16 || sizes[len(sizes)-1] != 1+16 {
		t.Errorf("96 kbit/s packets of %d…%d bytes, want 17", sizes[0], sizes[len(sizes)-1])
	}

	venc, vdec := newCustomPair(t, 64, CustomOptions{VBR: true})
	_, sizes = codeAll(t, venc, vdec, in)
	lo, hi, sum := sizes[0], sizes[0], 0
	for _, s := range sizes {
		lo, hi, sum = min(lo, s), max(hi, s), sum+s-1
	}
	mean := float64(sum) / float64(len(sizes)) * 8 * 750
	if lo == hi || mean < 0.7*DefaultCustomBitrate || mean > 1.3*DefaultCustomBitrate {
		t.Errorf("VBR frames %d…%d bytes, mean %.0f bit/s; want varying around %d", lo-1, hi-1, mean, DefaultCustomBitrate)
	}
}

func TestCustomClose(t *testing.T) {
	enc, dec := newCustomPair(t, 64, CustomOptions{})
	enc.Close()
	dec.Close()
	enc.Close() // twice is fine
	dec.Close()
	if _, err := enc.Encode(make([]float32, 64), make([]byte, MaxPacket)); !errors.Is(err, ErrClosed) {
		t.Errorf("Encode after Close: %v, want ErrClosed", err)
	}
	if _, err := dec.Decode([]byte{2, 0, 0}, make([]float32, 64)); !errors.Is(err, ErrClosed) {
		t.Errorf("Decode after Close: %v, want ErrClosed", err)
	}
	if err := dec.Conceal(make([]float32, 64)); !errors.Is(err, ErrClosed) {
		t.Errorf("Conceal after Close: %v, want ErrClosed", err)
	}
}

// TestCustomNoAllocs: the decoder runs on the audio thread.
func TestCustomNoAllocs(t *testing.T) {
	enc, dec := newCustomPair(t, 128, CustomOptions{})
	in := sine(128, 440, 0)
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(in, pkt)
	pcm := make([]float32, 960)
	for name, f := range map[string]func(){
		"Encode":    func() { enc.Encode(in, pkt) },
		"Decode":    func() { dec.Decode(pkt[:n], pcm) },
		"Conceal":   func() { dec.Conceal(pcm[:100]) },
		"malformed": func() { dec.Decode(pkt[:n-1], pcm) },
		"too long":  func() { dec.Decode(pkt[:n], pcm[:64]) },
	} {
		if a := testing.AllocsPerRun(200, f); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}

// childFrameEnv names the frame TestCustomModeChild tries; see
// TestUnlistedFrameAborts.
const childFrameEnv = "DUET_CODEC_CHILD_FRAME"

// TestCustomModeChild runs only as TestUnlistedFrameAborts's child: it
// codes a tone at the frame size it is given, past the whitelist.
func TestCustomModeChild(t *testing.T) {
	frame, err := strconv.Atoi(os.Getenv(childFrameEnv))
	if err != nil {
		t.Skip("runs as TestUnlistedFrameAborts's child")
	}
	enc, err := newCustomEncoder(frame, frame, CustomOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := newCustomDecoder(frame)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, _ := codeAll(t, enc, dec, sine(frame*50, 440, 0))
	if measure.RMS(out) < 0.1 {
		t.Fatalf("frame %d: no tone came through", frame)
	}
	os.Stdout.WriteString("child coded frame " + strconv.Itoa(frame) + "\n")
}

// TestUnlistedFrameAborts shows, in child processes, why CustomFrame is a
// whitelist: Debian's libopus 1.3.1 aborts the process (no error a Go
// program could catch) at 128 and 256 samples, and codes 64, 120 and 240.
// If it fails, libopus changed: look again at which frames to allow.
func TestUnlistedFrameAborts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, tc := range []struct {
		frame int
		abort bool
	}{{64, false}, {120, false}, {240, false}, {128, true}, {256, true}} {
		t.Run(strconv.Itoa(tc.frame), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCustomModeChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), childFrameEnv+"="+strconv.Itoa(tc.frame))
			out, err := cmd.CombinedOutput()
			coded := strings.Contains(string(out), "child coded frame "+strconv.Itoa(tc.frame))
			if tc.abort {
				if err == nil || coded || !strings.Contains(string(out), "assertion failed: st->end <= 21") {
					t.Fatalf("frame %d: want libopus to abort the child; got err %v, output:\n%s", tc.frame, err, out)
				}
				return
			}
			if err != nil || !coded {
				t.Fatalf("frame %d: child failed (%v):\n%s", tc.frame, err, out)
			}
		})
	}
}

// FuzzCustomDecode: garbage packets, and buffers of any size, never crash
// the decoder, write past pcm or make other than finite samples. Each input
// gets a new decoder, so a failure replays alone.
func FuzzCustomDecode(f *testing.F) {
	enc, err := NewCustomEncoder(CustomFrame, 128, CustomOptions{})
	if err != nil {
		f.Fatal(err)
	}
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(sine(128, 440, 0), pkt)
	enc.Close()
	f.Add(pkt[:n], uint16(960))
	f.Add(pkt[:n], uint16(64))
	f.Add(pkt[:23], uint16(960))
	f.Add([]byte{2, 0, 0}, uint16(960))
	f.Add([]byte{22, 0xe0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}, uint16(100))
	const guard = 64
	buf := make([]float32, 1024+guard)
	f.Fuzz(func(t *testing.T, packet []byte, room uint16) {
		dec, err := NewCustomDecoder(CustomFrame)
		if err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
		size := int(room) % 1024
		for i := range buf {
			buf[i] = 12345
		}
		pcm := buf[:size:size]
		// Decode, conceal part of a frame, decode again: the garbage
		// meets the decoder fresh and after concealment.
		for range 2 {
			k, err := dec.Decode(packet, pcm)
			if err == nil && (k == 0 || k%CustomFrame != 0 || k > size) {
				t.Fatalf("Decode wrote %d samples into %d", k, size)
			}
			if err := dec.Conceal(pcm[:size%200]); err != nil {
				t.Fatal(err)
			}
			for i, v := range pcm {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("sample %d is %v", i, v)
				}
			}
		}
		for i := size; i < len(buf); i++ {
			if buf[i] != 12345 {
				t.Fatalf("wrote buf[%d] past pcm's %d samples", i, size)
			}
		}
	})
}

func BenchmarkEncodeCustom64(b *testing.B) {
	enc, _ := newCustomPair(b, 64, CustomOptions{})
	in := voice(64)
	pkt := make([]byte, MaxPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(in, pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCustom64(b *testing.B) {
	enc, dec := newCustomPair(b, 64, CustomOptions{})
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

func BenchmarkConcealCustom64(b *testing.B) {
	_, dec := newCustomPair(b, 64, CustomOptions{})
	pcm := make([]float32, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := dec.Conceal(pcm); err != nil {
			b.Fatal(err)
		}
	}
}

// Standard Opus at 2.5 ms, beside Opus Custom's 1.33 ms frames.
func BenchmarkEncodeOpus2_5ms(b *testing.B) {
	enc, err := NewEncoder(2500*time.Microsecond, DefaultBitrate)
	if err != nil {
		b.Fatal(err)
	}
	in := voice(120)
	pkt := make([]byte, MaxPacket)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(in, pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOpus2_5ms(b *testing.B) {
	enc, err := NewEncoder(2500*time.Microsecond, DefaultBitrate)
	if err != nil {
		b.Fatal(err)
	}
	dec, err := NewDecoder()
	if err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, MaxPacket)
	n, _ := enc.Encode(voice(120), pkt)
	pcm := make([]float32, 960)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(pkt[:n], pcm); err != nil {
			b.Fatal(err)
		}
	}
}
