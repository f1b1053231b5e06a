// Package echotest is a synthetic room for testing and measuring echo
// cancellers: a singer to play, a loudspeaker that clips a little, a
// reverberant room, a microphone with a little noise, and the figures
// (ERLE, near-end attenuation in double talk, reconvergence time) that the
// echo package's tests and cmd/duetlab echo both report.
//
// Signals are mono float32 at 48 kHz, generated whole in memory; nothing
// here runs on the audio thread.
package echotest

import (
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"

	"github.com/duetapp/duet/audio"
)

// Singer returns n samples of a synthetic singer whose peak is amp: a
// band-limited sawtooth (the glottal source) with 5.5 Hz vibrato of ±30
// cents, gliding from note to note of a melody on a major scale above base
// Hz, through three formants moving from vowel to vowel, with a little
// breath noise and a short rest every few notes. Reproducible from seed.
func Singer(n int, base float64, amp float32, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const fs = audio.SampleRate
	vowels := [][3]float64{{800, 1150, 2900}, {400, 1600, 2700}, {350, 1700, 2700}, {450, 800, 2830}, {325, 700, 2530}}
	major := [...]int{0, 2, 4, 5, 7, 9, 11, 12}

	p := make([]float32, n)
	var (
		formants  [3]biquad
		cur, want [3]float64 // formant Hz, gliding toward want
		logPitch  = math.Log(base)
		wantPitch = logPitch
		phase     float64
		env       float64
		left      int  // samples left in this note or rest
		rest      bool // in a rest
		notes     int  // notes since the last rest
	)
	cur = vowels[0]
	want = cur
	pitchGlide := 1 - math.Exp(-1/(0.02*fs)) // 20 ms
	formantGlide := 1 - math.Exp(-1/(0.05*fs))
	envStep := 1 / (0.03 * fs) // 30 ms attack and release
	for i := range p {
		if left == 0 {
			rest = !rest && notes >= 3 && rng.IntN(2) == 0
			if rest {
				notes = 0
				left = fs/8 + rng.IntN(fs/8)
			} else {
				notes++
				wantPitch = math.Log(base * math.Pow(2, float64(major[rng.IntN(len(major))])/12))
				want = vowels[rng.IntN(len(vowels))]
				left = fs*3/10 + rng.IntN(fs/2)
			}
		}
		left--
		if rest || left < int(0.03*fs) {
			env = max(env-envStep, 0)
		} else {
			env = min(env+envStep, 1)
		}
		logPitch += (wantPitch - logPitch) * pitchGlide
		if i%64 == 0 {
			for k := range cur {
				cur[k] += (want[k] - cur[k]) * formantGlide * 64
				formants[k].bandpass(cur[k], 8)
			}
		}
		t := float64(i) / fs
		f := math.Exp(logPitch) * math.Pow(2, 0.3/12*math.Sin(2*math.Pi*5.5*t))
		dt := f / fs
		phase += dt
		if phase >= 1 {
			phase--
		}
		src := 2*phase - 1 - polyBLEP(phase, dt)
		src += 0.05 * (rng.Float64()*2 - 1) // breath
		src *= env
		v := formants[0].run(src) + 0.5*formants[1].run(src) + 0.3*formants[2].run(src)
		p[i] = float32(v)
	}
	Normalize(p, amp)
	return p
}

// polyBLEP smooths the sawtooth's step, so that it has little aliasing.
func polyBLEP(t, dt float64) float64 {
	switch {
	case t < dt:
		t /= dt
		return t + t - t*t - 1
	case t > 1-dt:
		t = (t - 1) / dt
		return t*t + t + t + 1
	}
	return 0
}

// biquad is a band-pass filter of 0 dB peak gain (RBJ cookbook).
type biquad struct {
	b0, b2, a1, a2 float64
	x1, x2, y1, y2 float64
}

func (b *biquad) bandpass(hz, q float64) {
	w := 2 * math.Pi * hz / audio.SampleRate
	alpha := math.Sin(w) / (2 * q)
	a0 := 1 + alpha
	b.b0, b.b2 = alpha/a0, -alpha/a0
	b.a1, b.a2 = -2*math.Cos(w)/a0, (1-alpha)/a0
}

func (b *biquad) run(x float64) float64 {
	y := b.b0*x + b.b2*b.x2 - b.a1*b.y1 - b.a2*b.y2
	b.x2, b.x1 = b.x1, x
	b.y2, b.y1 = b.y1, y
	return y
}

// Normalize scales p so that its peak is amp.
func Normalize(p []float32, amp float32) {
	var peak float32
	for _, v := range p {
		peak = max(peak, v, -v)
	}
	if peak == 0 {
		return
	}
	for i := range p {
		p[i] *= amp / peak
	}
}

// Noise returns n samples of white noise at rms (linear).
func Noise(n int, rms float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, ^seed))
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(rng.NormFloat64() * rms)
	}
	return p
}

// Room is an echo path from the loudspeaker to the microphone.
type Room struct {
	// IR is the room's impulse response, starting with the direct sound.
	IR []float32
	// Drive is how hard the loudspeaker clips: it plays tanh(Drive·x)/Drive.
	// 0 is linear.
	Drive float64
	// Delay is the device's output plus input latency, in samples, ahead of
	// the IR.
	Delay int
}

// NewRoom returns a room whose impulse response lasts length and decays by
// 60 dB over it (exponentially decaying noise after a direct sound 1 ms
// in), with an echo return loss of 6 dB (echo at a quarter of the played
// power), a loudspeaker of drive 0.3 (its third harmonic some 40 dB down at
// half scale) and the given device delay.
func NewRoom(length, delay time.Duration, seed uint64) *Room {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	n := audio.Samples(length)
	ir := make([]float32, n)
	direct := audio.SampleRate / 1000
	ir[direct] = 1
	tau := float64(n) / math.Log(1000) // amplitude 1/1000 (-60 dB) at the end
	// The reverberation holds as much energy as the direct sound, as for a
	// laptop's speaker a hand's width from its microphone in a living room.
	a := math.Sqrt(2 / tau)
	for i := direct + 1; i < n; i++ {
		ir[i] = float32(a * rng.NormFloat64() * math.Exp(-float64(i-direct)/tau))
	}
	var e float64
	for _, v := range ir {
		e += float64(v * v)
	}
	g := float32(math.Sqrt(0.25 / e))
	for i := range ir {
		ir[i] *= g
	}
	return &Room{IR: ir, Drive: 0.3, Delay: audio.Samples(delay)}
}

// Echo returns what the microphone hears of played: played through the
// loudspeaker, the room and the device delay, as long as played.
func (r *Room) Echo(played []float32) []float32 {
	x := make([]float32, len(played))
	for i, v := range played {
		if r.Drive > 0 {
			v = float32(math.Tanh(r.Drive*float64(v)) / r.Drive)
		}
		x[i] = v
	}
	y := convolve(x, r.IR)
	out := make([]float32, len(played))
	copy(out[min(r.Delay, len(out)):], y)
	return out
}

// convolve returns x convolved with h, as long as x, by FFT.
func convolve(x, h []float32) []float32 {
	n := 1
	for n < len(x)+len(h) {
		n *= 2
	}
	fft := fourier.NewFFT(n)
	pad := func(p []float32) []complex128 {
		s := make([]float64, n)
		for i, v := range p {
			s[i] = float64(v)
		}
		return fft.Coefficients(nil, s)
	}
	X, H := pad(x), pad(h)
	for i := range X {
		X[i] *= H[i]
	}
	s := fft.Sequence(nil, X)
	y := make([]float32, len(x))
	for i := range y {
		y[i] = float32(s[i] / float64(n))
	}
	return y
}
