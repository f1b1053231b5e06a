package wavfile

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.wav")
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, 1000)
	for i := range in {
		in[i] = float32(math.Sin(float64(i) / 10))
	}
	in[3] = 1.5 // clipped
	if err := w.Write(in[:600]); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(in[600:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d samples, wrote %d", len(out), len(in))
	}
	for i := range in {
		want := max(-1, min(1, in[i]))
		if math.Abs(float64(out[i]-want)) > 1.0/16000 {
			t.Fatalf("sample %d = %v, want %v", i, out[i], want)
		}
	}
}

// wavBytes builds a minimal PCM WAV by hand.
func wavBytes(rate uint32, channels, bits uint16, format uint16, data []byte) []byte {
	var b bytes.Buffer
	le := func(v any) {
		switch v := v.(type) {
		case uint16:
			b.Write([]byte{byte(v), byte(v >> 8)})
		case uint32:
			b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
		}
	}
	b.WriteString("RIFF")
	le(uint32(36 + len(data)))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(format)
	le(channels)
	le(rate)
	le(rate * uint32(channels) * uint32(bits/8))
	le(channels * bits / 8)
	le(bits)
	b.WriteString("data")
	le(uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func TestDecode(t *testing.T) {
	t.Parallel()
	stereo16 := []byte{0x00, 0x40, 0x00, 0x20, 0x00, 0xc0, 0x00, 0xe0} // (0.5,0.25), (-0.5,-0.25)
	for _, tc := range []struct {
		name string
		data []byte
		want []float32
		err  bool
	}{
		{"stereo 16-bit mixed down", wavBytes(48000, 2, 16, 1, stereo16), []float32{0.375, -0.375}, false},
		{"8-bit unsigned", wavBytes(48000, 1, 8, 1, []byte{128, 192, 64}), []float32{0, 0.5, -0.5}, false},
		{"24-bit", wavBytes(48000, 1, 24, 1, []byte{0, 0, 0x40}), []float32{0.5}, false},
		{"44.1 kHz refused", wavBytes(44100, 1, 16, 1, []byte{0, 0}), nil, true},
		{"float refused", wavBytes(48000, 1, 32, 3, []byte{0, 0, 0, 0}), nil, true},
		{"empty", nil, nil, true},
		{"not a WAV", []byte("hello, this is not a wav file at all, just some text......"), nil, true},
		{"truncated header", wavBytes(48000, 1, 16, 1, []byte{1, 2})[:30], nil, true},
		{"data cut short: header never finished", wavBytes(48000, 1, 16, 1, []byte{0, 0x40, 0, 0x40, 0, 0x40})[:46], []float32{0.5}, false},
		// A crash after audio was written but before the sizes were
		// patched: the audio past the data chunk reads as a chunk that
		// claims gigabytes, and is more audio.
		{"audio after the data chunk: header not patched yet",
			append(wavBytes(48000, 1, 16, 1, []byte{0, 0x40}), 0x02, 0xdc, 0x2d, 0x4c, 0xdb, 0x4e, 0xb5, 0xda, 0x00, 0x40),
			[]float32{0.5, -0.28119, 0.59512, 0.61606, -0.29135, 0.5}, false},
		{"chunk larger than the file", []byte("RIFF\x24\x00\x00\x00WAVEfmt \xff\xff\xff\x7f"), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.data)
			if tc.err {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-3 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	t.Parallel()
	_, err := ReadFile(filepath.Join(t.TempDir(), "nope.wav"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist", err)
	}
}

// TestHugeClaimsDoNotAllocate is a fuzzer's find: headers claiming
// gigabytes made go-audio/wav allocate them.
func TestHugeClaimsDoNotAllocate(t *testing.T) {
	data := []byte("RIFF000\xff\x00000fmt 000\xcb#\"8\xb5\xc6w\xad#\xa1\x00\xc7?2\xb2\x02#d>\xd8NMb\x04000000000000%")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Decode(data); err == nil {
		t.Fatal("Decode of garbage succeeded")
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("decoding %d bytes allocated %d bytes", len(data), n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(wavBytes(48000, 1, 16, 1, []byte{1, 2, 3, 4}))
	f.Add(wavBytes(48000, 2, 24, 1, []byte{1, 2, 3, 4, 5, 6}))
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err == nil {
			for _, v := range p {
				if v < -1 || v > 1 || math.IsNaN(float64(v)) {
					t.Fatalf("sample %v out of range", v)
				}
			}
		}
	})
}
