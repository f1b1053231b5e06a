package impair

import (
	"encoding/binary"
	"math"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder is the far end: it notes when each packet arrives, and
// signals arrived after each one.
type recorder struct {
	net.PacketConn // nil: only WriteTo and Close are used
	mu             sync.Mutex
	got            []arrival
	arrived        chan struct{}
}

type arrival struct {
	seq int
	at  time.Time
}

func (r *recorder) WriteTo(b []byte, _ net.Addr) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, arrival{int(binary.BigEndian.Uint32(b)), time.Now()})
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) Close() error { return nil }

// run sends n packets of size bytes every interval through a Conn with
// profile p, in fake time (the sends are paced on the bubble's clock), waits
// for every copy the Conn's stats say it let through, and returns the
// arrivals and the send times.
func run(t *testing.T, p Profile, n, size int, interval time.Duration) ([]arrival, []time.Time, Stats) {
	var got []arrival
	var sent []time.Time
	var st Stats
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{arrived: make(chan struct{}, 1)}
		c := New(rec, p)
		defer c.Close()
		buf := make([]byte, size)
		for i := range n {
			binary.BigEndian.PutUint32(buf, uint32(i))
			sent = append(sent, time.Now())
			c.WriteTo(buf, nil)
			time.Sleep(interval)
		}
		st = c.Stats()
		want := st.Sent - st.Lost - st.RateDropped + st.Duplicated // a duplicate is 2 copies
		deadline := time.After(time.Minute)                        // fake time: far beyond any profile's delay
		for rec.count() < want {
			select {
			case <-rec.arrived:
			case <-deadline:
				t.Fatalf("%d of %d packets delivered a minute after the last send", rec.count(), want)
			}
		}
		synctest.Wait() // the delivery goroutine is idle again
		if rec.count() != want {
			t.Errorf("%d packets delivered, the stats let %d through", rec.count(), want)
		}
		got = rec.got
	})
	return got, sent, st
}

func TestDelayAndJitter(t *testing.T) {
	t.Parallel()
	p := Profile{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 1}
	got, sent, _ := run(t, p, 2000, 100, 5*time.Millisecond)
	if len(got) != 2000 {
		t.Fatalf("%d of 2000 arrived with no loss configured", len(got))
	}
	var sum, minD time.Duration = 0, time.Hour
	for i, a := range got {
		if a.seq != i {
			t.Fatalf("packet %d arrived in place %d: reordered without Reorder", a.seq, i)
		}
		d := a.at.Sub(sent[a.seq])
		sum += d
		minD = min(minD, d)
	}
	mean := sum / time.Duration(len(got))
	t.Logf("delay min %v mean %v", minD, mean)
	if minD < p.Delay {
		t.Errorf("a packet arrived after %v, before the base delay %v", minD, p.Delay)
	}
	// In order, bunched jitter raises the mean a little above delay+jitter.
	if mean < p.Delay+p.Jitter*8/10 || mean > p.Delay+p.Jitter*2 {
		t.Errorf("mean delay %v, want about %v", mean, p.Delay+p.Jitter)
	}
}

func TestReorder(t *testing.T) {
	t.Parallel()
	p := Profile{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: true, Seed: 2}
	got, _, _ := run(t, p, 500, 100, time.Millisecond)
	late := 0
	for i := 1; i < len(got); i++ {
		if got[i].seq < got[i-1].seq {
			late++
		}
	}
	if late == 0 {
		t.Fatal("no packet overtaken with Reorder and jitter ten times the spacing")
	}
}

func TestBurstyLoss(t *testing.T) {
	t.Parallel()
	p := Profile{Loss: Bursty(0.05, 4), Seed: 3}
	got, _, st := run(t, p, 20000, 50, time.Millisecond)
	lost := 20000 - len(got)
	rate := float64(lost) / 20000
	// Mean length of runs of consecutive losses.
	arrived := make([]bool, 20000)
	for _, a := range got {
		arrived[a.seq] = true
	}
	runs, inRun := 0, false
	for _, ok := range arrived {
		if !ok && !inRun {
			runs++
		}
		inRun = !ok
	}
	meanRun := float64(lost) / math.Max(1, float64(runs))
	t.Logf("loss %.3f in runs of %.2f on average (stats %+v)", rate, meanRun, st)
	if rate < 0.035 || rate > 0.065 {
		t.Errorf("loss %.3f, want 0.05 ± 0.015", rate)
	}
	if meanRun < 1.4 {
		t.Errorf("losses come in runs of %.2f, want bursts (> 1.4)", meanRun)
	}
	if st.Lost != lost {
		t.Errorf("Stats.Lost %d, counted %d", st.Lost, lost)
	}
	// Same seed, same losses.
	again, _, _ := run(t, p, 20000, 50, time.Millisecond)
	if len(again) != len(got) {
		t.Errorf("same seed lost %d then %d", 20000-len(got), 20000-len(again))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// 1000-byte packets every 10 ms is 800 kbps into a 300 kbps link.
	p := Profile{RateBps: 300_000, Seed: 4}
	got, sent, st := run(t, p, 500, 1000, 10*time.Millisecond)
	span := got[len(got)-1].at.Sub(got[0].at)
	rate := float64(len(got)-1) * 8000 / span.Seconds()
	t.Logf("delivered %d of %d at %.0f bps; %+v", len(got), len(sent), rate, st)
	if rate > 310_000 || rate < 280_000 {
		t.Errorf("delivered at %.0f bps through a 300 kbps limit", rate)
	}
	if st.RateDropped == 0 {
		t.Error("nothing dropped though the link was offered 2.7 times its rate")
	}
}

func TestDuplicate(t *testing.T) {
	t.Parallel()
	got, _, st := run(t, Profile{Duplicate: 0.1, Seed: 5}, 1000, 50, time.Millisecond)
	if extra := len(got) - 1000; extra < 60 || extra > 140 || extra != st.Duplicated {
		t.Errorf("%d duplicates of 1000 (stats %d), want about 100", extra, st.Duplicated)
	}
}

func TestBursty(t *testing.T) {
	t.Parallel()
	g := Bursty(0.05, 4)
	mean := g.PBad * g.LossBad / (g.PBad + g.PGood)
	if math.Abs(mean-0.05) > 1e-9 {
		t.Fatalf("Bursty(0.05, 4) has mean loss %v", mean)
	}
	if (Bursty(0, 4) != GilbertElliott{}) {
		t.Fatal("Bursty(0) is not lossless")
	}
}

// TestObserve: a Conn tells Observe of every packet written, with its
// fate, and a full bottleneck's waits show there.
func TestObserve(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen, dropped := 0, 0
	var worst time.Duration
	p := Profile{RateBps: 200_000, QueueBytes: 2000, Seed: 6, Observe: func(_ []byte, f Fate) {
		mu.Lock()
		defer mu.Unlock()
		seen++
		if f.RateDropped {
			dropped++
		}
		worst = max(worst, f.Queued)
	}}
	_, _, st := run(t, p, 400, 250, 5*time.Millisecond) // 400 kbit/s
	mu.Lock()
	defer mu.Unlock()
	t.Logf("observed %d, dropped %d, longest wait %v; %+v", seen, dropped, worst, st)
	if seen != st.Sent || dropped != st.RateDropped || dropped == 0 {
		t.Errorf("observed %d packets (%d dropped), the stats say %+v", seen, dropped, st)
	}
	if worst < 60*time.Millisecond || worst > 80*time.Millisecond {
		t.Errorf("longest wait %v, want up to 80 ms (2000 bytes at 200 kbit/s)", worst)
	}
}
