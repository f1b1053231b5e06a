package resample

import (
	"errors"
	"math"
	"runtime"
	"testing"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
)

// run pushes in through r in blocks of 128 and returns everything produced.
func run(t *testing.T, r *Resampler, in []float32, onBlock func(i int)) []float32 {
	t.Helper()
	var out []float32
	buf := make([]float32, 512)
	for i := 0; i < len(in); i += 128 {
		if onBlock != nil {
			onBlock(i / 128)
		}
		block := in[i:min(i+128, len(in))]
		for len(block) > 0 {
			c, p := r.Process(block, buf)
			out = append(out, buf[:p]...)
			block = block[c:]
			if c == 0 && p == 0 {
				t.Fatal("resampler made no progress")
			}
		}
	}
	return out
}

func TestRatios(t *testing.T) {
	for _, ratio := range []float64{1, 1.0002, 0.9998, 1.01} {
		r, err := New(Fastest)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.SetRatio(ratio); err != nil {
			t.Fatal(err)
		}
		in := tone.SineAt(audio.SampleRate, 10*audio.SampleRate, 1000, 0.5)
		out := run(t, r, in, nil)
		want := float64(len(in)) * ratio
		if math.Abs(float64(len(out))-want) > 100 {
			t.Errorf("ratio %v: %d samples out of %d, want %.0f", ratio, len(out), len(in), want)
		}
		// A 1 kHz tone resampled by ratio is a tone of 1000/ratio Hz.
		mid := out[len(out)/2 : len(out)/2+4800]
		if a := measure.Tone(mid, 1000/ratio, audio.SampleRate); math.Abs(a-0.5) > 0.01 {
			t.Errorf("ratio %v: tone amplitude %.3f, want 0.5", ratio, a)
		}
	}
}

// TestRatioChangesAreSmooth changes the ratio every block, as a drift
// controller would, and checks the output of a sine has no jumps.
func TestRatioChangesAreSmooth(t *testing.T) {
	r, err := New(Fastest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := tone.SineAt(audio.SampleRate, 2*audio.SampleRate, 440, 0.5)
	out := run(t, r, in, func(i int) {
		r.SetRatio(1 + 0.0005*math.Sin(float64(i)/10))
	})
	// The steepest step of a 0.5-amplitude 440 Hz sine at 48 kHz.
	maxStep := 0.5 * 2 * math.Pi * 440 / audio.SampleRate * 1.05
	for i := 200; i+1 < len(out); i++ {
		if d := math.Abs(float64(out[i+1] - out[i])); d > maxStep {
			t.Fatalf("jump of %.4f at sample %d, want ≤ %.4f", d, i, maxStep)
		}
	}
}

func TestBadRatio(t *testing.T) {
	r, err := New(Fastest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, ratio := range []float64{0, -1, 1000, math.NaN()} {
		if r.SetRatio(ratio) == nil {
			t.Errorf("SetRatio(%v) succeeded", ratio)
		}
	}
}

func BenchmarkProcess128(b *testing.B) {
	r, _ := New(Fastest)
	defer r.Close()
	r.SetRatio(1.0001)
	in := tone.SineAt(audio.SampleRate, 128, 1000, 0.5)
	out := make([]float32, 256)
	b.ReportAllocs()
	for b.Loop() {
		r.Process(in, out)
	}
}

// TestLatency measures the delay through the resampler in a live stream:
// input fed block by block, the samples consumed but not yet given out.
func TestLatency(t *testing.T) {
	r, err := New(Fastest)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := tone.SineAt(audio.SampleRate, 48*128, 1000, 0.5)
	out := make([]float32, 128)
	consumed, produced := 0, 0
	for i := 0; i < len(in); i += 128 {
		block := in[i : i+128]
		for len(block) > 0 {
			c, p := r.Process(block, out)
			consumed += c
			produced += p
			block = block[c:]
		}
	}
	held := consumed - produced
	t.Logf("%d samples in, %d out: %d held back", consumed, produced, held)
	if held < Latency-2 || held > Latency+2 {
		t.Errorf("%d samples held back, Latency says %d", held, Latency)
	}
}

// convert converts a whole recording, its length reserved.
func convert(in []float32, from, to int) ([]float32, error) {
	c, err := NewConverter(from, to, int(math.Round(float64(len(in))*float64(to)/float64(from))))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Reserve(int64(len(in))); err != nil {
		return nil, err
	}
	if err := c.Write(in); err != nil {
		return nil, err
	}
	return c.Finish()
}

// TestConvertAligned checks that a Converter keeps time: an impulse at input
// sample i comes out at i × to/from, and the length scales.
func TestConvertAligned(t *testing.T) {
	for _, from := range []int{44100, 22050, 96000} {
		in := make([]float32, from) // one second
		at := from / 3
		in[at] = 1
		out, err := convert(in, from, 48000)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 48000 {
			t.Errorf("%d Hz: %d samples out, want 48000", from, len(out))
		}
		peak := 0
		for i, v := range out {
			if v > out[peak] {
				peak = i
			}
		}
		want := float64(at) * 48000 / float64(from)
		if math.Abs(float64(peak)-want) > 1 {
			t.Errorf("%d Hz: impulse at %d, want %.1f", from, peak, want)
		}
	}
}

// TestConverterPieces checks that a recording converted in pieces of any
// size, with or without its length known, comes out as converted whole.
func TestConverterPieces(t *testing.T) {
	in := tone.SineAt(44100, 44100, 440, 0.5) // a second at 44.1 kHz
	whole, err := convert(in, 44100, 48000)
	if err != nil {
		t.Fatal(err)
	}
	for _, reserve := range []bool{true, false} {
		for _, piece := range []int{1, 100, 4096, len(in)} {
			c, err := NewConverter(44100, 48000, 48000)
			if err != nil {
				t.Fatal(err)
			}
			if reserve {
				if err := c.Reserve(int64(len(in))); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < len(in); i += piece {
				if err := c.Write(in[i:min(i+piece, len(in))]); err != nil {
					t.Fatal(err)
				}
			}
			out, err := c.Finish()
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != len(whole) || cap(out) > 48000 {
				t.Fatalf("reserve %v, pieces of %d: %d samples (cap %d), want %d (cap ≤ 48000)", reserve, piece, len(out), cap(out), len(whole))
			}
			for i := range out {
				if math.Abs(float64(out[i]-whole[i])) > 1e-6 {
					t.Fatalf("reserve %v, pieces of %d: sample %d is %v, want %v", reserve, piece, i, out[i], whole[i])
				}
			}
		}
	}
}

// TestConverterLimit checks that a converter refuses, before allocating,
// input that would pass its limit, at equal rates and across rates.
func TestConverterLimit(t *testing.T) {
	for _, from := range []int{48000, 200, 8000, 384000} {
		limit := 48000
		piece := make([]float32, max(1, from/10))
		var errReserve, errWrite error
		var pieces int
		alloc := allocated(func() {
			c, err := NewConverter(from, 48000, limit)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			errReserve, errWrite = c.Reserve(int64(from)*2), nil
			for pieces = 0; pieces < 30 && errWrite == nil; pieces++ {
				errWrite = c.Write(piece)
			}
		})
		if !errors.Is(errReserve, ErrTooLong) {
			t.Errorf("%d Hz: Reserve of 2 s: %v, want ErrTooLong", from, errReserve)
		}
		if !errors.Is(errWrite, ErrTooLong) || pieces != 11 {
			t.Errorf("%d Hz: the %dth tenth of a second: %v, want ErrTooLong at the 11th", from, pieces, errWrite)
		}
		if alloc > uint64(4*limit)+8<<10 {
			t.Errorf("%d Hz: %d bytes allocated for at most %d samples", from, alloc, limit)
		}
	}
}

// TestConverterAllocatesItsOutput checks that a conversion allocates its
// output once when its length is reserved, and at most twice (blocks, then
// joined) when not; it copies no input.
func TestConverterAllocatesItsOutput(t *testing.T) {
	in := tone.SineAt(44100, 10*44100, 440, 0.5)
	for _, reserve := range []bool{true, false} {
		var out []float32
		var err error
		alloc := allocated(func() {
			c, _ := NewConverter(44100, 48000, 20*48000)
			defer c.Close()
			if reserve {
				c.Reserve(int64(len(in)))
			}
			for i := 0; i < len(in); i += 4096 {
				c.Write(in[i:min(i+4096, len(in))])
			}
			out, err = c.Finish()
		})
		if err != nil {
			t.Fatal(err)
		}
		// Unreserved: the blocks, the last one partly filled, then the join.
		size, most := uint64(4*len(out)), 2*uint64(4*len(out))+4*block
		if reserve {
			most = size
		}
		if alloc > most+16<<10 {
			t.Errorf("reserved %v: %d bytes allocated for %d bytes of output", reserve, alloc, size)
		}
	}
}

// allocated is how many bytes f allocated on the Go heap the second time
// it ran. The first run warms up, as in testing.AllocsPerRun: a test
// binary's first conversions made the runtime allocate some 10 kB of its
// own (in about 1 run of 5 under -race).
func allocated(f func()) uint64 {
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
