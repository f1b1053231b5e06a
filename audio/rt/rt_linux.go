package rt

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Lock pins the calling goroutine to its OS thread and raises the thread
// to SCHED_FIFO at priority (1…99), not inherited by processes it starts.
// The returned func restores the thread and unpins it; call it from the
// same goroutine. On error nothing has changed.
func Lock(priority int) (unlock func(), err error) {
	if priority < 1 || priority > 99 {
		return nil, fmt.Errorf("rt: priority %d, want 1…99", priority)
	}
	runtime.LockOSThread()
	was, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("rt: %w", err)
	}
	attr := unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   unix.SCHED_FIFO,
		Flags:    unix.SCHED_FLAG_RESET_ON_FORK,
		Priority: uint32(priority),
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		runtime.UnlockOSThread()
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("%w: %w", ErrNotPermitted, err)
		}
		return nil, fmt.Errorf("rt: %w", err)
	}
	return func() {
		was.Size = unix.SizeofSchedAttr
		if unix.SchedSetAttr(0, was, 0) != nil {
			// Still real-time: keep it pinned, so it ends with the
			// goroutine instead of running others at this priority.
			return
		}
		runtime.UnlockOSThread()
	}, nil
}

// policy returns the calling thread's scheduling policy and priority, for
// tests.
func policy() (policy, priority int, err error) {
	a, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return 0, 0, err
	}
	return int(a.Policy), int(a.Priority), nil
}
