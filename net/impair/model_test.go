package impair

import (
	"testing"
	"time"
)

// TestModelDeterministic: one profile and seed give one sequence of fates;
// another seed gives another; arrivals keep send order without Reorder.
func TestModelDeterministic(t *testing.T) {
	t.Parallel()
	var mobile Profile
	for _, p := range Scenarios() {
		if p.Name == "mobile" {
			mobile = p
		}
	}
	mobile.Seed = 7
	fates := func(p Profile) []Fate {
		m := NewModel(p)
		var fs []Fate
		for i := range 2000 {
			fs = append(fs, m.Send(time.Duration(i)*5*time.Millisecond, 120))
		}
		return fs
	}
	a, b := fates(mobile), fates(mobile)
	mobile.Seed = 8
	c := fates(mobile)
	same, lost := true, 0
	var last time.Duration
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("packet %d: %+v then %+v with the same seed", i, a[i], b[i])
		}
		same = same && a[i] == c[i]
		if a[i].Lost {
			lost++
			continue
		}
		if a[i].Arrival < last {
			t.Errorf("packet %d arrives at %v, before an earlier one at %v", i, a[i].Arrival, last)
		}
		if min := time.Duration(i)*5*time.Millisecond + mobile.Delay; a[i].Arrival < min {
			t.Errorf("packet %d arrives at %v, before its base delay %v", i, a[i].Arrival, min)
		}
		last = a[i].Arrival
	}
	if same {
		t.Error("seeds 7 and 8 gave the same fates")
	}
	if pct := 100 * float64(lost) / float64(len(a)); pct < 2 || pct > 9 {
		t.Errorf("lost %.1f %%, want about 5", pct)
	}
}

// TestBottleneckQueue offers a bottleneck three times its rate: what gets
// through leaves at the link's rate, headers included, no packet waits
// longer than the queue's bytes take to drain, and the rest is dropped.
// Then the limit lifts: nothing waits or is dropped any more.
func TestBottleneckQueue(t *testing.T) {
	t.Parallel()
	limit := NewLimit(120_000)
	p := Profile{Limit: limit, QueueBytes: 1200, Overhead: WireOverhead, Delay: 30 * time.Millisecond}
	m := NewModel(p)
	const size, gap = 100, 2500 * time.Microsecond // 409.6 kbit/s with the headers
	drain := time.Duration(p.QueueBytes) * 8 * time.Second / 120_000
	var first, last time.Duration
	delivered, dropped := 0, 0
	var worst time.Duration
	now := time.Duration(0)
	for ; now < 10*time.Second; now += gap {
		f := m.Send(now, size)
		if f.RateDropped {
			dropped++
			continue
		}
		if delivered == 0 {
			first = f.Arrival
		}
		last = f.Arrival
		delivered++
		worst = max(worst, f.Queued)
		if f.Arrival < now+f.Queued+p.Delay {
			t.Fatalf("a packet sent at %v arrives at %v, before its wait %v and delay", now, f.Arrival, f.Queued)
		}
	}
	bps := float64(delivered-1) * (size + WireOverhead) * 8 / (last - first).Seconds()
	t.Logf("delivered %d, dropped %d, at %.0f bit/s, longest wait %v", delivered, dropped, bps, worst)
	if bps < 114_000 || bps > 121_000 {
		t.Errorf("delivered at %.0f bit/s through 120 kbit/s", bps)
	}
	if worst > drain || worst < drain*3/4 {
		t.Errorf("longest wait %v, want up to the %v the queue's 1200 bytes take", worst, drain)
	}
	if want := 1 - 120.0/409.6; float64(dropped)/float64(dropped+delivered) < want-0.03 {
		t.Errorf("dropped %d of %d, want about %.0f %%", dropped, dropped+delivered, 100*want)
	}
	limit.Set(0)
	now += drain // what was queued has left
	for end := now + time.Second; now < end; now += gap {
		if f := m.Send(now, size); f.RateDropped || f.Queued != 0 {
			t.Fatalf("with the limit lifted, a packet at %v: %+v", now, f)
		}
	}
}
