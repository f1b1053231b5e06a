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
