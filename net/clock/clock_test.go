package clock

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// simulate runs pings every 100 ms for seconds, with the host's clock
// offset0 ahead of the guest's and running ppm faster, over a path with
// base one-way delay and exponential jitter of the given means each way.
// It returns the estimator and the true offset at the last sample.
func simulate(t *testing.T, seed uint64, offset0 time.Duration, ppm float64, base, jitterOut, jitterBack time.Duration, seconds int) (*Estimator, time.Duration) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	host := func(trueNs float64) int64 { return int64(trueNs*(1+ppm*1e-6)) + int64(offset0) }
	guest := func(trueNs float64) int64 { return int64(trueNs) }
	jitter := func(mean time.Duration) float64 {
		if mean == 0 {
			return 0
		}
		return rng.ExpFloat64() * float64(mean)
	}
	e := New(300)
	var last float64
	for i := range seconds * 10 {
		send := float64(i) * 100e6
		arrive := send + float64(base) + jitter(jitterOut)
		answer := arrive + 20e3 // the host takes 20 µs to answer
		back := answer + float64(base) + jitter(jitterBack)
		s := Sample{T1: guest(send), T2: host(arrive), T3: host(answer), T4: guest(back)}
		if err := e.Add(s); err != nil {
			t.Fatal(err)
		}
		last = back
	}
	truth := time.Duration(host(last) - guest(last))
	return e, truth
}

func TestOffsetAndDrift(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                  string
		offset                time.Duration
		ppm                   float64
		base, jitOut, jitBack time.Duration
		maxErr                time.Duration // DESIGN.md's target: 0.5 ms with asymmetric jitter
		maxDriftErr           float64       // ppm
	}{
		{"LAN", 3 * time.Second, 0, 200 * time.Microsecond, 50 * time.Microsecond, 50 * time.Microsecond, 50 * time.Microsecond, 5},
		{"asymmetric jitter", -12 * time.Second, 100, 20 * time.Millisecond, 10 * time.Millisecond, time.Millisecond, 500 * time.Microsecond, 30},
		{"bad mobile", time.Hour, -150, 60 * time.Millisecond, 30 * time.Millisecond, 30 * time.Millisecond, 3 * time.Millisecond, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var worst time.Duration
			for seed := range uint64(10) {
				e, truth := simulate(t, seed, tc.offset, tc.ppm, tc.base, tc.jitOut, tc.jitBack, 60)
				est, err := e.Estimate()
				if err != nil {
					t.Fatal(err)
				}
				errOff := est.Offset - truth
				worst = max(worst, errOff.Abs())
				if errOff.Abs() > tc.maxErr {
					t.Errorf("seed %d: offset error %v, want ≤ %v", seed, errOff, tc.maxErr)
				}
				if math.Abs(est.DriftPPM-tc.ppm) > tc.maxDriftErr {
					t.Errorf("seed %d: drift %.1f ppm, want %v ± %v", seed, est.DriftPPM, tc.ppm, tc.maxDriftErr)
				}
				if est.RTT < 2*tc.base {
					t.Errorf("seed %d: RTT %v below the path's %v", seed, est.RTT, 2*tc.base)
				}
			}
			t.Logf("worst offset error over 10 runs: %v", worst)
		})
	}
}

// TestJitteryPaths holds the estimator near DESIGN.md's target, 0.5 ms,
// after 10 s of pings on jittery paths (exponential jitter like
// net/impair's, each way drawn apart), with the host's clock ±100 ppm off:
// on symmetric paths, and on one whose jitter is nearly all one way (the
// floors of the two directions are read apart, so it must not bias the
// offset). A path slower one way shows half the difference as offset: the
// bias is asserted too, so a change that hides it shows. The mean |error|
// must meet the target; single runs may miss it by the margins below
// (the 10 s window's drift is uncertain by tens of ppm on 10 ms jitter),
// which the previous estimator (a line through the fastest eighth by
// round trip) exceeded several times over.
func TestJitteryPaths(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name          string
		base          time.Duration
		jitOut, jitBk time.Duration
		seconds       int
		bias          time.Duration // expected mean error
		maxErr        time.Duration // around the bias, every seed
		meanAbs       time.Duration // mean |error| over the seeds
	}{
		{"cable 10+2", 10 * ms, 2 * ms, 2 * ms, 10, 0, 250 * time.Microsecond, 100 * time.Microsecond},
		{"continent 40+10", 40 * ms, 10 * ms, 10 * ms, 10, 0, time.Millisecond, 500 * time.Microsecond},
		{"continent 40+10 at 5 s", 40 * ms, 10 * ms, 10 * ms, 5, 0, 1500 * time.Microsecond, 500 * time.Microsecond},
		{"mobile 60+30", 60 * ms, 30 * ms, 30 * ms, 10, 0, 1500 * time.Microsecond, time.Millisecond},
		{"jitter one way 10/1", 40 * ms, 10 * ms, ms, 10, 0, 750 * time.Microsecond, 500 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var worst, sum, sumAbs time.Duration
			n := 0
			for seed := range uint64(10) {
				for _, ppm := range []float64{100, -100} {
					e, truth := simulate(t, seed+100, 5*time.Second, ppm, tc.base, tc.jitOut, tc.jitBk, tc.seconds)
					est, err := e.Estimate()
					if err != nil {
						t.Fatal(err)
					}
					errOff := est.Offset - truth
					sum += errOff
					sumAbs += (errOff - tc.bias).Abs()
					n++
					worst = max(worst, (errOff - tc.bias).Abs())
					if (errOff - tc.bias).Abs() > tc.maxErr {
						t.Errorf("seed %d, %+.0f ppm: offset error %v, want %v ± %v (uncertainty %v)", seed, ppm, errOff, tc.bias, tc.maxErr, est.Uncertainty)
					}
					if math.Abs(est.DriftPPM) > MaxDriftPPM {
						t.Errorf("seed %d: drift %.0f ppm beyond ±%d", seed, est.DriftPPM, MaxDriftPPM)
					}
				}
			}
			t.Logf("worst error %v, mean %v, mean |error| %v over %d runs", worst, sum/time.Duration(n), sumAbs/time.Duration(n), n)
			if m := sumAbs / time.Duration(n); m > tc.meanAbs {
				t.Errorf("mean |error| %v, want ≤ %v", m, tc.meanAbs)
			}
		})
	}
}

// TestAsymmetricPathBias: 10 ms one way and 30 ms the other (2 ms jitter
// each) between clocks that agree shows as −10 ms of offset, whatever the
// drift; the estimator reads it no worse than a symmetric path.
func TestAsymmetricPathBias(t *testing.T) {
	t.Parallel()
	for seed := range uint64(5) {
		e := New(300)
		rng := rand.New(rand.NewPCG(seed, 7))
		for i := range 200 {
			send := int64(i) * 100e6
			arrive := send + 10e6 + int64(rng.ExpFloat64()*2e6)
			back := arrive + 30e6 + int64(rng.ExpFloat64()*2e6)
			if err := e.Add(Sample{T1: send, T2: arrive, T3: arrive, T4: back}); err != nil {
				t.Fatal(err)
			}
		}
		est, _ := e.Estimate()
		if d := est.Offset + 10*time.Millisecond; d.Abs() > 100*time.Microsecond {
			t.Errorf("seed %d: offset %v over a 10/30 ms path, want −10 ms ± 0.1", seed, est.Offset)
		}
	}
}

// TestDrift: the drift is read once the window spans MinDriftSpan, stays
// zero before, and is clamped to ±MaxDriftPPM.
func TestDrift(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		ppm     float64
		seconds int
		want    float64
		tol     float64
	}{
		{"short window", 100, 3, 0, 0},
		{"+100 ppm", 100, 30, 100, 10},
		{"-100 ppm", -100, 30, -100, 10},
		{"implausible", 3000, 30, MaxDriftPPM, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := simulate(t, 3, 0, tc.ppm, 10*time.Millisecond, time.Millisecond, time.Millisecond, tc.seconds)
			est, err := e.Estimate()
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(est.DriftPPM-tc.want) > tc.tol {
				t.Errorf("drift %.2f ppm, want %v ± %v", est.DriftPPM, tc.want, tc.tol)
			}
		})
	}
}

// TestAsymmetryShowsAsOffset documents the limit: a path slower one way
// than the other shifts the estimate by half the difference.
func TestAsymmetryShowsAsOffset(t *testing.T) {
	t.Parallel()
	e := New(16)
	for i := range 16 {
		send := int64(i) * 100e6
		e.Add(Sample{T1: send, T2: send + 25e6, T3: send + 25e6, T4: send + 25e6 + 1e6})
	}
	est, _ := e.Estimate()
	if d := est.Offset - 12*time.Millisecond; d.Abs() > 10*time.Microsecond {
		t.Fatalf("offset %v between identical clocks over a 25/1 ms path, want 12 ms (half the asymmetry)", est.Offset)
	}
}

func TestBadSamples(t *testing.T) {
	t.Parallel()
	e := New(8)
	if _, err := e.Estimate(); !errors.Is(err, ErrNoSamples) {
		t.Fatalf("empty estimator: %v", err)
	}
	for _, s := range []Sample{
		{T1: 10, T2: 5, T3: 4, T4: 20},  // host answered before it received
		{T1: 10, T2: 5, T3: 6, T4: 9},   // came back before it left
		{T1: 0, T2: 0, T3: 100, T4: 50}, // host held it longer than the round trip
	} {
		if err := e.Add(s); !errors.Is(err, ErrBadSample) {
			t.Errorf("Add(%+v) = %v, want ErrBadSample", s, err)
		}
	}
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	t1, err := ParsePing(AppendPing(nil, -42))
	if err != nil || t1 != -42 {
		t.Fatalf("ping round trip: %d, %v", t1, err)
	}
	a, b, c, err := ParsePong(AppendPong(nil, 1, math.MaxInt64, math.MinInt64))
	if err != nil || a != 1 || b != math.MaxInt64 || c != math.MinInt64 {
		t.Fatalf("pong round trip: %d %d %d, %v", a, b, c, err)
	}
	for _, bad := range [][]byte{nil, {1}, AppendPong(nil, 1, 2, 3)[:PongSize-1], append(AppendPing(nil, 1), 0)} {
		if _, err := ParsePing(bad); err == nil {
			t.Errorf("ParsePing(%x) succeeded", bad)
		}
		if _, _, _, err := ParsePong(bad); err == nil {
			t.Errorf("ParsePong(%x) succeeded", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(AppendPing(nil, 5))
	f.Add(AppendPong(nil, 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		if t1, err := ParsePing(b); err == nil {
			if got := AppendPing(nil, t1); string(got) != string(b) {
				t.Fatalf("ping %x re-encodes as %x", b, got)
			}
		}
		if t1, t2, t3, err := ParsePong(b); err == nil {
			if got := AppendPong(nil, t1, t2, t3); string(got) != string(b) {
				t.Fatalf("pong %x re-encodes as %x", b, got)
			}
		}
	})
}
