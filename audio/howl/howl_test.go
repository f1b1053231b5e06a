package howl

import (
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/echo/echotest"
	"github.com/duetapp/duet/audio/tone"
)

// growing returns a tone of hz rising from startDB dBFS at rate dB/s until
// it clips at 0.9, over room noise 70 dB down.
func growing(hz, startDB, rate float64, d time.Duration) []float32 {
	p := echotest.Noise(audio.Samples(d), math.Pow(10, -70.0/20), 1)
	for i := range p {
		t := float64(i) / audio.SampleRate
		a := math.Min(math.Pow(10, (startDB+rate*t)/20), 0.9)
		p[i] += float32(a * math.Sin(2*math.Pi*hz*t))
	}
	return p
}

// firstHowl feeds p in 128-sample blocks and returns when howl was first
// reported, or -1.
func firstHowl(d *Detector, p []float32) time.Duration {
	for i := 0; i < len(p); i += 128 {
		if d.Process(p[i:min(i+128, len(p))]) {
			return audio.Duration(i + 128)
		}
	}
	return -1
}

func TestFindsHowl(t *testing.T) {
	for _, tc := range []struct {
		name          string
		hz, from, dBs float64
		within        time.Duration
	}{
		{"1 kHz, 40 dB/s", 1000, -50, 40, 200 * time.Millisecond},
		{"300 Hz, 60 dB/s", 300, -45, 60, 200 * time.Millisecond},
		{"2.7 kHz, 25 dB/s", 2700, -50, 25, 200 * time.Millisecond},
		{"520 Hz, 8 dB/s", 520, -40, 8, 600 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New()
			at := firstHowl(d, growing(tc.hz, tc.from, tc.dBs, 2*time.Second))
			if at < 0 || at > tc.within {
				t.Fatalf("howl found after %v, want within %v", at, tc.within)
			}
			t.Logf("found after %v", at)
			if hz, ok := d.Howling(); !ok || math.Abs(hz-tc.hz) > 2 {
				t.Fatalf("Howling() = %.1f Hz, %v; want %v Hz", hz, ok, tc.hz)
			}
		})
	}
}

func TestLeavesSingingAlone(t *testing.T) {
	n := audio.Samples(10 * time.Second)
	steady := func(p []float32, amp float32) []float32 { // a 20 ms attack, then steady
		for i := range min(len(p), 960) {
			p[i] *= float32(i) / 960
		}
		echotest.Normalize(p, amp)
		return p
	}
	sine := tone.SineAt(audio.SampleRate, n, 440, 1)
	sineish := make([]float32, n) // a straight tone with a few weak harmonics
	for i := range sineish {
		w := 2 * math.Pi * 330 * float64(i) / audio.SampleRate
		sineish[i] = float32(math.Sin(w) + 0.05*math.Sin(2*w) + 0.02*math.Sin(3*w))
	}
	loud := make([]float32, n) // a melody at full scale
	audio.ReadFull(&tone.Voice{Base: 294, Amp: 1, Seed: 3}, loud)
	swell := echotest.Singer(n, 392, 1, 4) // swelling by 12 dB
	for i := range swell {
		swell[i] *= float32(math.Pow(10, (-12+12*float64(i)/float64(n))/20))
	}
	voice := make([]float32, n)
	audio.ReadFull(&tone.Voice{Base: 220, Amp: 0.5, Seed: 5}, voice)
	// held returns one vowel held for the whole time: five harmonics with
	// 5.5 Hz vibrato of ±30 cents, swelling by swell dB.
	held := func(hz, swell float64) []float32 {
		p := make([]float32, n)
		var phase float64
		for i := range p {
			t := float64(i) / audio.SampleRate
			phase += 2 * math.Pi * hz * math.Pow(2, 0.3/12*math.Sin(2*math.Pi*5.5*t)) / audio.SampleRate
			var v float64
			for h, a := range []float64{1, 0.6, 0.5, 0.3, 0.2} {
				v += a * math.Sin(float64(h+1)*phase)
			}
			p[i] = float32(0.2 * v * math.Pow(10, swell*t/10/20))
		}
		return steady(p, 0.5)
	}
	for _, tc := range []struct {
		name string
		p    []float32
	}{
		{"held vowel", held(247, 0)},
		{"held vowel swelling by 12 dB", held(330, 12)},
		{"steady sine", steady(sine, 0.5)},
		{"steady sine-ish note", steady(sineish, 0.3)},
		{"tone.Voice melody", voice},
		{"singer with vibrato", echotest.Singer(n, 262, 0.5, 6)},
		{"swelling singer with vibrato", swell},
		{"loud melody", loud},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if at := firstHowl(New(), tc.p); at >= 0 {
				t.Fatalf("howl reported at %v", at)
			}
		})
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	d := New()
	p := growing(1000, -50, 40, 10*time.Millisecond)[:128]
	if a := testing.AllocsPerRun(200, func() { d.Process(p) }); a != 0 {
		t.Fatalf("%v allocations per Process", a)
	}
}

func BenchmarkProcess10ms(b *testing.B) {
	d := New()
	p := echotest.Singer(audio.SampleRate/100, 220, 0.5, 1)
	b.ReportAllocs()
	for b.Loop() {
		d.Process(p)
	}
}
