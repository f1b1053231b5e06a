package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBlockClock feeds callback instants of a device running 150 ppm fast
// with up to ±1 ms of scheduling jitter, and checks the filtered instants
// lie within 0.1 ms of the truth once settled.
func TestBlockClock(t *testing.T) {
	const n = 128
	rng := rand.New(rand.NewPCG(3, 4))
	per := 1e9 / SampleRate / (1 + 150e-6)
	var c BlockClock
	worst, raw := 0.0, 0.0
	for i := range 48000 * 60 / n {
		truth := 5e9 + float64(i*n)*per
		jitter := rng.Float64() * 1e6 // callbacks run late, never early
		got := float64(c.Tick(int64(truth+jitter), n))
		if i*n > 48000*20 {
			worst = max(worst, math.Abs(got-truth-0.5e6))
			raw = max(raw, math.Abs(jitter-0.5e6))
		}
	}
	t.Logf("worst error %.3f ms (raw callback times: %.3f ms)", worst/1e6, raw/1e6)
	if worst > 0.1e6 {
		t.Errorf("filtered instants are %.3f ms off", worst/1e6)
	}
	if c.Skipped() != 0 {
		t.Errorf("jitter alone counted %d samples skipped", c.Skipped())
	}
}

// TestBlockClockStalls feeds the callbacks of a timer-paced device on a
// busy machine: every second and a half the thread stalls for 4 to 30 ms,
// then runs the blocks it owes back to back. The filtered timeline must
// not follow the stalls; a real jump (a device restarted 200 ms later, an
// xrun that dropped 12 ms) must be taken up within 0.3 s.
func TestBlockClockStalls(t *testing.T) {
	const n = 128
	per := 1e9 / SampleRate
	rng := rand.New(rand.NewPCG(5, 6))
	var c BlockClock
	worst := 0.0
	offset := 0.0 // the device's timeline shift (the restart)
	stallUntil := 0.0
	for i := range 48000 * 60 / n {
		truth := 1e9 + float64(i*n)*per + offset
		if i%560 == 0 && i > 0 { // every 1.5 s
			stallUntil = truth + 4e6 + rng.Float64()*26e6
		}
		now := truth + rng.Float64()*0.2e6
		if now < stallUntil {
			now = stallUntil + float64(i%8)*1e3 // catching up, back to back
		}
		got := float64(c.Tick(int64(now), n))
		restarting := (i*n >= 48000*40 && i*n < 48000*40.3) || (i*n >= 48000*50 && i*n < 48000*50.3)
		if i*n > 48000*10 && now >= stallUntil+20e6 && !restarting {
			worst = max(worst, math.Abs(got-truth-0.1e6))
		}
		switch i * n {
		case 48000 * 40:
			offset += 200e6
		case 48000 * 50:
			offset += 12e6
		}
	}
	t.Logf("worst error away from stalls: %.3f ms", worst/1e6)
	if worst > 0.3e6 {
		t.Errorf("the filtered timeline strays %.3f ms", worst/1e6)
	}
}

// TestBlockClockCountsStalls: a minute of callbacks that jitter by up to
// three quarters of a block counts no stall; with a stall of 4 to 30 ms
// every 1.5 s, each followed by the blocks it owes back to back, and one
// xrun that moves the device's timeline 12 ms, each counts once.
func TestBlockClockCountsStalls(t *testing.T) {
	const n = 128
	per := 1e9 / SampleRate
	for _, stalling := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(7, 8))
		var c BlockClock
		want, stallUntil, offset := 0, 0.0, 0.0
		for i := range 48000 * 60 / n {
			truth := 1e9 + float64(i*n)*per + offset
			if stalling && i%560 == 0 && i > 0 {
				stallUntil = truth + 4e6 + rng.Float64()*26e6
				want++
			}
			if stalling && i == 48000*45/n {
				offset += 12e6
				truth += 12e6
				want++
			}
			now := truth + rng.Float64()*0.75*float64(n)*per
			if now < stallUntil {
				now = stallUntil + float64(i%8)*1e3
			}
			c.Tick(int64(now), n)
		}
		if got := c.Stalls(); got != want {
			t.Errorf("stalling %v: %d stalls counted, want %d", stalling, got, want)
		}
	}
}

// TestBlockClockSkips: a device that goes on without a stalled callback
// (JACK skips a client that misses its cycle) moves its timeline by whole
// blocks; Skipped counts them exactly, and the ticks from the third
// callback after the stall on are on the device's timeline again. A
// stalled thread whose blocks the device waited for skips nothing, though
// it catches up slowly (a timer-paced device on a loaded machine: one
// owed block every 0.6 of one). A device that says it catches up
// (CatchesUp: a file device) skips nothing whatever its callbacks do.
func TestBlockClockSkips(t *testing.T) {
	const n = 128
	per := 1e9 / SampleRate
	for _, skipping := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(9, 10))
		var c BlockClock
		caughtUp := BlockClock{CatchesUp: true} // the same callbacks, from a device that never skips
		want, worst := 0, 0.0
		stallUntil, owed, since := 0.0, 0, 0
		for i := 0; i < 48000*60/n; i++ {
			if i%560 == 0 && i > 0 { // every 1.5 s
				missed := 1 + rng.IntN(20) // up to 53 ms
				if skipping {
					i += missed // no callback for those blocks
					want += missed * n
					since = 0
				} else {
					stallUntil = 1e9 + float64(i*n)*per + float64(missed)*float64(n)*per + rng.Float64()*float64(n)*per
					owed = i
				}
			}
			truth := 1e9 + float64(i*n)*per
			now := truth + rng.Float64()*0.3e6
			if catchUp := stallUntil + float64(i-owed)*0.6*float64(n)*per; now < catchUp {
				now = catchUp
			}
			got := float64(c.Tick(int64(now), n))
			caughtUp.Tick(int64(now), n)
			if since++; skipping && since > skipRun && i*n > 48000*5 {
				worst = max(worst, math.Abs(got-truth-0.15e6))
			}
		}
		if got := c.Skipped(); got != want {
			t.Errorf("skipping %v: %d samples counted skipped, want %d", skipping, got, want)
		}
		if got := caughtUp.Skipped(); got != 0 {
			t.Errorf("skipping %v: a device that catches up counted %d samples skipped", skipping, got)
		}
		if skipping {
			t.Logf("worst error from the third callback after a skip: %.3f ms", worst/1e6)
			if worst > 0.2e6 {
				t.Errorf("the timeline is %.3f ms off after a skip", worst/1e6)
			}
		}
	}
}
