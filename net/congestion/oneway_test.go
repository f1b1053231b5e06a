package congestion

import (
	"testing"
	"time"
)

// TestOneWay: the partner's clock 7 s ahead, the path 30 ms one way; the
// queue is the delay over the least of the last half minute, whatever the
// offset, and a least older than that is forgotten.
func TestOneWay(t *testing.T) {
	var o OneWay
	at := time.Unix(1000, 0)
	const offset = int64(7 * time.Second)
	add := func(delay time.Duration) time.Duration {
		at = at.Add(250 * time.Millisecond)
		sent := at.UnixNano()
		return o.Add(at, sent, sent+offset+int64(delay))
	}
	for i, step := range []struct{ delay, want time.Duration }{
		{30 * time.Millisecond, 0},
		{45 * time.Millisecond, 15 * time.Millisecond},
		{31 * time.Millisecond, time.Millisecond},
		{29 * time.Millisecond, 0},
	} {
		if got := add(step.delay); got != step.want {
			t.Errorf("report %d, %v one way: queue %v, want %v", i+1, step.delay, got, step.want)
		}
	}
	// Half a minute at 40 ms: the 29 ms floor ages out.
	var q time.Duration
	for range int(baseWindow / (250 * time.Millisecond)) {
		q = add(40 * time.Millisecond)
	}
	if q != 0 {
		t.Errorf("after %v at 40 ms one way the queue is %v, want 0", baseWindow, q)
	}
}
