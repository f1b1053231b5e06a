package app

import (
	"time"

	"github.com/duetapp/duet/net/peer"
)

// adapter chooses the Opus bitrate and the depth of RED redundancy (how
// many earlier frames ride along with each packet) from the partner's
// reception reports, about once a second.
//
// Opus in its low-delay mode has no in-band FEC, so a lossy path gets
// redundancy; and redundancy multiplies what is sent, so the bitrate comes
// down as it goes up, keeping the load near what it was. A path whose
// round trip swells well beyond its best is queueing: that is congestion,
// which redundancy would only feed, so the bitrate steps down and
// redundancy goes. A clean path earns the bitrate back slowly.
// (Transport-wide congestion control was measured and left out: on a
// steady audio stream pion's GCC chases random loss and floors at
// 100 kbps; see net/peer.)
type adapter struct {
	base   int // the configured bitrate, the ceiling
	rate   int
	red    int
	clean  int // reports in a row without loss or queueing
	minRTT time.Duration
}

// Thresholds of the adapter.
const (
	lossForRED      = 0.01 // a report losing this much turns redundancy on
	lossForTwo      = 0.05 // and this much, two frames deep
	cleanToRecover  = 5    // clean reports before stepping back up
	minBitrate      = 24000
	queueingPastMin = 30 * time.Millisecond
)

func newAdapter(base int) *adapter { return &adapter{base: base, rate: base} }

// update takes one report and returns the bitrate and redundancy to use.
func (a *adapter) update(f peer.Feedback) (rate, red int) {
	if f.RTT > 0 && (a.minRTT == 0 || f.RTT < a.minRTT) {
		a.minRTT = f.RTT
	}
	congested := f.RTT > 2*a.minRTT && f.RTT-a.minRTT > queueingPastMin
	switch {
	case congested:
		a.clean = 0
		a.red = 0
		a.rate = max(minBitrate, a.rate*3/4)
	case f.FractionLost >= lossForTwo:
		a.clean = 0
		a.red = 2
		a.rate = max(minBitrate, min(a.rate, a.base*2/5))
	case f.FractionLost >= lossForRED:
		a.clean = 0
		a.red = max(a.red, 1)
		a.rate = max(minBitrate, min(a.rate, a.base*3/5))
	default:
		a.clean++
		if a.clean >= cleanToRecover {
			a.red = 0
			a.rate = min(a.base, a.rate*5/4)
		}
	}
	return a.rate, a.red
}
