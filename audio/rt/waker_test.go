package rt

import (
	"fmt"
	"testing"
)

// TestWaker, waiting on a channel and in the kernel: a wake before Wait is
// kept for it; each wake a waiter acks wakes it once; after Stop, Wait
// reports false however often it is called, even with a wake pending.
func TestWaker(t *testing.T) {
	for _, kernel := range []bool{false, true} {
		t.Run(fmt.Sprint("kernel=", kernel), func(t *testing.T) {
			w, err := NewWaker()
			if err != nil {
				t.Fatal(err)
			}
			w.Kernel(kernel)
			if !w.Wait() { // Kernel's own wake: none is lost in the change
				t.Fatal("Wait after Kernel reported stopped")
			}
			w.Wake()
			if !w.Wait() {
				t.Fatal("Wait after Wake reported stopped")
			}
			acks := make(chan struct{})
			woken := make(chan int)
			go func() {
				n := 0
				for w.Wait() {
					n++
					acks <- struct{}{}
				}
				woken <- n
			}()
			const wakes = 100
			for range wakes {
				w.Wake()
				<-acks
			}
			w.Stop()
			if n := <-woken; n != wakes {
				t.Errorf("woken %d times, want %d", n, wakes)
			}
			w.Wake()
			for range 2 {
				if w.Wait() {
					t.Error("Wait after Stop reported a wake")
				}
			}
			if err := w.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestWakeNoAllocs: the audio thread wakes the encoder every block.
func TestWakeNoAllocs(t *testing.T) {
	for _, kernel := range []bool{false, true} {
		w, err := NewWaker()
		if err != nil {
			t.Fatal(err)
		}
		w.Kernel(kernel)
		if a := testing.AllocsPerRun(100, w.Wake); a != 0 {
			t.Errorf("Wake (kernel %v): %v allocations", kernel, a)
		}
		w.Close()
	}
}
