package track

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime/metrics"
	"testing"

	"github.com/duetapp/duet/audio"
)

// The fixtures are half a second of a 440 Hz sine at amplitude 0.5 in the
// left channel and silence in the right, at 44.1 kHz, made with sox and
// encoded with flac, lame and opusenc. Mixed down to mono the sine has
// amplitude 0.25, an RMS of 0.177.
func TestDecodeFormats(t *testing.T) {
	for _, name := range []string{"tone.wav", "tone.flac", "tone.mp3", "tone.opus"} {
		t.Run(name, func(t *testing.T) {
			tr, err := Load("testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			n := len(tr.Samples)
			// Opus pads a few ms; go-mp3 keeps the encoder's delay and
			// padding (a frame and a bit), which both singers get alike.
			if n < 23500 || n > 28000 {
				t.Errorf("%d samples, want about 24000", n)
			}
			mid := tr.Samples[n/4 : 3*n/4]
			var ss float64
			crossings := 0
			for i, v := range mid {
				ss += float64(v) * float64(v)
				if i > 0 && (mid[i-1] < 0) != (v < 0) {
					crossings++
				}
			}
			rms := math.Sqrt(ss / float64(len(mid)))
			if math.Abs(rms-0.177) > 0.02 {
				t.Errorf("RMS %.3f, want 0.177", rms)
			}
			hz := float64(crossings) / 2 / (float64(len(mid)) / 48000)
			if math.Abs(hz-440) > 5 {
				t.Errorf("%.1f Hz, want 440", hz)
			}
			if tr.Name != name {
				t.Errorf("name %q", tr.Name)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	wav, err := os.ReadFile("testdata/tone.wav")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":      nil,
		"text":       []byte("hello, this is not a song"),
		"ogg vorbis": append([]byte("OggS"), make([]byte, 100)...),
		"cut wav":    wav[:30],
		"cut flac":   []byte("fLaC\x00\x00"),
		// Found by FuzzDecode: go-mp3 v0.3.4 indexes past a table.
		"mp3 that panics go-mp3": []byte("\xff\xf1\xfa\xff\xf3\x10\x00\x01\x00\x00\r\x1e=V\r\x80\xfe\xed\x05\xf2\xbf\xbf\r\r\r\r\x04\r\a\x80\xff\xffd"),
		// Headers that claim what the file does not hold.
		"id3 tag of 256 MB":   []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f\xff\xfb\x90\x00"),
		"flac seek table":     []byte("fLaC\x03\xe8000000000000"),
		"wav data before fmt": []byte("RIFF\x00\x00\x00\x00WAVEdata\x04\x00\x00\x00\x00\x00\x00\x00"),
	} {
		if _, err := Decode(name, data); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not a format error", name, err)
		}
	}
}

// FuzzDecode feeds the decoders broken files. No file may make a decoder
// allocate what it does not hold (a header's claim) beyond a fixed 16 MB
// and 128 times its output (mewkiz/flac's frames at 384 kHz and 8
// channels). The output limit is 10 ms, as conversion at the best quality
// costs 1–2 µs a sample and the parsers are what is tested: a run that
// takes milliseconds makes the fuzzer's minimizing of each new input (up
// to a minute, its executions not counted) look like a stall.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tone.wav", "tone.flac", "tone.mp3", "tone.opus"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		// Small seeds: the fuzzer minimizes each new input for up to a
		// minute, trying to drop every run of bytes (quadratic in its
		// size) at a run each, its runs not counted; at 0.1–0.5 ms a run
		// a 2 kB input takes all of that minute.
		size := 512
		switch name {
		case "tone.flac":
			data = flacSeed(data) // its first frame cut short
		case "tone.mp3":
			data = data[432:] // after the Info frame, a frame of audio
		case "tone.opus":
			size = 1024 // the headers, which libopusfile parses
		}
		f.Add(data[:min(len(data), size)])
	}
	const limit = audio.SampleRate / 100
	// runtime/metrics, unlike runtime.ReadMemStats, does not stop the
	// world: exact for large allocations, which the claims are.
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(allocs)
		return allocs[0].Value.Uint64()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := allocated()
		tr, err := decode("fuzz", data, limit)
		alloc := allocated() - before
		out := 0
		if err == nil {
			if out = len(tr.Samples); out == 0 || out > limit {
				t.Errorf("a track of %d samples", out)
			}
		}
		if alloc > 16<<20+128*4*uint64(out) {
			t.Errorf("%d bytes allocated for %d samples", alloc, out)
		}
	})
}

// flacSeed drops a FLAC file's padding blocks (8 kB in tone.flac) and its
// length (which is past the fuzzer's limit), so that a seed cut short
// still reaches the audio frames.
func flacSeed(data []byte) []byte {
	out := bytes.Clone(data[:4])
	lastKept, at := 0, 4
	for done := false; !done; {
		head, size := data[at], int(data[at+1])<<16|int(data[at+2])<<8|int(data[at+3])
		if head&0x7f != 1 {
			lastKept = len(out)
			out = append(out, data[at:at+4+size]...)
			out[lastKept] &^= 0x80
		}
		done = head&0x80 != 0
		at += 4 + size
	}
	out[lastKept] |= 0x80
	// The stream info's 36-bit sample count: its first block's bytes 13
	// (low half) to 17.
	out[8+13] &= 0xf0
	clear(out[8+14 : 8+18])
	return append(out, data[at:]...)
}
