package jackprobe

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// dummyServer starts a private JACK server for one test. Without jackd it
// skips, unless DUET_JACK=1 says JACK must be there.
func dummyServer(t *testing.T, period int) string {
	t.Helper()
	if _, err := exec.LookPath("jackd"); err != nil {
		if os.Getenv("DUET_JACK") == "1" {
			t.Fatal("DUET_JACK=1 but no jackd")
		}
		t.Skip("no jackd (install jackd2)")
	}
	name := fmt.Sprintf("jackprobe-test-%d", os.Getpid())
	s, err := StartDummy(t.Context(), ServerConfig{Name: name, Rate: 48000, Period: period})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return name
}

func noise(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]float32, n)
	for i := range p {
		p[i] = float32(r.NormFloat64() * 0.1)
	}
	return p
}

// TestLoopThrough connects the probe's outputs straight to its inputs,
// crossed: JACK moves a sample from one port to another within the cycle,
// so each recording must be the other signal at delay zero, sample for
// sample, and the unconnected input must hear silence.
func TestLoopThrough(t *testing.T) {
	server := dummyServer(t, 64)
	const n = 24000 // 0.5 s
	a, b := noise(n, 1), noise(n, 2)
	p, err := Open(Config{Name: "loop", Server: server, Length: n, Play: [][]float32{a, b}, Record: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got, want := p.Period(), 64; got != want {
		t.Errorf("period %d, want %d", got, want)
	}
	if got := p.PlayPort(1); got != "loop-play:out_1" {
		t.Errorf("PlayPort(1) = %q", got)
	}
	for _, c := range [][2]string{{p.PlayPort(0), p.RecordPort(1)}, {p.PlayPort(1), p.RecordPort(0)}} {
		if err := p.Connect(c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Ports("^loop-rec:"); !slices.Equal(got, []string{"loop-rec:in_0", "loop-rec:in_1", "loop-rec:in_2"}) {
		t.Errorf("Ports = %v", got)
	}
	if got, err := p.Connections(p.RecordPort(1)); err != nil || !slices.Equal(got, []string{"loop-play:out_0"}) {
		t.Errorf("Connections(in_1) = %v, %v", got, err)
	}
	if _, err := p.Connections("nobody:nothing"); !errors.Is(err, ErrPort) {
		t.Errorf("Connections of a missing port: %v, want ErrPort", err)
	}
	p.Start(50 * time.Millisecond)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the recording did not complete within 10 s")
	}
	p.Close()
	r := p.Recording()
	check := func(name string, rec, want []float32) {
		t.Helper()
		present, wrong := 0, 0
		for i := range rec {
			if math.IsNaN(float64(rec[i])) || math.IsNaN(float64(want[i])) {
				continue
			}
			present++
			if rec[i] != want[i] {
				wrong++
			}
		}
		// A missed cycle under load leaves a gap; most must be there.
		if present < n*9/10 || wrong > 0 {
			t.Errorf("%s: %d of %d samples present, %d differ from what was played", name, present, n, wrong)
		}
	}
	check("in_1", r.Recorded[1], r.Played[0])
	check("in_0", r.Recorded[0], r.Played[1])
	silence := make([]float32, n)
	check("in_2 (unconnected)", r.Recorded[2], silence)
	for i, v := range r.Played[0] {
		if !math.IsNaN(float64(v)) && v != a[i] {
			t.Fatalf("played[0][%d] = %v, the signal has %v", i, v, a[i])
		}
	}
}

func TestNoServer(t *testing.T) {
	if _, err := exec.LookPath("jackd"); err != nil {
		t.Skip("no libjack server tools")
	}
	_, err := Open(Config{Name: "none", Server: "jackprobe-no-such-server", Length: 10, Record: 1})
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("Open on a missing server: %v, want ErrNoServer", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "x", Length: 0},
		{Name: "x", Length: 4, Play: [][]float32{make([]float32, 5)}},
		{Name: "x", Length: 4, Record: 9},
	} {
		if _, err := Open(cfg); err == nil {
			t.Errorf("Open(%+v) accepted", cfg)
		}
	}
}
