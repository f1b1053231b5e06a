package meter

import (
	"math"
	"testing"
)

func TestLevel(t *testing.T) {
	m := New()
	if l := m.Level(); l.Peak != Silent || l.RMS != Silent {
		t.Fatalf("before any audio: %+v, want silence", l)
	}
	block := make([]float32, 480)
	for i := range block {
		block[i] = 0.5 * float32(math.Sin(2*math.Pi*float64(i)/48))
	}
	m.Write(block)
	m.Write(block)
	l := m.Level()
	if math.Abs(l.Peak-(-6.02)) > 0.1 || math.Abs(l.RMS-(-9.03)) > 0.1 {
		t.Fatalf("half-scale sine: %+v, want peak -6.0 and RMS -9.0 dBFS", l)
	}
	if again := m.Level(); again != l {
		t.Fatalf("with nothing new, Level = %+v, want the last %+v", again, l)
	}
	m.Write(make([]float32, 100))
	if l := m.Level(); l.Peak != Silent || l.RMS != Silent {
		t.Fatalf("silence: %+v, want %v", l, Silent)
	}
}

func TestWriteWhenFullDrops(t *testing.T) {
	m := New()
	big := make([]float32, 1<<14)
	for range 10 {
		m.Write(big) // nobody reads: must not block
	}
	m.Level()
}

func BenchmarkWrite128(b *testing.B) {
	m := New()
	block := make([]float32, 128)
	b.ReportAllocs()
	for b.Loop() {
		m.Write(block)
		if m.ring.Len() > 1<<14 {
			m.Level()
		}
	}
}
