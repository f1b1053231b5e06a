package resample

import (
	"math"
	"testing"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/tone"
)

// nearRun streams in through a Near in blocks of 128 at ratio and returns
// what came out, and what it held back at the end (consumed − produced).
func nearRun(t *testing.T, in []float32, ratio float64) (out []float32, held int) {
	t.Helper()
	r := NewNear()
	if err := r.SetRatio(ratio); err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 128)
	consumed := 0
	for i := 0; i < len(in); i += 128 {
		block := in[i:min(i+128, len(in))]
		for len(block) > 0 {
			c, p := r.Process(block, buf)
			consumed += c
			out = append(out, buf[:p]...)
			block = block[c:]
		}
	}
	return out, consumed - len(out)
}

// TestNearLatency: Near holds NearLatency samples back, and a sample's
// value comes out that much later, exactly, at ratio 1.
func TestNearLatency(t *testing.T) {
	in := tone.SineAt(audio.SampleRate, 48*128, 1000, 0.5)
	out, held := nearRun(t, in, 1)
	if held != NearLatency {
		t.Errorf("%d samples held back, NearLatency says %d", held, NearLatency)
	}
	for i, v := range out {
		if v != in[i] {
			t.Fatalf("at ratio 1 output %d is %v, want input %d's %v", i, v, i, in[i])
		}
	}
}

// TestNearFollowsRatio: at 1.0005 (500 ppm) a 1 kHz tone comes out as
// long as the ratio says, at its level, its pitch lowered by the ratio,
// with no sample far from the ideal tone; an impossible ratio is refused.
func TestNearFollowsRatio(t *testing.T) {
	const ratio = 1.0005
	const hz = 1000.0
	in := tone.SineAt(audio.SampleRate, 10*audio.SampleRate, hz, 0.5)
	out, _ := nearRun(t, in, ratio)
	want := float64(len(in)) * ratio
	if math.Abs(float64(len(out))-want) > 4 {
		t.Errorf("%d samples out of %d at ratio %v, want about %.0f", len(out), len(in), ratio, want)
	}
	// Output n is input n/ratio: the tone at hz/ratio, the same phase at 0.
	worst := 0.0
	for n := 1000; n < len(out); n++ {
		ideal := 0.5 * math.Sin(2*math.Pi*hz/ratio*float64(n)/audio.SampleRate)
		worst = max(worst, math.Abs(float64(out[n])-ideal))
	}
	t.Logf("worst error against the ideal resampled tone: %.2g (%.0f dB under the tone)", worst, 20*math.Log10(worst/0.5))
	if worst > 0.5*1e-3 { // −60 dB: a 1 kHz tone is far under the top octave
		t.Errorf("worst error %.2g against the ideal tone", worst)
	}
	r := NewNear()
	for _, bad := range []float64{0, 0.5, 1.02, math.NaN()} {
		if r.SetRatio(bad) == nil {
			t.Errorf("SetRatio(%v) accepted", bad)
		}
	}
}

// TestNearTopOctave: a 10 kHz tone keeps its level within half a decibel
// at whatever phase the outputs fall (the ratio walks them through all).
func TestNearTopOctave(t *testing.T) {
	in := tone.SineAt(audio.SampleRate, 4*audio.SampleRate, 10000, 0.5)
	out, _ := nearRun(t, in, 1.001)
	lo, hi := math.Inf(1), 0.0
	const w = 480 // 10 ms windows: the phase moves 0.48 samples a window
	for i := 2000; i+w <= len(out); i += w {
		var e float64
		for _, v := range out[i : i+w] {
			e += float64(v) * float64(v)
		}
		rms := math.Sqrt(e / w)
		lo, hi = min(lo, rms), max(hi, rms)
	}
	want := 0.5 / math.Sqrt2
	t.Logf("10 kHz: level %.2f…%.2f dB", 20*math.Log10(lo/want), 20*math.Log10(hi/want))
	if 20*math.Log10(lo/want) < -0.6 || 20*math.Log10(hi/want) > 0.3 {
		t.Errorf("10 kHz level %.2f…%.2f dB, want within −0.6…+0.3", 20*math.Log10(lo/want), 20*math.Log10(hi/want))
	}
}

func BenchmarkNear(b *testing.B) {
	in := tone.SineAt(audio.SampleRate, 128, 1000, 0.5)
	out := make([]float32, 256)
	r := NewNear()
	r.SetRatio(1.0003)
	b.ReportAllocs()
	for b.Loop() {
		r.Process(in, out)
	}
}
