// Package congestion tells a bottleneck (a queue filling on the path: the
// link's rate exceeded) from random loss, out of the partner's reception
// reports on our voice (every 250 ms to a second), and keeps a budget for
// what we send: bits per second on the wire, headers included.
//
// The signals, per report (Report): the round trip, smoothed, against its
// least of the last half minute (queueing: a queue only adds delay, and
// stays, where jitter comes and goes), taken for our direction's queue
// only with loss or the partner receiving less than we sent (the round
// trip shows both directions' queues); loss too heavy for redundancy to
// be the answer (a drop-tail queue on a link offered twice its rate drops
// half the packets; the lab's random-loss paths lose a few per cent); and
// the rate the partner received against the rate we sent, which behind a
// full queue is the link's. Loss under heavy with no delay growth is random: the budget
// stays, and redundancy (the caller's) covers it; but on a path found
// congested before (a budget in force), loss of limitedLoss is the queue's
// again (a queue full since the start shows no delay over its least), and
// so is loss that goes on while the round trip never falls after a cut:
// the queue stood before the first report.
//
// The answer to congestion is a budget under what the partner received
// (the link's rate, when a queue drops), so the queue drains; further
// cuts wait for a report that reflects the last one. Then the budget
// climbs back to near the link's rate quickly, stays there (probing
// above it now and then, one step, taken back at once if a queue builds),
// and when a probe finds room (the link widened), climbs 1.2 times a
// second to half again the highest estimate yet, then 1.8 times, until it
// reaches the caller's ceiling: no limit; a queue of ours on the way
// (the round trip over its least, the partner short of what we sent) is
// the new link, settled under at once.
//
// Between the reports Update sums (a second of them, for the rates), our
// direction's own standing queue, from the partner's reports of our
// fastest voice packet every 250 ms (OneWay), goes to Alarm: a probe or a
// climb that fills a queue ends at once rather than a second later, when
// the queue has overflowed, and a climb steps on it in quarter seconds.
// A partner that does not report (a browser) leaves Update alone.
//
// Its waits and steps are in time, not reports: the same whether reports
// come a second apart (RTCP's usual) or every 250 ms (Duet's, so that one
// gets through a full queue): counted in reports, 250 ms reports probed
// every second and took half a second of no queue for room, which a probe
// 3 % over the link had not had the time to show, and the budget then
// climbed 1.2 times every 250 ms into the queue. Time is passed in
// (Report.At); a Controller is not safe for concurrent use (the caller's
// one goroutine feeds it).
package congestion

import (
	"math"
	"time"
)

// Report is one reception report's view of our stream.
type Report struct {
	// At is when the report came, on any monotonic clock.
	At time.Time
	// RTT is the round trip the report gave; 0: none yet.
	RTT time.Duration
	// FractionLost is the share of our packets the partner lost over
	// the report's interval, 0…1.
	FractionLost float64
	// Sent is what we sent over the report's interval, and Received
	// what the partner received of it, in bits per second on the wire;
	// 0: not known.
	Sent, Received int
}

// Thresholds. A queue is seen in the round trip, smoothed over about four
// seconds (srttGain a second), over its least of the last baseWindow: the lab's
// jittery paths (10 ms each way, exponential) put a single report 40 ms
// over the least now and then, the smoothed one seldom 20.
const (
	baseWindow = 30 * time.Second
	srttGain   = 0.25
	// queueing is a smoothed round trip this much over its least.
	queueing = 25 * time.Millisecond
	// lossWithDelay is loss that, with a queue, makes it ours; so does
	// the partner receiving under short of what we sent (the rates'
	// intervals differ a little: a few per cent either way).
	lossWithDelay = 0.01
	short         = 0.95
	// queueClear is close enough to the least to climb. A probe ends at
	// a round trip (not smoothed) queueing over the least, or loss.
	queueClear = 15 * time.Millisecond
	// heavyLoss is loss no random path of the lab's comes near in a
	// second, and a queue on a link offered 1.25 times its rate reaches.
	heavyLoss = 0.2
	// drainDrop is how far the round trip falls when a cut drains our
	// queue; standing lossy reports without that fall mean it stood.
	drainDrop = 20 * time.Millisecond
	standing  = 2 * time.Second
	// limitedLoss is loss that, on a path already found congested (a
	// budget in force), is the queue's again: a queue full from the
	// start shows no delay over its least.
	limitedLoss = 0.1
	// drain: after a cut we send this share of what the partner
	// received, so the queue empties (an 80 ms queue in half a second);
	// drainFull after heavy loss, which a full queue overflowing shows
	// (the start's, where full quality meets a slow link): it empties
	// in a fifth of a second, and the data channels, which open in the
	// first seconds, find room beside the voice (at drain the queue
	// stood for seconds more: duetlab bottleneck's first seconds).
	drain     = 0.85
	drainFull = 0.6
	// settle: near the link's estimate the budget sits at this share
	// of it.
	settle = 0.8
	// After probeEvery clean at the estimate, one probe a step of
	// probeStep over it: a second of it queues 30 ms. A probe clean for
	// probeHold found room.
	probeEvery = 3 * time.Second
	probeStep  = 1.03
	probeHold  = 2 * time.Second
	// reportedHold is probeHold where the partner reports our queue
	// (Alarm): a probe 3 % over the link queues 6 ms in 200 ms.
	reportedHold = time.Second
	// alarmQueue is a standing queue of ours (Alarm's) that ends a
	// probe or a climb; a climb steps on under a third of it. The
	// fastest packet of a quarter second meets little of a path's
	// jitter (the lab's: under a millisecond), and a link offered 12 %
	// over its rate queues 6 ms in 50.
	alarmQueue = 6 * time.Millisecond
	// climb is the step a second of clean reports earns when no link is
	// known, careful after a probe found room over the estimate, up to
	// past times it, and rise up to the estimate.
	climb   = 1.8
	careful = 1.2
	past    = 1.5
	rise    = 1.1
	// probeStepMax is the longest step of a probe's ramp, in seconds of
	// climb: the partner's reports' spacing. Reports of a little queue
	// (between a third of alarmQueue and it) pause the ramp; they must
	// not save up its steps (three quarters of a second of them took a
	// probe from the settled budget to its top, 29 %, in one, and the
	// queue to 54 ms). A climb past a probe's room, where the link has
	// widened, keeps its pace.
	probeStepMax = 0.25
)

// Controller is the state of one stream's congestion control. See the
// package doc.
type Controller struct {
	min int // the budget's floor, bits per second

	srtt time.Duration // the smoothed round trip
	rtts []sample      // the last baseWindow's round trips, raw and smoothed

	budget int       // bits per second; 0: no limit
	link   int       // the partner's receive rate at the last congestion; 0: not known
	passed int       // the estimate a probe found room over, until the budget is well past it
	most   int       // the highest estimate yet: one taken while other traffic crowded the link is low
	cutAt  time.Time // the last cut
	// A cut that drains our queue shows as a round trip drainDrop under
	// the one at the cut (cutRTT; 0: none to wait for); lossy reports
	// that show no drop (undrained) mean the queue stood before the
	// first report, so its least is no base.
	cutRTT    time.Duration
	undrained time.Time // the first lossy report since the cut that showed no drop; zero: none
	clean     int       // the budget at the last report with no queue
	stepped   time.Time // the last climb step's report, or Alarm's
	alarmAt   time.Time // Alarm's last queue
	stood     time.Time // the first of Alarm's queues in a row standing at the settled budget; zero: none
	atLink    time.Time // the first of the clean reports in a row at the estimate; zero: none
	probe     time.Time // when a probe began; zero: none running
	last      time.Time // the last report
}

type sample struct {
	at        time.Time
	rtt, srtt time.Duration
}

// New returns a controller whose budget never goes under floor bits per
// second.
func New(floor int) *Controller { return &Controller{min: floor} }

// State is what Update found.
type State struct {
	// Budget is what to send at most, bits per second on the wire; 0 is
	// no limit.
	Budget int
	// Congested is set while the path queues or drops for our rate:
	// redundancy would only add to it.
	Congested bool
	// Queue is the smoothed round trip over its least of the last half
	// minute.
	Queue time.Duration
}

// Update takes a report and returns the budget; ceiling is what the
// sender's best costs, bits per second on the wire: a budget that climbs
// to it is no limit.
func (c *Controller) Update(r Report, ceiling int) State {
	dt := 1.0 // seconds since the last report, at most 1
	if !c.last.IsZero() {
		dt = min(1, max(0, r.At.Sub(c.last).Seconds()))
	}
	c.last = r.At
	step := c.sinceStep(r.At)
	raw, queue := c.queue(r, dt)
	// A round trip grows with either direction's queue; ours, while it
	// fills, keeps the partner short of what we sent, and once full
	// drops. Without either, a queue is the partner's (their voice's
	// own controller answers it): hold, neither cut nor climb.
	ours := r.FractionLost >= lossWithDelay || r.Received == 0 || float64(r.Received) < short*float64(r.Sent)
	if c.cutRTT > 0 && r.RTT > 0 {
		switch {
		case r.RTT < c.cutRTT-drainDrop:
			c.cutRTT, c.undrained = 0, time.Time{}
		case r.FractionLost >= lossWithDelay && c.undrained.IsZero():
			c.undrained = r.At
		}
	}
	stood := !c.undrained.IsZero() && r.At.Sub(c.undrained) >= standing && r.FractionLost >= lossWithDelay
	congested := r.FractionLost >= heavyLoss || queue > queueing && ours ||
		c.budget > 0 && r.FractionLost >= limitedLoss || stood
	// While the partner reports our own queue (Alarm), a probe's or a
	// climb's queue is read there, not in the round trip, which a
	// jittery path puts 25 ms over its least one time in 25.
	reported := c.reported(r.At)
	queued := raw > queueing && !reported
	switch {
	case congested:
		c.congested(r)
	case !c.probe.IsZero() && (queued || r.FractionLost >= lossWithDelay):
		// The probe filled a queue: the link is as it was.
		c.budget, c.probe, c.atLink = c.settled(), time.Time{}, time.Time{}
	case c.pastProbe() && r.Received > 0 && (queued && ours || r.FractionLost >= lossWithDelay):
		// Climbing past a probe's room filled a queue: the link is
		// what the partner receives now. Settle under it at once,
		// before the queue drops (the smoothed round trip would see
		// it a few seconds later, and a cut would go under the link).
		c.link, c.passed, c.most = r.Received, 0, max(c.most, r.Received)
		c.budget, c.atLink = c.settled(), time.Time{}
	case queue <= queueClear:
		// While the partner reports our queue, Alarm keeps the last
		// clean budget and steps a climb past a probe's room on it.
		if !reported && raw <= queueClear {
			c.clean = c.budget
		}
		if !reported || !c.pastProbe() {
			c.climb(r, ceiling, step)
		}
	}
	return State{Budget: c.budget, Congested: congested, Queue: queue}
}

// Alarm takes our direction's standing queue (OneWay's, from the
// partner's reports every 250 ms) between the reports Update takes (a
// second of them, for the rates):
//   - while a probe runs, or the budget climbs past a probe's room, a
//     queue over alarmQueue ends it at once, at the budget of the last
//     clean report (a climb 20 % over the link fills 200 ms of queue a
//     second: a second's wait for the next Update overflowed it);
//   - under a third of it the climb goes on, and a probe ramps up to its
//     top, in the steps of the time since the last (a probe's a quarter
//     second's at most: crossing the link by such a step fills the queue
//     slowly);
//   - at the settled budget, a queue standing a second over twice
//     alarmQueue makes what we send the link's estimate.
//
// It returns the budget, and whether it changed.
func (c *Controller) Alarm(at time.Time, queue time.Duration, ceiling int) (budget int, changed bool) {
	was := c.budget
	c.alarmAt = at
	climbing := c.probe.IsZero() && c.pastProbe()
	if queue <= 2*alarmQueue {
		c.stood = time.Time{}
	}
	switch {
	case c.probe.IsZero() && !climbing && c.link > 0 && queue > 2*alarmQueue:
		// Our queue stands at the settled budget: the link's estimate
		// was high (taken while the partner still drained a queue, or
		// with the rest of our traffic then smaller). A second of it
		// makes what we send the estimate.
		if c.stood.IsZero() {
			c.stood = at
		} else if at.Sub(c.stood) >= time.Second {
			c.link, c.stood = c.budget, time.Time{}
			c.budget = c.settled()
		}
	case c.probe.IsZero() && !climbing:
	case queue > alarmQueue:
		if climbing {
			link := c.clean
			if link == 0 {
				link = c.budget
			}
			c.link, c.passed, c.most = link, 0, max(c.most, link)
		}
		c.budget, c.probe, c.atLink = c.settled(), time.Time{}, time.Time{}
	case queue < alarmQueue/3 && climbing:
		c.clean = c.budget
		c.climb(Report{At: at}, ceiling, c.sinceStep(at))
	case queue < alarmQueue/3 && c.budget < c.probeTop():
		// A probe ramps up to its top as a climb does (a jump from the
		// settled budget, 29 % over it, filled the queue before the
		// next report could show it, where the estimate was high); its
		// hold counts from the top.
		c.budget = min(c.probeTop(), int(math.Ceil(math.Pow(climb, min(probeStepMax, c.sinceStep(at)))*float64(c.budget))))
		c.probe = at
	}
	return c.budget, c.budget != was
}

// reported reports whether Alarm had a report of our queue within the
// second before at.
func (c *Controller) reported(at time.Time) bool {
	return !c.alarmAt.IsZero() && at.Sub(c.alarmAt) < time.Second
}

// probeTop is what a probe sends: a step over the link's estimate.
func (c *Controller) probeTop() int {
	if c.link == 0 {
		return c.budget
	}
	return int(probeStep * float64(c.link))
}

// pastProbe reports whether the budget climbs past where a probe found
// room (no link known).
func (c *Controller) pastProbe() bool { return c.link == 0 && c.passed > 0 && c.budget > 0 }

// sinceStep returns the seconds since the last climb step (Update's
// report, or Alarm's step), at most 1, and makes at the last.
func (c *Controller) sinceStep(at time.Time) float64 {
	dt := 1.0
	if !c.stepped.IsZero() {
		dt = min(1, max(0, at.Sub(c.stepped).Seconds()))
	}
	c.stepped = at
	return dt
}

// queue notes r's round trip, dt seconds after the last, and returns how
// far it is over the least of the last baseWindow, and the smoothed one
// over its least (0, 0 without one).
func (c *Controller) queue(r Report, dt float64) (raw, smoothed time.Duration) {
	if r.RTT <= 0 {
		return 0, 0
	}
	if c.srtt == 0 {
		c.srtt = r.RTT
	}
	gain := 1 - math.Pow(1-srttGain, dt)
	c.srtt += time.Duration(gain * float64(r.RTT-c.srtt))
	keep := c.rtts[:0]
	for _, s := range c.rtts {
		if r.At.Sub(s.at) < baseWindow {
			keep = append(keep, s)
		}
	}
	c.rtts = append(keep, sample{r.At, r.RTT, c.srtt})
	least := sample{rtt: r.RTT, srtt: c.srtt}
	for _, s := range c.rtts {
		least.rtt, least.srtt = min(least.rtt, s.rtt), min(least.srtt, s.srtt)
	}
	return r.RTT - least.rtt, c.srtt - least.srtt
}

// settled is the budget near the link's estimate: settle of it.
func (c *Controller) settled() int { return max(c.min, int(settle*float64(c.link))) }

// congested cuts the budget under what the partner received, unless the
// last cut is too recent for this report to show its effect.
func (c *Controller) congested(r Report) {
	c.atLink, c.probe = time.Time{}, time.Time{}
	if !c.cutAt.IsZero() && r.At.Sub(c.cutAt) < time.Second+r.RTT {
		return
	}
	got := r.Received
	if got <= 0 {
		got = int(float64(r.Sent) * (1 - r.FractionLost))
	}
	if got <= 0 {
		return // nothing to go by; the next report has
	}
	c.link, c.passed, c.most = got, 0, max(c.most, got)
	share := drain
	if r.FractionLost >= heavyLoss {
		share = drainFull
	}
	b := int(share * float64(got))
	if c.budget > 0 {
		b = min(b, c.budget)
	}
	c.budget = max(b, c.min)
	c.cutAt, c.cutRTT, c.undrained = r.At, r.RTT, time.Time{}
}

// climb raises the budget after a clean report: up to near the link's
// estimate, then a probe above it now and then; past it, or with no
// estimate, by climb a second (dt seconds since the last report) up to
// the ceiling, which ends the limit.
func (c *Controller) climb(r Report, ceiling int, dt float64) {
	if c.budget == 0 {
		return
	}
	if !c.probe.IsZero() {
		// Clean for probeHold since the probe began: the link has
		// room; forget the estimate.
		hold := probeHold
		if c.reported(r.At) {
			hold = reportedHold
		}
		if r.At.Sub(c.probe) >= hold {
			c.passed, c.link, c.probe = c.link, 0, time.Time{}
		}
		return
	}
	step := func(per float64) int { return int(math.Ceil(math.Pow(per, dt) * float64(c.budget))) }
	near := int(settle * float64(c.link))
	switch {
	case c.link == 0 && float64(c.budget) < past*float64(max(c.passed, c.most)):
		// Room over where the link was: it may not be much.
		c.budget = step(careful)
	case c.link == 0:
		c.budget = step(climb)
	case c.budget < near:
		c.budget = min(near, step(rise))
	case c.atLink.IsZero():
		c.atLink = r.At
	case r.At.Sub(c.atLink) >= probeEvery:
		c.atLink, c.probe = time.Time{}, r.At
		if !c.reported(r.At) {
			c.budget = c.probeTop()
		} // else Alarm ramps it up on what the partner reports
	}
	if c.budget >= ceiling {
		c.budget, c.link = 0, 0
	}
}
