package ring

import (
	"sync"
	"testing"
)

func TestWriteReadWrapsAround(t *testing.T) {
	t.Parallel()
	r := New[int](5) // rounds up to 8
	if r.Cap() != 8 {
		t.Fatalf("Cap = %d, want 8", r.Cap())
	}
	next, want := 0, 0
	out := make([]int, 3)
	for round := 0; round < 20; round++ {
		in := []int{next, next + 1, next + 2, next + 3, next + 4}
		n := r.Write(in)
		next += n
		got := r.Read(out)
		for _, v := range out[:got] {
			if v != want {
				t.Fatalf("round %d: read %d, want %d", round, v, want)
			}
			want++
		}
	}
	if r.Len() != next-want {
		t.Fatalf("Len = %d, want %d", r.Len(), next-want)
	}
}

func TestWriteStopsWhenFull(t *testing.T) {
	t.Parallel()
	r := New[float32](4)
	if n := r.Write(make([]float32, 6)); n != 4 {
		t.Fatalf("Write into empty ring of 4 stored %d, want 4", n)
	}
	if n := r.Write([]float32{1}); n != 0 {
		t.Fatalf("Write into full ring stored %d, want 0", n)
	}
	if n := r.Read(make([]float32, 10)); n != 4 {
		t.Fatalf("Read = %d, want 4", n)
	}
	if n := r.Read(make([]float32, 10)); n != 0 {
		t.Fatalf("Read from empty ring = %d, want 0", n)
	}
}

// TestConcurrentOrder runs a producer and a consumer at once (meaningful under
// -race) and checks that every item arrives once and in order.
func TestConcurrentOrder(t *testing.T) {
	t.Parallel()
	const total = 200000
	r := New[uint32](64)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]uint32, 7)
		next := uint32(0)
		for next < total {
			for i := range buf {
				buf[i] = next + uint32(i)
			}
			k := min(len(buf), total-int(next))
			next += uint32(r.Write(buf[:k]))
		}
	})
	want := uint32(0)
	buf := make([]uint32, 5)
	for want < total {
		n := r.Read(buf)
		for _, v := range buf[:n] {
			if v != want {
				t.Fatalf("got %d, want %d", v, want)
			}
			want++
		}
	}
	wg.Wait()
}

func BenchmarkWriteRead128(b *testing.B) {
	r := New[float32](1024)
	block := make([]float32, 128)
	b.ReportAllocs()
	for b.Loop() {
		r.Write(block)
		r.Read(block)
	}
}
