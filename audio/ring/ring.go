// Package ring provides a lock-free single-producer single-consumer ring
// buffer, the way Duet's audio thread exchanges samples and packets with the
// rest of the program without blocking.
//
// Exactly one goroutine may call Write and exactly one may call Read; Len and
// Cap are safe from any goroutine. Neither side allocates or blocks: when the
// ring is full Write stores what fits and reports how much, and the caller
// decides what to drop.
package ring

import "sync/atomic"

// Ring is a fixed-capacity FIFO of T.
type Ring[T any] struct {
	buf  []T
	mask uint64
	// read and written count items ever consumed and produced; their
	// difference is the fill level. uint64 never wraps in practice.
	read    atomic.Uint64
	written atomic.Uint64
}

// New returns a ring holding at least capacity items (rounded up to a power
// of two).
func New[T any](capacity int) *Ring[T] {
	n := 1
	for n < capacity {
		n <<= 1
	}
	return &Ring[T]{buf: make([]T, n), mask: uint64(n - 1)}
}

// Cap returns how many items the ring holds when full.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Len returns how many items are waiting to be read.
func (r *Ring[T]) Len() int {
	return int(r.written.Load() - r.read.Load())
}

// Write appends as many items of p as fit and returns how many it stored.
// Producer only.
func (r *Ring[T]) Write(p []T) int {
	w := r.written.Load()
	free := uint64(len(r.buf)) - (w - r.read.Load())
	n := min(uint64(len(p)), free)
	for i := uint64(0); i < n; {
		at := (w + i) & r.mask
		i += uint64(copy(r.buf[at:], p[i:n]))
	}
	r.written.Store(w + n)
	return int(n)
}

// Read moves up to len(p) items into p and returns how many. Consumer only.
func (r *Ring[T]) Read(p []T) int {
	rd := r.read.Load()
	avail := r.written.Load() - rd
	n := min(uint64(len(p)), avail)
	for i := uint64(0); i < n; {
		at := (rd + i) & r.mask
		i += uint64(copy(p[i:n], r.buf[at:]))
	}
	r.read.Store(rd + n)
	return int(n)
}
