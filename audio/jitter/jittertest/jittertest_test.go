package jittertest

import (
	"testing"
	"time"

	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/trace"
)

// synthetic returns a minute of 5 ms packets from a sender ppm fast over a
// path of 30 ms plus extra(i) for packet i; extra < 0 loses the packet.
func synthetic(ppm float64, extra func(i int) time.Duration) *trace.Trace {
	tr := &trace.Trace{Frame: 240}
	for i := range 12000 {
		d := extra(i)
		if d < 0 {
			continue
		}
		sent := time.Duration(float64(i) * float64(5*time.Millisecond) / (1 + ppm*1e-6))
		tr.Records = append(tr.Records, trace.Record{Seq: uint16(i + 60000), TS: uint32(i*240) - 1000, Arrival: sent + 30*time.Millisecond + d})
	}
	return tr
}

func TestOracle(t *testing.T) {
	block := 128*time.Second/48000 + 10*time.Microsecond // the bisection's resolution
	for _, tc := range []struct {
		name   string
		tr     *trace.Trace
		lo, hi time.Duration
	}{
		// Only the reads' phase: the packet due just after a read must
		// come by that read.
		{"steady", synthetic(0, func(int) time.Duration { return 0 }), block - 200*time.Microsecond, block},
		{"steady, drifting", synthetic(200, func(int) time.Duration { return 0 }), block - 200*time.Microsecond, block},
		{"steady, drifting back", synthetic(-200, func(int) time.Duration { return 0 }), block - 200*time.Microsecond, block},
		{"lossy", synthetic(0, func(i int) time.Duration { return time.Duration(-(i % 3 / 2)) }), block - 200*time.Microsecond, block},
		// 0.5 % late by 20 ms: within the 1 % allowed.
		{"rare spikes", synthetic(0, func(i int) time.Duration { return time.Duration(i%200/199) * 20 * time.Millisecond }), 0, block},
		// 5 % late by 20 ms: all must be waited for.
		{"frequent spikes", synthetic(0, func(i int) time.Duration { return time.Duration(i%20/19) * 20 * time.Millisecond }), 20 * time.Millisecond, 20*time.Millisecond + block},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Oracle(tc.tr, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if d < tc.lo || d > tc.hi {
				t.Errorf("oracle %v, want within [%v, %v]", d, tc.lo, tc.hi)
			}
		})
	}
	if _, err := Oracle(&trace.Trace{Frame: 240}, Options{}); err != ErrEmpty {
		t.Errorf("empty trace: %v, want ErrEmpty", err)
	}
}

// TestReplaySteady: on a steady path nothing is late or concealed, the
// delay is a few milliseconds (a frame's worth of margin at most above the
// oracle's), and two replays agree.
func TestReplaySteady(t *testing.T) {
	tr := synthetic(200, func(int) time.Duration { return 0 })
	cfg := jitter.PlayoutConfig{Config: jitter.Config{WaitStep: 120}}
	a, err := Replay(cfg, tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", a)
	if a.Late != 0 || a.Underruns != 0 || a.ConcealedPct != 0 {
		t.Errorf("late %d, underruns %d, concealed %.2f %% on a steady path", a.Late, a.Underruns, a.ConcealedPct)
	}
	if a.Packets < 11000 || a.MeanDelay < a.Oracle || a.MeanDelay > a.Oracle+5*time.Millisecond {
		t.Errorf("%d packets, mean delay %v, oracle %v", a.Packets, a.MeanDelay, a.Oracle)
	}
	b, err := Replay(cfg, tr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a.Stats.RatePPM, b.Stats.RatePPM = 0, 0
	if a != b {
		t.Errorf("two replays differ:\n%+v\n%+v", a, b)
	}
}

// TestReplayLossCounted: packets the network lost are concealed, not late.
func TestReplayLossCounted(t *testing.T) {
	p := impair.Profile{Name: "lossy", Delay: 10 * time.Millisecond, Loss: impair.Bursty(0.05, 2), Seed: 1}
	r, err := Replay(jitter.PlayoutConfig{Config: jitter.Config{WaitStep: 120}}, trace.Generate(p, trace.Options{}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Late != 0 || r.ConcealedPct < 3 || r.ConcealedPct > 8 {
		t.Errorf("late %d, concealed %.1f %%, want 0 and about 5", r.Late, r.ConcealedPct)
	}
}

// TestScenarios asserts the playout's figures on fixed seeded traces of
// the lab's paths (a minute each, the sender 200 ppm fast): late loss
// within 1 %, and a delay within 1.25 × the oracle's except on lan, where
// the floor is playout's own (a device block, the resampler's chunk and
// latency: 3.8 ms against the oracle's 2.7), not the link's.
func TestScenarios(t *testing.T) {
	for i, p := range impair.Scenarios() {
		t.Run(p.Name, func(t *testing.T) {
			p.Seed = uint64(i + 1)
			tr := trace.Generate(p, trace.Options{DriftPPM: 200, Seq: 65000})
			r, err := Replay(jitter.PlayoutConfig{Config: jitter.Config{WaitStep: 120}}, tr, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("late %.2f %%, delay %v (p95 %v), oracle %v, ratio %.2f, concealed %.2f %%",
				r.LatePct, r.MeanDelay, r.P95Delay, r.Oracle, r.Ratio, r.ConcealedPct)
			if r.LatePct > 1 {
				t.Errorf("late %.2f %%, want ≤ 1", r.LatePct)
			}
			maxRatio := 1.25
			if p.Name == "lan" {
				maxRatio = 1.7
			}
			if r.Ratio > maxRatio {
				t.Errorf("delay %.2f × the oracle's, want ≤ %.2f", r.Ratio, maxRatio)
			}
		})
	}
}
