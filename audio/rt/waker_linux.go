package rt

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A Waker wakes one goroutine blocked in Wait, from any thread, through
// the kernel: an eventfd the waiting thread blocks in. A goroutine woken
// through a channel runs only once one of Go's ordinary threads has
// picked it up and, if it is locked to a real-time thread, handed it over:
// the stall of an ordinary thread then delays it all the same
// (BenchmarkWake: a waiter locked to a real-time thread, woken by another
// real-time thread through a channel, 2–8 ms at the 99.9th percentile on a
// loaded machine; through a Waker 0.26–0.7 ms). Wait belongs to one
// goroutine, on a thread from Lock; Wake and Stop are safe from any.
type Waker struct {
	fd      int
	one     [8]byte // 1 as a uint64: what Wake adds to the counter
	stopped atomic.Bool
}

// NewWaker returns a Waker; Close frees it.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rt: eventfd: %w", err)
	}
	w := &Waker{fd: fd}
	binary.NativeEndian.PutUint64(w.one[:], 1)
	return w, nil
}

// Wake wakes Wait, or makes its next call return at once: wakes that come
// before Wait runs count as one. It neither blocks nor allocates (one
// write to the eventfd), for the audio thread.
func (w *Waker) Wake() {
	unix.Write(w.fd, w.one[:]) // fails only if the counter would pass 2⁶⁴−2
}

// Wait blocks until Wake or Stop, and reports false once Stop was called.
func (w *Waker) Wait() bool {
	var buf [8]byte
	for !w.stopped.Load() {
		_, err := unix.Read(w.fd, buf[:])
		if err != unix.EINTR {
			return err == nil && !w.stopped.Load()
		}
	}
	return false
}

// Stop makes Wait return false, now and from then on.
func (w *Waker) Stop() {
	w.stopped.Store(true)
	w.Wake()
}

// Close frees the eventfd. Call it once the waiting goroutine has
// returned and nothing can call Wake any more.
func (w *Waker) Close() error { return unix.Close(w.fd) }
