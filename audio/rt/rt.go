// Package rt runs a goroutine on a real-time OS thread, so that the
// scheduler's stalls of ordinary threads (1–3 ms about once a second on a
// busy or virtual machine) do not delay it: the encoder that sends each
// device block as it comes must run within one device period.
//
// Lock pins the calling goroutine to its thread (runtime.LockOSThread) and
// raises the thread to SCHED_FIFO (Linux; sched_setattr through
// golang.org/x/sys/unix). The unlock func it returns puts the thread back
// as it was and unpins it; the same goroutine must call it before it ends.
// A thread that cannot be put back stays pinned, and ends with its
// goroutine rather than return to Go's pool at real-time priority.
//
// The encoder is woken by the audio thread through a Go channel. An eventfd
// waited in by the real-time thread woke it sooner in a benchmark, but in
// the JACK lab (go run ./cmd/duetlab jack) the voice then came late 94–126
// times a minute against 0–10 through the channel, so the channel stays.
// The peer's voice reader stays on an ordinary thread: pion's ordinary
// goroutines wake it, and locking it made it later, not sooner. The voice
// that comes late on a clean path comes late there, between the partner's
// send and the socket's reader waking (an ordinary thread here wakes over
// 0.5 ms late 3 times a second, a SCHED_FIFO one once in 20 s); reading
// the socket on a real-time thread moved the wait to pion's hand-offs
// behind it, which need ordinary threads. Only a voice path that reads,
// decrypts and queues on the one real-time thread would go round it. One
// was built (commit 6c14369 and after, reverted in 4a4e7cc): it halved
// the dropouts at period 64 in the JACK lab, but a goroutine waiting in
// poll(2) on a real-time thread now and then livelocked two duet
// processes on two cores with Go's runtime for a second, till the
// kernel's real-time throttling ended it. Such a thread must wait outside
// Go (a C thread, as the device's callback does) or never leave Go's
// scheduler in a system call.
//
// Where raising is not permitted (no CAP_SYS_NICE, no RLIMIT_RTPRIO; other
// systems), Lock returns the reason and the goroutine runs as before. A
// Raiser does the same for its owner's goroutines and logs the first
// failure once.
//
// Priorities are SCHED_FIFO's, 1…99: Duet's threads run at Priority, above
// every ordinary thread and below the audio servers' (JACK's clients run at
// its priority less a few, PipeWire's at 20 and up) and the audio
// callback's, which they must never delay.
package rt

import (
	"errors"
	"log/slog"
	"sync"
)

// Priority is the SCHED_FIFO priority Duet's own threads run at.
const Priority = 2

// ErrNotPermitted reports that the system refused real-time scheduling.
var ErrNotPermitted = errors.New("rt: real-time scheduling not permitted")

// Raiser raises its owner's goroutines to real-time threads at one
// priority, and logs the first failure (later ones are alike). Safe for
// concurrent use; a nil Raiser raises nothing.
type Raiser struct {
	priority int
	log      *slog.Logger
	once     sync.Once
}

// New returns a Raiser at priority (1…99) that logs to log (nil: nowhere).
func New(priority int, log *slog.Logger) *Raiser {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Raiser{priority: priority, log: log}
}

// Raise is Lock at the Raiser's priority, for the calling goroutine; the
// func it returns undoes it and must be called by the same goroutine. On
// failure the goroutine runs as before, and ok is false.
func (r *Raiser) Raise(name string) (unlock func(), ok bool) {
	if r == nil {
		return func() {}, false
	}
	unlock, err := Lock(r.priority)
	if err != nil {
		r.once.Do(func() {
			r.log.Info("real-time threads unavailable; sending may stall with the system",
				"thread", name, "err", err)
		})
		return func() {}, false
	}
	return unlock, true
}
