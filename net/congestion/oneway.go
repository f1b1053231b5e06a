package congestion

import "time"

// OneWay follows our voice's one-way delay from the partner's reports of
// the fastest of our packets over each interval: the send time on our
// clock and the arrival on theirs. Their difference is the delay plus the
// clocks' offset, which holds still over baseWindow (drift moves it a few
// milliseconds at most), so the latest over the least of the window is
// our direction's standing queue: the path's jitter hardly moves the
// fastest of an interval's packets, and the partner's own queue (the
// round trip's other half) not at all. Not safe for concurrent use.
type OneWay struct {
	floors []floorSample // the window's reports, oldest first
}

type floorSample struct {
	at    time.Time
	delay int64 // arrival minus send time, ns, the clocks' offset included
}

// Add takes a report that came at at (any monotonic clock) of a packet
// sent at sent (our clock, ns) and received at received (theirs), and
// returns the standing queue it shows.
func (o *OneWay) Add(at time.Time, sent, received int64) time.Duration {
	d := received - sent
	keep := o.floors[:0]
	for _, f := range o.floors {
		if at.Sub(f.at) < baseWindow {
			keep = append(keep, f)
		}
	}
	o.floors = append(keep, floorSample{at, d})
	least := d
	for _, f := range o.floors {
		least = min(least, f.delay)
	}
	return time.Duration(d - least)
}
