package congestion

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

const (
	full  = 300_000 // what the sender's best costs, bits per second
	floor = 48_000
)

// link simulates a sender at the controller's budget (or full, with
// none) through a drop-tail bottleneck of rate bits per second and a
// queue of maxQueue, one report every every (a second if 0), the round
// trip base plus the queue: a report of what that time at that budget
// does.
type link struct {
	rate     int
	maxQueue time.Duration
	base     time.Duration
	every    time.Duration
	queue    time.Duration // the queue's wait at the report
	at       time.Time
}

func (l *link) interval() time.Duration {
	if l.every == 0 {
		return time.Second
	}
	return l.every
}

func (l *link) report(budget int) Report {
	send := budget
	if send == 0 {
		send = full
	}
	l.at = l.at.Add(l.interval())
	r := Report{At: l.at, Sent: send, Received: send}
	if l.rate > 0 {
		// The queue grows by what the link cannot carry, up to its size;
		// the rest is dropped.
		grow := time.Duration(float64(send-l.rate) / float64(l.rate) * float64(l.interval()))
		l.queue = max(0, l.queue+grow)
		if l.queue > l.maxQueue {
			over := l.queue - l.maxQueue
			l.queue = l.maxQueue
			lost := over.Seconds() * float64(l.rate) // bits
			r.FractionLost = lost / (float64(send) * l.interval().Seconds())
			r.Received = l.rate
		}
	} else {
		l.queue = 0
	}
	r.RTT = l.base + l.queue
	return r
}

// TestBottleneck: a path whose queue drops half of what full quality
// sends from the first report. The budget goes under the link's rate
// within 5 s (or a probe just over it) and the queue empties; it stays
// under, probing now and then;
// when the link widens the limit ends within 15 s. Reports a second apart
// (RTCP's usual) and 250 ms apart (Duet's) alike.
func TestBottleneck(t *testing.T) {
	for _, every := range []time.Duration{time.Second, 250 * time.Millisecond} {
		t.Run(every.String(), func(t *testing.T) { testBottleneck(t, every) })
	}
}

func testBottleneck(t *testing.T, every time.Duration) {
	l := &link{rate: 120_000, maxQueue: 80 * time.Millisecond, base: 60 * time.Millisecond, every: every, at: time.Unix(1000, 0)}
	perSecond := int(time.Second / every)
	c := New(floor)
	var st State
	for i := range 5 * perSecond {
		st = c.Update(l.report(st.Budget), full)
		t.Logf("report %d: %+v, queue %v", i+1, st, l.queue)
		if i == 0 && !st.Congested {
			t.Fatalf("half the packets lost: not congested")
		}
	}
	if st.Budget == 0 || st.Budget > l.rate*105/100 || l.queue > 30*time.Millisecond {
		t.Fatalf("after 5 s the budget is %d (the link's rate %d; a probe goes 3 %% over it), %v queued", st.Budget, l.rate, l.queue)
	}
	// 30 s under the limit: mostly under it, the queue mostly empty.
	queued, probes := 0, 0
	for range 30 * perSecond {
		st = c.Update(l.report(st.Budget), full)
		if st.Budget == 0 || st.Budget < floor {
			t.Fatalf("budget %d under a 120 kbit/s link", st.Budget)
		}
		if st.Budget > l.rate {
			probes++
		}
		if l.queue > 30*time.Millisecond {
			queued++
		}
	}
	t.Logf("30 s under the limit: %d reports of %d probed above it, %d with over 30 ms queued; budget %d", probes, 30*perSecond, queued, st.Budget)
	if probes == 0 || probes > 10*perSecond {
		t.Errorf("%d reports of %d probed above the link", probes, 30*perSecond)
	}
	if queued > 3*perSecond {
		t.Errorf("%d reports of %d with over 30 ms queued", queued, 30*perSecond)
	}
	// The link widens: no limit within 15 s.
	l.rate = 0
	for i := range 15 * perSecond {
		if st = c.Update(l.report(st.Budget), full); st.Budget == 0 {
			t.Logf("no limit %v after the link widened", time.Duration(i+1)*every)
			return
		}
	}
	t.Errorf("15 s after the link widened the budget is still %d", st.Budget)
}

// TestRandomLoss: 3 % uniform loss and a jittery round trip with no
// queue is never congestion, and never limits the budget.
func TestRandomLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := New(floor)
	at := time.Unix(1000, 0)
	for i := range 300 {
		at = at.Add(time.Second)
		// 200 packets, each lost at 3 %; 80 ms each way with an
		// exponential 10 ms of jitter each way.
		lost := 0
		for range 200 {
			if rng.Float64() < 0.03 {
				lost++
			}
		}
		rtt := 80*time.Millisecond + time.Duration((rng.ExpFloat64()+rng.ExpFloat64())*float64(10*time.Millisecond))
		r := Report{At: at, RTT: rtt, FractionLost: float64(lost) / 200, Sent: full, Received: full * (200 - lost) / 200}
		if st := c.Update(r, full); st.Congested || st.Budget != 0 {
			t.Fatalf("report %d (%+v): %+v", i+1, r, st)
		}
	}
}

// TestDelayAlone: a queue that stays, with no loss yet but the partner
// receiving less than we send, is congestion within three reports; one
// late report is not; and a queue with the partner receiving all we send
// is the other direction's: the budget holds.
func TestDelayAlone(t *testing.T) {
	c := New(floor)
	at := time.Unix(1000, 0)
	step := func(rtt time.Duration, received int) State {
		at = at.Add(time.Second)
		return c.Update(Report{At: at, RTT: rtt, Sent: 200_000, Received: received}, full)
	}
	for range 5 {
		step(50*time.Millisecond, 200_000)
	}
	if st := step(110*time.Millisecond, 180_000); st.Congested {
		t.Fatalf("one report 60 ms late: %+v", st)
	}
	for range 5 {
		if st := step(50*time.Millisecond, 200_000); st.Congested {
			t.Fatalf("back on time: %+v", st)
		}
	}
	congested := func() State {
		for range 3 {
			if st := step(130*time.Millisecond, 180_000); st.Congested {
				return st
			}
		}
		t.Fatal("three reports 80 ms late, 90 % received: not congested")
		return State{}
	}
	if st := congested(); st.Budget == 0 || st.Budget > 180_000 {
		t.Fatalf("congested: %+v", st)
	}
	// The partner's queue: the round trip grows, all we send arrives.
	c = New(floor)
	for range 5 {
		step(50*time.Millisecond, 200_000)
	}
	st := congested()
	for range 6 {
		if next := step(130*time.Millisecond, 200_000); next.Congested || next.Budget != st.Budget {
			t.Fatalf("a queue with all we send received: %+v (was %+v)", next, st)
		}
	}
}

// TestCutsWait: a second cut waits for a report that can show the
// first's effect; the budget never goes under the floor.
func TestCutsWait(t *testing.T) {
	c := New(floor)
	at := time.Unix(1000, 0)
	heavy := func(d time.Duration, sent int) State {
		at = at.Add(d)
		return c.Update(Report{At: at, RTT: 100 * time.Millisecond, FractionLost: 0.5, Sent: sent, Received: sent / 2}, full)
	}
	first := heavy(time.Second, 200_000).Budget
	if first != 60_000 {
		t.Fatalf("half of 200 kbit/s received: budget %d, want 60 %% of 100 kbit/s (the queue full)", first)
	}
	if b := heavy(500*time.Millisecond, 200_000).Budget; b != first {
		t.Fatalf("a report half a second after the cut cut again: %d", b)
	}
	for range 20 {
		heavy(2*time.Second, 100_000)
	}
	if b := heavy(2*time.Second, 100_000).Budget; b != floor {
		t.Fatalf("after 20 more cuts the budget is %d, the floor %d", b, floor)
	}
}

// TestLimitedLoss: on a path found congested, 10 % loss with no delay
// over the least (a queue full since the first report) cuts again; the
// same loss on a path never found congested is random.
func TestLimitedLoss(t *testing.T) {
	at := time.Unix(1000, 0)
	report := func(c *Controller, lost float64, sent int) State {
		at = at.Add(2 * time.Second)
		return c.Update(Report{At: at, RTT: 150 * time.Millisecond, FractionLost: lost, Sent: sent, Received: int(float64(sent) * (1 - lost))}, full)
	}
	c := New(floor)
	first := report(c, 0.5, 250_000).Budget
	if st := report(c, 0.12, first); !st.Congested || st.Budget >= first {
		t.Errorf("12 %% loss under a budget of %d: %+v", first, st)
	}
	if st := report(New(floor), 0.12, 250_000); st.Congested || st.Budget != 0 {
		t.Errorf("12 %% loss on a path never congested: %+v", st)
	}
}

// TestStandingQueue: after a cut, loss that goes on with the round trip
// as high as at the cut means the queue stood from the start (its least
// is no base): cut again. Where the round trip falls after the cut, the
// same loss is random.
func TestStandingQueue(t *testing.T) {
	at := time.Unix(1000, 0)
	report := func(c *Controller, rtt time.Duration, lost float64, sent int) State {
		at = at.Add(time.Second)
		return c.Update(Report{At: at, RTT: rtt, FractionLost: lost, Sent: sent, Received: int(float64(sent) * (1 - lost))}, full)
	}
	for _, drained := range []bool{false, true} {
		c := New(floor)
		st := report(c, 220*time.Millisecond, 0.6, 300_000)
		first := st.Budget
		rtt := 220 * time.Millisecond
		if drained {
			rtt = 80 * time.Millisecond
		}
		for range 4 {
			st = report(c, rtt, 0.04, st.Budget)
		}
		if cut := st.Budget < first; cut == drained {
			t.Errorf("drained %v: budget %d after %d, 4 %% lost", drained, st.Budget, first)
		}
	}
}

// TestAlarmEndsClimb: a 120 kbit/s link widens to 160; a probe finds
// room and the budget climbs past it. Reports come every 250 ms; Update
// takes every fourth (the app's Feedback sums a second of them), Alarm
// the queue of the rest: the climb ends before the queue overflows,
// where with Update alone it fills the queue and drops.
func TestAlarmEndsClimb(t *testing.T) {
	run := func(alarms bool) (worst time.Duration, lost int) {
		l := &link{rate: 120_000, maxQueue: 80 * time.Millisecond, base: 60 * time.Millisecond, every: 250 * time.Millisecond, at: time.Unix(1000, 0)}
		c := New(floor)
		var st State
		for i := range 4 * 60 {
			if i == 4*20 {
				l.rate = 160_000
			}
			r := l.report(st.Budget)
			if i%4 == 3 {
				st = c.Update(r, full)
			} else if alarms {
				st.Budget, _ = c.Alarm(r.At, l.queue, full)
			}
			if i >= 4*20 {
				worst = max(worst, l.queue)
				if r.FractionLost > 0 {
					lost++
				}
			}
		}
		if st.Budget == 0 || st.Budget > 160_000*103/100 { // a probe goes 3 % over
			t.Errorf("alarms %v: the budget ends at %d on a 160 kbit/s link (a probe goes 3 %% over)", alarms, st.Budget)
		}
		return worst, lost
	}
	worst, lost := run(false)
	t.Logf("Update alone: %v queued at worst, %d reports with loss", worst, lost)
	if lost == 0 {
		t.Fatal("Update alone never overflowed the queue: the test tests nothing")
	}
	worst, lost = run(true)
	t.Logf("with alarms: %v queued at worst, %d reports with loss", worst, lost)
	if lost > 0 || worst > 50*time.Millisecond {
		t.Errorf("with alarms: %v queued at worst, %d reports of 160 with loss", worst, lost)
	}
}

// TestAlarmStandingQueue: the link's estimate is a fifth over the link
// (the budget settles over it, with nothing lost: the queue stands, at
// 80 ms); our queue as the partner reports it brings the budget under
// the link within two seconds, where the round trip alone (which holds:
// a queue with nothing lost may be the partner's) leaves it standing.
func TestAlarmStandingQueue(t *testing.T) {
	for _, alarms := range []bool{false, true} {
		l := &link{rate: 120_000, maxQueue: 80 * time.Millisecond, base: 60 * time.Millisecond, every: 250 * time.Millisecond, at: time.Unix(1000, 0)}
		c := New(floor)
		c.link, c.budget = 160_000, 128_000 // settled at 0.8 of 160
		for i := range 4 * 10 {
			r := l.report(c.budget)
			r.FractionLost, r.Received = 0, r.Sent // the queue stands, nothing lost
			if i%4 == 3 {
				c.Update(r, full)
			} else if alarms {
				c.Alarm(r.At, l.queue, full)
			}
		}
		t.Logf("alarms %v: budget %d, %v queued", alarms, c.budget, l.queue)
		if got := c.budget <= l.rate && l.queue < 30*time.Millisecond; got != alarms {
			t.Errorf("alarms %v: after 10 s the budget is %d on a %d bit/s link, %v queued", alarms, c.budget, l.rate, l.queue)
		}
	}
}

// TestProbeRampsByQuarters: a probe begins at a report; the partner then
// reports a little queue (3 ms: neither ending the probe nor ramping it)
// for half a second, then none. The ramp's next step is a quarter second's
// (the partner's reports' spacing), not the three quarters since the
// probe began: those jumped from the settled budget to the probe's top at
// once, 29 % in one step, and filled the queue before the next report
// (duetlab bottleneck: 54 ms queued in one run of ten).
func TestProbeRampsByQuarters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := New(floor)
	c.link = 100_000
	c.budget = c.settled()
	c.probe, c.stepped, c.alarmAt = t0, t0, t0 // Update began the probe; the partner reports our queue
	for i, q := range []time.Duration{3 * time.Millisecond, 3 * time.Millisecond, time.Millisecond} {
		c.Alarm(t0.Add(time.Duration(i+1)*250*time.Millisecond), q, full)
	}
	most := int(math.Ceil(math.Pow(climb, 0.25) * 80_000))
	if c.budget > most {
		t.Errorf("the probe's first step took the budget from 80000 to %d, want at most %d (a quarter second's climb)", c.budget, most)
	}
	if c.budget <= 80_000 {
		t.Errorf("the probe did not ramp: budget %d", c.budget)
	}
}
