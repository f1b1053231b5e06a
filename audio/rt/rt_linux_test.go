package rt

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLock: the goroutine's thread runs SCHED_FIFO at the priority asked
// while locked, and as an ordinary thread again after unlock. Skipped
// where the system does not permit real-time scheduling.
func TestLock(t *testing.T) {
	type state struct {
		policy, priority int
		err              error
	}
	got := make(chan [2]state, 1)
	go func() {
		var s [2]state
		unlock, err := Lock(Priority)
		if err != nil {
			s[0].err = err
			got <- s
			return
		}
		s[0].policy, s[0].priority, s[0].err = policy()
		unlock()
		s[1].policy, s[1].priority, s[1].err = policy()
		got <- s
	}()
	s := <-got
	if errors.Is(s[0].err, ErrNotPermitted) {
		t.Skip(s[0].err)
	}
	if s[0].err != nil || s[1].err != nil {
		t.Fatal(s[0].err, s[1].err)
	}
	if s[0].policy != unix.SCHED_FIFO || s[0].priority != Priority {
		t.Errorf("locked: policy %d priority %d, want SCHED_FIFO (%d) at %d", s[0].policy, s[0].priority, unix.SCHED_FIFO, Priority)
	}
	if s[1].policy != unix.SCHED_NORMAL || s[1].priority != 0 {
		t.Errorf("unlocked: policy %d priority %d, want SCHED_NORMAL at 0", s[1].policy, s[1].priority)
	}
}
