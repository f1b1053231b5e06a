package echotest

import (
	"math"
	"time"

	"github.com/duetapp/duet/audio"
)

// Processor is an echo canceller as a Scene drives it.
type Processor interface {
	// Process writes mic with the echo of ref removed to out.
	Process(mic, ref, out []float32)
	// LatencySamples is how far out trails mic.
	LatencySamples() int
}

// The Scene's timeline.
const (
	// Converge is how long a canceller gets before ERLE is measured.
	Converge = 2 * time.Second
	// DoubleTalkStart is when the near-end singer starts singing too; the
	// far end sings alone before.
	DoubleTalkStart = 6 * time.Second
	// Change is when the echo path changes (the laptop moved) and the
	// near-end singer stops.
	Change = 10 * time.Second
	// SceneLength is how long the scene lasts.
	SceneLength = 16 * time.Second
	// Reconverged is the ERLE, in dB, that counts as reconverged.
	Reconverged = 20.0
)

// Scene is a duet heard in a room: the far end's singing played through
// the loudspeaker, its echo in the microphone, the near-end singer joining
// at DoubleTalkStart, and a different room from Change on.
type Scene struct {
	Far  []float32 // played to the loudspeaker
	Near []float32 // the near-end singer as the microphone hears her
	Echo []float32 // the microphone's echo of Far, with its noise
	Mic  []float32 // Echo + Near
}

// NewScene returns the scene with a room 200 ms long (then another) behind
// an echo path delay of delay, and microphone noise 70 dB below full scale.
func NewScene(delay time.Duration) *Scene {
	n := audio.Samples(SceneLength)
	far := Singer(n, 220, 0.5, 1)
	near := Singer(n, 165, 0.35, 2)
	clear(near[:audio.Samples(DoubleTalkStart)])
	clear(near[audio.Samples(Change):])
	a := NewRoom(200*time.Millisecond, delay, 3).Echo(far)
	b := NewRoom(200*time.Millisecond, delay, 4).Echo(far)
	echo := Noise(n, math.Pow(10, -70.0/20), 5)
	c := audio.Samples(Change)
	for i := range echo {
		if i < c {
			echo[i] += a[i]
		} else {
			echo[i] += b[i]
		}
	}
	mic := make([]float32, n)
	for i := range mic {
		mic[i] = echo[i] + near[i]
	}
	return &Scene{Far: far, Near: near, Echo: echo, Mic: mic}
}

// Run feeds the scene to p in blocks of the given size, as a device
// callback would, and returns p's output shifted by p's latency at the end
// so that it lines up with Mic.
func (s *Scene) Run(p Processor, block int) []float32 {
	out := make([]float32, len(s.Mic))
	for i := 0; i < len(s.Mic); i += block {
		j := min(i+block, len(s.Mic))
		p.Process(s.Mic[i:j], s.Far[i:j], out[i:j])
	}
	lat := p.LatencySamples()
	copy(out, out[lat:])
	clear(out[len(out)-lat:])
	return out
}

// Result is what a canceller made of a Scene.
type Result struct {
	// ERLE is the echo return loss enhancement in dB (echo in over echo
	// out) from Converge to DoubleTalkStart.
	ERLE float64
	// DoubleTalk is the near-end singer's attenuation in dB in double talk
	// (from DoubleTalkStart + 0.5 s to Change): the output projected onto
	// the near-end voice, relative to that voice.
	DoubleTalk float64
	// Reconverge is how long after Change the ERLE over every 100 ms window
	// is back to Reconverged dB for the next half second; -1 if never.
	Reconverge time.Duration
	// After is the ERLE over the last 2 s.
	After float64
}

// Measure measures out, the output of Run.
func (s *Scene) Measure(out []float32) Result {
	at := audio.Samples
	r := Result{
		ERLE:       erle(s.Echo, out, at(Converge), at(DoubleTalkStart)),
		After:      erle(s.Echo, out, at(SceneLength-2*time.Second), len(out)-at(20*time.Millisecond)),
		Reconverge: -1,
	}
	var on, nn float64
	for i := at(DoubleTalkStart + 500*time.Millisecond); i < at(Change); i++ {
		on += float64(out[i]) * float64(s.Near[i])
		nn += float64(s.Near[i]) * float64(s.Near[i])
	}
	r.DoubleTalk = -20 * math.Log10(max(on, 1e-12)/nn)

	const win = audio.SampleRate / 10
	end := len(out) - at(20*time.Millisecond)
	good := 0 // consecutive good windows
	for i := at(Change); i+win <= end; i += win {
		if erle(s.Echo, out, i, i+win) >= Reconverged {
			good++
		} else {
			good = 0
		}
		if good == 5 {
			r.Reconverge = audio.Duration(i + win - 5*win - at(Change))
			break
		}
	}
	return r
}

// erle returns the echo return loss enhancement over [from, to) in dB.
func erle(echo, out []float32, from, to int) float64 {
	return 10 * math.Log10(energy(echo[from:to])/max(energy(out[from:to]), 1e-20))
}

func energy(p []float32) float64 {
	var e float64
	for _, v := range p {
		e += float64(v) * float64(v)
	}
	return e
}

// Off is no canceller: it passes the microphone through.
type Off struct{}

// Process copies mic to out.
func (Off) Process(mic, _, out []float32) { copy(out, mic) }

// LatencySamples is 0.
func (Off) LatencySamples() int { return 0 }
