package track

import (
	"errors"
	"math"
	"os"
	"testing"

	"github.com/duetapp/duet/audio/wavfile"
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
	} {
		if _, err := Decode(name, data); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !errors.Is(err, ErrFormat) && !errors.Is(err, wavfile.ErrFormat) {
			t.Errorf("%s: %v is not a format error", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tone.wav", "tone.flac", "tone.mp3", "tone.opus"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data[:min(len(data), 2048)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Decode("fuzz", data)
		if err == nil && len(tr.Samples) == 0 {
			t.Error("a track with no samples")
		}
	})
}
