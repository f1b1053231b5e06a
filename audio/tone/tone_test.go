package tone

import (
	"errors"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
)

func TestSineLengthAndPeak(t *testing.T) {
	t.Parallel()
	s := &Sine{Hz: 1000, Amp: 0.5, Length: 1000}
	buf := make([]float32, 4096)
	n, err := audio.ReadFull(s, buf)
	if n != 1000 || !errors.Is(err, io.EOF) {
		t.Fatalf("read %d, %v; want 1000, EOF", n, err)
	}
	var peak float32
	for _, v := range buf[:n] {
		peak = max(peak, v)
	}
	if peak < 0.49 || peak > 0.5 {
		t.Fatalf("peak %v, want 0.5", peak)
	}
}

// TestSineAt: at Duet's rate the samples are Sine's; at another rate the
// tone has the same pitch (as many upward zero crossings a second).
func TestSineAt(t *testing.T) {
	t.Parallel()
	want := make([]float32, 4800)
	audio.ReadFull(&Sine{Hz: 440, Amp: 0.5}, want)
	if got := SineAt(audio.SampleRate, len(want), 440, 0.5); !slices.Equal(got, want) {
		t.Fatal("SineAt at 48 kHz differs from Sine")
	}
	for _, rate := range []int{8000, 44100, 96000} {
		p := SineAt(rate, rate, 440, 0.25)
		if len(p) != rate || math.Abs(float64(slices.Max(p))-0.25) > 0.001 {
			t.Errorf("%d Hz: %d samples peaking at %v, want %d at 0.25", rate, len(p), slices.Max(p), rate)
		}
		ups := 0
		for i := 1; i < len(p); i++ {
			if p[i-1] < 0 && p[i] >= 0 {
				ups++
			}
		}
		if ups != 439 && ups != 440 {
			t.Errorf("%d Hz: %d upward zero crossings in a second, want 440", rate, ups)
		}
	}
}

func TestChirpFadesAndPeaks(t *testing.T) {
	t.Parallel()
	c := Chirp(200, 4000, 4800, 0.8)
	if c[0] != 0 || math.Abs(float64(c[len(c)-1])) > 1e-3 {
		t.Fatalf("chirp does not fade: first %v last %v", c[0], c[len(c)-1])
	}
	var peak float32
	for _, v := range c {
		peak = max(peak, v)
	}
	if peak < 0.75 {
		t.Fatalf("peak %v, want ~0.8", peak)
	}
}

func TestVoiceIsReproducibleAndBounded(t *testing.T) {
	t.Parallel()
	a := &Voice{Base: 220, Amp: 0.5, Seed: 7, Length: audio.SampleRate}
	b := &Voice{Base: 220, Amp: 0.5, Seed: 7, Length: audio.SampleRate}
	c := &Voice{Base: 220, Amp: 0.5, Seed: 8, Length: audio.SampleRate}
	pa, pb, pc := make([]float32, audio.SampleRate), make([]float32, audio.SampleRate), make([]float32, audio.SampleRate)
	audio.ReadFull(a, pa)
	audio.ReadFull(b, pb)
	audio.ReadFull(c, pc)
	same, differ := true, false
	var energy float64
	for i := range pa {
		same = same && pa[i] == pb[i]
		differ = differ || pa[i] != pc[i]
		if pa[i] > 0.5 || pa[i] < -0.5 {
			t.Fatalf("sample %d = %v beyond amplitude 0.5", i, pa[i])
		}
		energy += float64(pa[i] * pa[i])
	}
	if !same || !differ {
		t.Fatalf("same seed same output: %v; other seed differs: %v", same, differ)
	}
	if energy == 0 {
		t.Fatal("voice is silent")
	}
}

// TestBurstsAreUnique checks a stretch of Bursts is found where it is, and
// only there.
func TestBurstsAreUnique(t *testing.T) {
	t.Parallel()
	p := Bursts(10*audio.SampleRate, 0.5, 1)
	ref := p[3*audio.SampleRate : 4*audio.SampleRate]
	lag, score := measure.Delay(ref, p[2*audio.SampleRate:], 3*audio.SampleRate)
	if math.Abs(lag-audio.SampleRate) > 0.5 || score < 0.99 {
		t.Errorf("found at %v (score %.2f), want %d", lag, score, audio.SampleRate)
	}
	if q := Bursts(audio.SampleRate, 0.5, 2); slices.Equal(q, p[:audio.SampleRate]) {
		t.Error("another seed gives the same bursts")
	}
}
