package track

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/mewkiz/flac"
	"github.com/mewkiz/flac/frame"
	"github.com/mewkiz/flac/meta"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track/tracktest"
	"github.com/duetapp/duet/audio/wavfile"
)

// TestDecodeWAVShapes decodes WAV files of each width, several channel
// counts and rates: each is the tone it holds, at 48 kHz, as long as it
// should be; at 48 kHz the samples are go-audio/wav's (audio/wavfile).
func TestDecodeWAVShapes(t *testing.T) {
	for _, rate := range []int{8000, 44100, 48000, 96000} {
		for _, bits := range []int{8, 16, 24, 32} {
			for _, ch := range []int{1, 2, 6} {
				n := rate / 4
				file := tracktest.WAV(rate, bits, ch, tone.SineAt(rate, n, 440, 0.5))
				tr, err := Decode("x.wav", file)
				if err != nil {
					t.Fatalf("%d Hz, %d bits, %d channels: %v", rate, bits, ch, err)
				}
				if want := n * audio.SampleRate / rate; len(tr.Samples) != want {
					t.Errorf("%d Hz, %d bits, %d channels: %d samples, want %d", rate, bits, ch, len(tr.Samples), want)
				}
				mid := tr.Samples[len(tr.Samples)/4 : 3*len(tr.Samples)/4]
				if a := measure.Tone(mid, 440, audio.SampleRate); math.Abs(a-0.5) > 0.01 {
					t.Errorf("%d Hz, %d bits, %d channels: tone of amplitude %.3f, want 0.5", rate, bits, ch, a)
				}
				if rate != audio.SampleRate {
					continue
				}
				ref, err := wavfile.Decode(file)
				if err != nil {
					t.Fatal(err)
				}
				for i := range ref {
					if math.Abs(float64(ref[i]-tr.Samples[i])) > 1e-6 {
						t.Fatalf("%d bits, %d channels: sample %d is %v, wavfile reads %v", bits, ch, i, tr.Samples[i], ref[i])
					}
				}
			}
		}
	}
}

// TestDecodeRefusesRates checks that a rate no song has is refused by
// name, before anything is decoded.
func TestDecodeRefusesRates(t *testing.T) {
	for _, rate := range []int{1, tracktest.BombRate, MinRate - 1, MaxRate + 1, 1 << 30} {
		_, err := Decode("x.wav", tracktest.WAV(rate, 16, 1, make([]float32, 100)))
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), fmt.Sprintf(" %d Hz", rate)) {
			t.Errorf("%d Hz: %v, want a format error naming the rate", rate, err)
		}
	}
	for _, rate := range []int{MinRate, MaxRate} {
		if _, err := Decode("x.wav", tracktest.WAV(rate, 16, 1, make([]float32, 1000))); err != nil {
			t.Errorf("%d Hz: %v", rate, err)
		}
	}
}

// TestDecodeBomb decodes issue 12's bomb (262 KB of 8-bit WAV at 200 Hz,
// 252 MB of 48 kHz samples): it is refused before anything is decoded.
func TestDecodeBomb(t *testing.T) {
	bomb := tracktest.Bomb()
	var err error
	alloc := tracktest.Alloc(func() { _, err = Decode("bomb.wav", bomb) })
	if !errors.Is(err, ErrFormat) {
		t.Errorf("the bomb: %v, want a format error", err)
	}
	if alloc > 64<<10 {
		t.Errorf("refusing the bomb allocated %d bytes", alloc)
	}
}

// TestDecodeTooLong checks MaxDuration from a WAV header, before decoding:
// 20 minutes and a second of 8 kHz 8-bit audio (9.6 MB, which would be
// 230 MB at 48 kHz).
func TestDecodeTooLong(t *testing.T) {
	long := tracktest.WAV(MinRate, 8, 1, make([]float32, (MaxDuration+1)*MinRate))
	var err error
	alloc := tracktest.Alloc(func() { _, err = Decode("long.wav", long) })
	if !errors.Is(err, ErrTooLong) {
		t.Errorf("%v, want ErrTooLong", err)
	}
	if alloc > 64<<10 {
		t.Errorf("refusing it allocated %d bytes", alloc)
	}
}

// TestDecodeLimit checks the output limit on every format: from the header
// where it says the length (WAV, FLAC: nothing decoded), while decoding
// where it does not (MP3, Ogg/Opus).
func TestDecodeLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fromHead bool
	}{{"tone.wav", true}, {"tone.flac", true}, {"tone.mp3", false}, {"tone.opus", false}} {
		data, err := os.ReadFile("testdata/" + tc.name)
		if err != nil {
			t.Fatal(err)
		}
		limit := audio.SampleRate / 4 // the tones last half a second
		alloc := tracktest.Alloc(func() { _, err = decode(tc.name, data, limit) })
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("%s: %v, want ErrTooLong", tc.name, err)
		}
		if tc.fromHead && alloc > 64<<10 {
			t.Errorf("%s: refusing it from its header allocated %d bytes", tc.name, alloc)
		}
		// go-mp3 allocates some 30 kB a frame (garbage as it goes).
		if !tc.fromHead && alloc > 12*4*uint64(limit)+64<<10 {
			t.Errorf("%s: refusing it allocated %d bytes, for a limit of %d bytes", tc.name, alloc, 4*limit)
		}
	}
}

// TestDecodeAllocation checks that decoding a legitimate file allocates
// (TotalAlloc, an upper bound of the heap's rise) a small multiple of its
// output: WAV (44.1 kHz stereo, and 8-bit with eight channels, which
// go-audio/wav would hold at 64 bytes a frame) and FLAC sized once, FLAC
// with mewkiz/flac's frames on top; MP3 (its length unknown) gathered in
// blocks and joined, with go-mp3's garbage on top (some 30 kB a frame).
func TestDecodeAllocation(t *testing.T) {
	sine := tone.SineAt(44100, 10*44100, 440, 0.5)
	mp3, err := os.ReadFile("testdata/tone.mp3")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		file   []byte
		factor float64
	}{
		{"wav 44.1 kHz 16-bit stereo", tracktest.WAV(44100, 16, 2, sine), 1.05},
		{"wav 48 kHz 8-bit 8 channels", tracktest.WAV(48000, 8, 8, sine), 1.05},
		{"flac 44.1 kHz 16-bit stereo", flacFile(t, 44100, 16, 2, sine), 3.5},
		{"mp3 44.1 kHz, 20 s", bytes.Repeat(mp3, 40), 12},
	} {
		var tr *Track
		var err error
		alloc := tracktest.Alloc(func() { tr, err = Decode(tc.name, tc.file) })
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out := 4 * len(tr.Samples)
		t.Logf("%s: %d bytes allocated for %d bytes of output (%.2f×)", tc.name, alloc, out, float64(alloc)/float64(out))
		if float64(alloc) > tc.factor*float64(out)+64<<10 {
			t.Errorf("%s: %d bytes allocated for %d bytes of output, want ≤ %.2f×", tc.name, alloc, out, tc.factor)
		}
	}
}

// flacFile encodes p as FLAC (verbatim frames of 4096 samples), the same
// samples in each channel.
func flacFile(t *testing.T, rate, bits, ch int, p []float32) []byte {
	t.Helper()
	var b bytes.Buffer
	info := &meta.StreamInfo{
		BlockSizeMin: 4096, BlockSizeMax: 4096,
		SampleRate: uint32(rate), NChannels: uint8(ch), BitsPerSample: uint8(bits),
		NSamples: uint64(len(p)),
	}
	enc, err := flac.NewEncoder(&b, info)
	if err != nil {
		t.Fatal(err)
	}
	enc.EnablePredictionAnalysis(false)
	full := float32(int64(1)<<(bits-1) - 1)
	for at := 0; at < len(p); at += 4096 {
		block := p[at:min(at+4096, len(p))]
		samples := make([]int32, len(block))
		for i, v := range block {
			samples[i] = int32(v * full)
		}
		f := &frame.Frame{Header: frame.Header{
			HasFixedBlockSize: true, BlockSize: uint16(len(block)), SampleRate: uint32(rate),
			Channels: frame.Channels(ch - 1), BitsPerSample: uint8(bits),
		}}
		for range ch {
			f.Subframes = append(f.Subframes, &frame.Subframe{
				SubHeader: frame.SubHeader{Pred: frame.PredVerbatim}, Samples: samples, NSamples: len(samples),
			})
		}
		if err := enc.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
