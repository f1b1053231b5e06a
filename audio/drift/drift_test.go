package drift

import (
	"fmt"
	"math"
	"testing"
)

// simulate runs an input clock at 48 kHz × (1 + ppm) against an output
// clock at 48 kHz, both in 128-sample blocks, for the given seconds, with
// the buffer between them drained through the tracker's ratio. It returns
// the lowest and highest levels seen after settle seconds, and whether the
// output ever found too little to read (underrun) or the input too much
// room (overrun, past capacity).
func simulate(ppm float64, seconds, settle float64) (lo, hi float64, underruns, overruns int) {
	const (
		block    = 128
		rate     = 48000.0
		capacity = 8 * block
	)
	tr := New(Target(block, block))
	inPeriod := block / (rate * (1 + ppm*1e-6))
	outPeriod := block / rate
	level := 0.0
	nextIn, nextOut, lastIn := 0.0, 0.0, 0.0
	lo, hi = math.Inf(1), math.Inf(-1)
	// The output waits for the buffer to reach its target once, as the
	// device layer does before it starts reading.
	started := false
	for now := 0.0; now < seconds; {
		if nextIn <= nextOut {
			now = nextIn
			level += block
			lastIn = now
			if level > capacity {
				overruns++
				level = capacity
			}
			nextIn += inPeriod
			continue
		}
		now = nextOut
		nextOut += outPeriod
		if !started {
			if level < float64(tr.Target()-block) {
				continue
			}
			started = true
		}
		ratio := tr.Update(int(level), now-lastIn, outPeriod)
		need := block / ratio
		if level < need {
			underruns++
			level = 0
			continue
		}
		level -= need
		if now > settle {
			lo, hi = min(lo, level), max(hi, level)
		}
	}
	return lo, hi, underruns, overruns
}

// TestHoldsLevelUnderDrift: with the clocks ±200 ppm apart, ten minutes of
// simulated audio pass without an underrun or overrun, and once settled the
// buffer stays within one block of its target.
func TestHoldsLevelUnderDrift(t *testing.T) {
	t.Parallel()
	for _, ppm := range []float64{-200, -50, 0, 50, 200} {
		t.Run(fmt.Sprintf("%+.0fppm", ppm), func(t *testing.T) {
			lo, hi, under, over := simulate(ppm, 600, 30)
			target := float64(Target(128, 128)) - 128 // after the read, before the in-flight block
			t.Logf("level %.1f…%.1f after settling (target %.0f); %d underruns, %d overruns", lo, hi, target, under, over)
			if under > 0 || over > 0 {
				t.Errorf("%d underruns and %d overruns", under, over)
			}
			// The level after a read swings by the one input block in
			// flight; beyond that it must hold to within a few samples.
			if lo < target-128-4 || hi > target+4 {
				t.Errorf("level %.1f…%.1f, want within [%.0f, %.0f]: the target less at most one block", lo, hi, target-128, target)
			}
		})
	}
}

func TestRatioFollowsDrift(t *testing.T) {
	t.Parallel()
	tr := New(256)
	// Feed a level that stays 10 samples high: the ratio must fall below
	// 1 (drain faster) and keep falling while the error lasts.
	var r1, r2 float64
	for i := range 2000 {
		r := tr.Update(266, 0, 128.0/48000)
		if i == 100 {
			r1 = r
		}
		r2 = r
	}
	if !(r1 < 1 && r2 < r1) {
		t.Fatalf("ratios %v then %v for a buffer too full, want below 1 and falling", r1, r2)
	}
	if r2 < 1-maxDrift {
		t.Fatalf("ratio %v beyond the ±%v clamp", r2, maxDrift)
	}
}
