package rt

import (
	"runtime"
	"sync"
	"testing"
)

// TestAddProc: each AddProc adds one P and its func takes that one back,
// once, however many run at once.
func TestAddProc(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	removes := make([]func(), 8)
	for i := range removes {
		wg.Go(func() { removes[i] = AddProc() })
	}
	wg.Wait()
	if got := runtime.GOMAXPROCS(0); got != before+8 {
		t.Fatalf("GOMAXPROCS %d after 8 AddProcs from %d", got, before)
	}
	for _, r := range removes {
		wg.Go(func() { r(); r() })
	}
	wg.Wait()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Fatalf("GOMAXPROCS %d after taking them back, want %d", got, before)
	}
}
