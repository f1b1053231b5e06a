// Package tone makes test signals at 48 kHz: steady sines for tone checks,
// chirps for latency measurement, and a synthetic singing voice for demos.
// Each generator is an audio.Reader owned by one goroutine.
package tone

import (
	"io"
	"math"
	"math/rand/v2"

	"github.com/duetapp/duet/audio"
)

// Sine is a sine wave of Hz at amplitude Amp (linear, ≤ 1), lasting Length
// samples (0 = endless).
type Sine struct {
	Hz     float64
	Amp    float32
	Length int
	n      int
}

// Read fills p with the next samples; io.EOF after Length samples.
func (s *Sine) Read(p []float32) (int, error) {
	if s.Length > 0 {
		if s.n >= s.Length {
			return 0, io.EOF
		}
		p = p[:min(len(p), s.Length-s.n)]
	}
	w := 2 * math.Pi * s.Hz / audio.SampleRate
	for i := range p {
		p[i] = s.Amp * float32(math.Sin(w*float64(s.n+i)))
	}
	s.n += len(p)
	return len(p), nil
}

// SineAt returns n samples of a sine of hz at amplitude amp, sampled rate
// times a second: a steady tone held in one slice, at Duet's rate
// (audio.SampleRate, the same samples as Sine's) or at a file's.
func SineAt(rate, n int, hz float64, amp float32) []float32 {
	p := make([]float32, n)
	w := 2 * math.Pi * hz / float64(rate)
	for i := range p {
		p[i] = amp * float32(math.Sin(w*float64(i)))
	}
	return p
}

// Chirp returns a linear sweep from f0 to f1 Hz over n samples with a
// raised-cosine fade at each end, at amplitude amp. Its autocorrelation has
// one sharp peak, which makes it easy to find by cross-correlation.
func Chirp(f0, f1 float64, n int, amp float32) []float32 {
	p := make([]float32, n)
	dur := float64(n) / audio.SampleRate
	k := (f1 - f0) / dur
	fade := n / 10
	for i := range p {
		t := float64(i) / audio.SampleRate
		v := math.Sin(2 * math.Pi * (f0*t + k*t*t/2))
		switch {
		case i < fade:
			v *= 0.5 - 0.5*math.Cos(math.Pi*float64(i)/float64(fade))
		case i >= n-fade:
			v *= 0.5 - 0.5*math.Cos(math.Pi*float64(n-1-i)/float64(fade))
		}
		p[i] = amp * float32(v)
	}
	return p
}

// Voice is a synthetic singer: a melody of notes around a base pitch, each
// with an attack, vibrato and a few harmonics, separated by short breaths.
// The melody comes from a seeded generator, so a Voice is reproducible and
// never repeats itself exactly (its cross-correlation has one clear peak).
type Voice struct {
	Base   float64 // Hz of the melody's tonic
	Amp    float32 // peak amplitude, linear
	Length int     // samples; 0 = endless
	Seed   uint64

	rng      *rand.Rand
	n        int
	phase    float64
	note     float64 // Hz of the current note
	noteLeft int     // samples left in the current note
	noteLen  int
	rest     bool
}

func (v *Voice) nextNote() {
	if v.rng == nil {
		v.rng = rand.New(rand.NewPCG(v.Seed, v.Seed^0x9e3779b97f4a7c15))
	}
	v.rest = !v.rest && v.rng.IntN(4) == 0
	if v.rest {
		v.noteLen = audio.SampleRate/10 + v.rng.IntN(audio.SampleRate/5)
	} else {
		major := [...]int{0, 2, 4, 5, 7, 9, 11, 12} // semitones
		step := major[v.rng.IntN(len(major))]
		v.note = v.Base * math.Pow(2, float64(step)/12)
		v.noteLen = audio.SampleRate/4 + v.rng.IntN(audio.SampleRate/2)
	}
	v.noteLeft = v.noteLen
}

// Read fills p with the next samples; io.EOF after Length samples.
func (v *Voice) Read(p []float32) (int, error) {
	if v.Length > 0 {
		if v.n >= v.Length {
			return 0, io.EOF
		}
		p = p[:min(len(p), v.Length-v.n)]
	}
	const attack = audio.SampleRate / 50 // 20 ms
	for i := range p {
		if v.noteLeft == 0 {
			v.nextNote()
		}
		pos := v.noteLen - v.noteLeft
		v.noteLeft--
		if v.rest {
			p[i] = 0
			continue
		}
		env := 1.0
		if pos < attack {
			env = float64(pos) / attack
		} else if v.noteLeft < attack {
			env = float64(v.noteLeft) / attack
		}
		t := float64(v.n+i) / audio.SampleRate
		// 5.5 Hz vibrato, ±30 cents, growing in after the attack.
		vib := math.Pow(2, 0.3/12*math.Sin(2*math.Pi*5.5*t)*math.Min(1, float64(pos)/(audio.SampleRate/4)))
		v.phase += 2 * math.Pi * v.note * vib / audio.SampleRate
		s := math.Sin(v.phase) + 0.5*math.Sin(2*v.phase) + 0.25*math.Sin(3*v.phase) + 0.12*math.Sin(4*v.phase)
		p[i] = v.Amp * float32(env*s/1.87)
	}
	v.n += len(p)
	return len(p), nil
}

// Bursts returns n samples of short decaying tones at irregular pitches
// and gaps (25 ms each, 80–210 ms apart, 300–1100 Hz), which seed varies:
// a signal no stretch of which looks like another to a cross-correlation,
// unlike a sung note that repeats every pitch period. Each burst peaks at
// amp; seed is ≥ 0.
func Bursts(n int, amp float32, seed int) []float32 {
	p := make([]float32, n)
	seed = max(seed, 0)
	at := (seed * 1009) % 4000
	for i := 0; at < n-1200; i++ {
		hz := 300 + float64((i*37+seed*5)%11)*80
		for k := range 1200 {
			p[at+k] = amp * float32(math.Sin(2*math.Pi*hz*float64(k)/audio.SampleRate)*math.Exp(-float64(k)/300))
		}
		at += 4000 + (i*7919+seed*3001)%6000
	}
	return p
}
