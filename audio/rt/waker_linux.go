package rt

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A Waker wakes one goroutine blocked in Wait, from any thread. On a
// real-time thread (see Kernel) the waiter blocks in the kernel, in an
// eventfd: a goroutine woken through a channel runs only once one of Go's
// ordinary threads has picked it up and, if it is locked to a real-time
// thread, handed it over, so an ordinary thread's stall delays it all the
// same. On an ordinary thread it waits on a channel: blocked in the
// kernel, an ordinary thread comes back far later (BenchmarkWake). Wait,
// and Kernel, belong to one goroutine; Wake and Stop are safe from any.
type Waker struct {
	fd      int
	one     [8]byte // 1 as a uint64: what Wake adds to the counter
	kernel  atomic.Bool
	c       chan struct{}
	done    chan struct{}
	once    sync.Once
	stopped atomic.Bool
}

// NewWaker returns a Waker waiting on a channel; Close frees it.
func NewWaker() (*Waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rt: eventfd: %w", err)
	}
	w := &Waker{fd: fd, c: make(chan struct{}, 1), done: make(chan struct{})}
	binary.NativeEndian.PutUint64(w.one[:], 1)
	return w, nil
}

// Kernel makes Wait block in the kernel (on), for a waiter on a thread
// from Lock, or on a channel. The next Wait returns at once, so that no
// wake is lost in the change.
func (w *Waker) Kernel(on bool) {
	w.kernel.Store(on)
	w.Wake()
}

// Wake wakes Wait, or makes its next call return at once: wakes that come
// before Wait runs count as one. It neither blocks nor allocates, for the
// audio thread.
func (w *Waker) Wake() {
	if w.kernel.Load() {
		unix.Write(w.fd, w.one[:]) // fails only if the counter would pass 2⁶⁴−2
		return
	}
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Wait blocks until Wake or Stop, and reports false once Stop was called.
func (w *Waker) Wait() bool {
	if !w.kernel.Load() {
		select {
		case <-w.c:
			return !w.stopped.Load()
		case <-w.done:
			return false
		}
	}
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
	w.once.Do(func() { close(w.done) })
	unix.Write(w.fd, w.one[:])
}

// Close frees the eventfd. Call it once the waiting goroutine has
// returned and nothing can call Wake any more.
func (w *Waker) Close() error { return unix.Close(w.fd) }
