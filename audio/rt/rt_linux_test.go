package rt

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkWake measures how long a goroutine takes to run once woken once
// every 1.33 ms (a device period), through a Go channel or a Waker in the
// kernel (an eventfd), on an ordinary thread or a real-time one, by a real-time thread (the audio
// callback waking the encoder: "by=rt") or an ordinary one (pion's
// goroutines handing the voice reader a packet: "by=ordinary"). It reports
// the median, the 99.9th percentile and the worst, in µs; the tails are
// what matter, on a busy machine:
// go test -run X -bench Wake -benchtime 3000x ./audio/rt.
func BenchmarkWake(b *testing.B) {
	for _, c := range []struct {
		name                             string
		byRT, realtime, useWaker, kernel bool
	}{
		{"by=ordinary/chan/ordinary", false, false, false, false},
		{"by=ordinary/chan/realtime", false, true, false, false},
		{"by=rt/chan/ordinary", true, false, false, false},
		{"by=rt/chan/realtime", true, true, false, false},
		{"by=rt/kernel/ordinary", true, false, true, true},
		{"by=rt/kernel/realtime", true, true, true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			w, err := NewWaker()
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			wake := make(chan struct{}, 1)
			var sent atomic.Int64
			lat := make([]time.Duration, 0, 4096)
			done := make(chan error)
			go func() {
				if c.realtime {
					unlock, err := Lock(Priority)
					if err != nil {
						done <- err
						return
					}
					defer unlock()
				}
				w.Kernel(c.kernel)
				for {
					if c.useWaker {
						if !w.Wait() {
							break
						}
					} else if _, ok := <-wake; !ok {
						break
					}
					if t := sent.Load(); t != 0 { // not Kernel's own wake
						lat = append(lat, time.Duration(time.Now().UnixNano()-t))
					}
				}
				done <- nil
			}()
			if c.byRT {
				// Above the sleeper, as the audio callback is.
				unlock, err := Lock(Priority + 8)
				if err != nil {
					b.Skip(err)
				}
				defer unlock()
			}
			for b.Loop() {
				time.Sleep(1333 * time.Microsecond)
				sent.Store(time.Now().UnixNano())
				if c.useWaker {
					w.Wake()
				} else {
					wake <- struct{}{}
				}
			}
			time.Sleep(10 * time.Millisecond) // the last wake's turn
			w.Stop()
			close(wake)
			if err := <-done; err != nil {
				b.Skip(err)
			}
			slices.Sort(lat)
			us := func(q float64) float64 {
				return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Microsecond)
			}
			b.ReportMetric(us(0.5), "p50_µs")
			b.ReportMetric(us(0.999), "p99.9_µs")
			b.ReportMetric(us(1), "max_µs")
		})
	}
}
