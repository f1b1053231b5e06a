package rt

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRaiserLogsOnce: a Raiser that cannot raise leaves its goroutines as
// they were and says why once, not once per goroutine.
func TestRaiserLogsOnce(t *testing.T) {
	var logs bytes.Buffer
	r := New(0, slog.New(slog.NewTextHandler(&logs, nil))) // 0 is no SCHED_FIFO priority
	for range 3 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			unlock, ok := r.Raise("test")
			defer unlock()
			if ok {
				t.Error("raised at priority 0")
			}
		}()
		<-done
	}
	if n := strings.Count(logs.String(), "real-time threads unavailable"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	var none *Raiser
	unlock, ok := none.Raise("nil") // raises nothing, undoes nothing
	unlock()
	if ok {
		t.Error("a nil Raiser raised")
	}
}

func TestLockPriorityRange(t *testing.T) {
	for _, p := range []int{0, 100} {
		if _, err := Lock(p); err == nil {
			t.Errorf("Lock(%d) succeeded", p)
		}
	}
}
