package limiter

import (
	"math"
	"testing"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/echo/echotest"
)

func TestTransparentBelowCeiling(t *testing.T) {
	t.Parallel()
	l := New(DefaultCeiling)
	in := echotest.Singer(2*audio.SampleRate, 220, 0.88, 1) // just under -1 dBFS (0.891)
	out := append([]float32(nil), in...)
	for i := 0; i < len(out); i += 128 {
		l.Process(out[i:min(i+128, len(out))])
	}
	for i := range in {
		if out[i] != in[i] {
			t.Fatalf("sample %d changed from %v to %v below the ceiling", i, in[i], out[i])
		}
	}
	if r := l.Reduction(); r != 0 {
		t.Fatalf("reduction %v dB below the ceiling", r)
	}
}

func TestCeilingHolds(t *testing.T) {
	t.Parallel()
	ceiling := float32(math.Pow(10, DefaultCeiling/20))
	// A song with a sudden 20 dB burst (feedback, a dropped microphone) in
	// the middle, and a few bad samples.
	p := echotest.Singer(3*audio.SampleRate, 150, 0.5, 2)
	burst := echotest.Noise(audio.SampleRate/2, 3, 3)
	for i, v := range burst {
		p[audio.SampleRate+i] += v
	}
	p[100], p[200] = float32(math.NaN()), float32(math.Inf(1))
	l := New(DefaultCeiling)
	for i := 0; i < len(p); i += 128 {
		l.Process(p[i:min(i+128, len(p))])
	}
	for i, v := range p {
		if !(v <= ceiling && v >= -ceiling) {
			t.Fatalf("sample %d is %v, beyond the ceiling %v", i, v, ceiling)
		}
	}
	if r := l.Reduction(); r < 15 {
		t.Fatalf("reduction %.1f dB, want the burst's ≥ 15", r)
	}
	// Half a second after the burst the gain is back to 1.
	tail := echotest.Singer(audio.SampleRate, 150, 0.5, 4)
	want := append([]float32(nil), tail...)
	l.Process(tail)
	for i := audio.SampleRate / 2; i < len(tail); i++ {
		if math.Abs(float64(tail[i]-want[i])) > 1e-3 {
			t.Fatalf("sample %d after the burst: %v, want %v", i, tail[i], want[i])
		}
	}
}

// TestLoudLowNoteIsSmooth checks that the hold keeps the gain steady over a
// loud low note: its harmonics stay where the note's are.
func TestLoudLowNoteIsSmooth(t *testing.T) {
	t.Parallel()
	n := audio.SampleRate
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(1.5 * math.Sin(2*math.Pi*110*float64(i)/audio.SampleRate))
	}
	l := New(DefaultCeiling)
	l.Process(p)
	var peak float32
	for _, v := range p[n/2:] {
		peak = max(peak, v)
	}
	ceiling := float32(math.Pow(10, DefaultCeiling/20))
	if peak > ceiling || peak < 0.99*ceiling {
		t.Fatalf("steady peak %v, want just under %v", peak, ceiling)
	}
	// With a steady gain the output is a sine: sample i and i+period agree.
	k := audio.SampleRate / 10 // 110 Hz has exactly 11 cycles in 100 ms
	for i := n / 2; i+k < n; i++ {
		if math.Abs(float64(p[i]-p[i+k])) > 1e-3 {
			t.Fatalf("gain wobbles: sample %d %v, 100 ms later %v", i, p[i], p[i+k])
		}
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	l := New(DefaultCeiling)
	p := echotest.Noise(128, 1, 1)
	if a := testing.AllocsPerRun(200, func() { l.Process(p) }); a != 0 {
		t.Fatalf("%v allocations per Process", a)
	}
}
