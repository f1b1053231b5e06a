//go:build !linux

package rt

import "sync"

// A Waker wakes one goroutine blocked in Wait, from any thread. Where
// real-time threads are not supported it is a channel. See the Linux
// version.
type Waker struct {
	c    chan struct{}
	done chan struct{}
	once sync.Once
}

// NewWaker returns a Waker; Close frees it.
func NewWaker() (*Waker, error) {
	return &Waker{c: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Kernel does nothing here.
func (w *Waker) Kernel(on bool) {}

// Wake wakes Wait, or makes its next call return at once. It neither
// blocks nor allocates.
func (w *Waker) Wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Wait blocks until Wake or Stop, and reports false once Stop was called.
func (w *Waker) Wait() bool {
	select {
	case <-w.done:
		return false
	default:
	}
	select {
	case <-w.c:
		return true
	case <-w.done:
		return false
	}
}

// Stop makes Wait return false, now and from then on.
func (w *Waker) Stop() { w.once.Do(func() { close(w.done) }) }

// Close does nothing here.
func (w *Waker) Close() error { return nil }
