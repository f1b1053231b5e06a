package mix

import "testing"

type constant float32

func (c constant) Read(out []float32) {
	for i := range out {
		out[i] = float32(c)
	}
}

// counting records how many samples it was asked for.
type counting struct{ n int }

func (c *counting) Read(out []float32) {
	c.n += len(out)
	clear(out)
}

func TestMix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		build func(m *Mixer)
		want  float32
	}{
		{"empty is silence", func(m *Mixer) {}, 0},
		{"unity", func(m *Mixer) { m.Add(constant(0.25), 1) }, 0.25},
		{"sum with gains", func(m *Mixer) {
			m.Add(constant(0.5), 0.5)
			m.Add(constant(0.2), 2)
		}, 0.65},
		{"muted left out", func(m *Mixer) {
			m.Add(constant(0.5), 1).SetMuted(true)
			m.Add(constant(0.1), 1)
		}, 0.1},
		{"gain changed", func(m *Mixer) { m.Add(constant(0.5), 1).SetGain(0.2) }, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(64)
			tc.build(m)
			out := []float32{9, 9, 9, 9}
			m.Read(out)
			for i, v := range out {
				if d := v - tc.want; d > 1e-6 || d < -1e-6 {
					t.Fatalf("out[%d] = %v, want %v", i, v, tc.want)
				}
			}
		})
	}
}

func TestMutedSourceKeepsTime(t *testing.T) {
	t.Parallel()
	m := New(64)
	c := &counting{}
	m.Add(c, 0)
	m.Read(make([]float32, 32))
	if c.n != 32 {
		t.Fatalf("muted source read %d samples, want 32", c.n)
	}
}

func TestLive(t *testing.T) {
	t.Parallel()
	var l Live
	m := New(8)
	m.Add(&l, 1)
	out := make([]float32, 4)
	l.Set([]float32{1, 2, 3, 4})
	m.Read(out)
	if out[3] != 4 {
		t.Fatalf("live block not mixed: %v", out)
	}
	l.Set([]float32{5})
	m.Read(out)
	if out[0] != 5 || out[1] != 0 {
		t.Fatalf("short live block not zero-padded: %v", out)
	}
}

func BenchmarkMixTwo128(b *testing.B) {
	m := New(128)
	m.Add(constant(0.1), 1)
	m.Add(constant(0.2), 0.5)
	out := make([]float32, 128)
	b.ReportAllocs()
	for b.Loop() {
		m.Read(out)
	}
}
