package app

import (
	"net"
	"net/netip"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/peer"
)

// adapter chooses the codec (under Config.Codec Auto), the Opus bitrate
// and the depth of RED redundancy (how many earlier frames ride along with
// each Opus packet) from the partner's reception reports, about once a
// second.
//
// Opus in its low-delay mode has no in-band FEC, so a lossy path gets
// redundancy; and redundancy multiplies what is sent, so the bitrate comes
// down as it goes up, keeping the load near what it was. A path whose
// round trip swells well beyond its best is queueing: that is congestion,
// which redundancy would only feed, so the bitrate steps down and
// redundancy goes. A clean path earns the bitrate back slowly.
// (Transport-wide congestion control was measured and left out: on a
// steady audio stream pion's GCC chases random loss and floors at
// 100 kbps; see net/peer.) Opus Custom's bitrate follows Opus's (see
// bitrateFor).
//
// The codec, under Auto: Opus Custom when the partner took it (a Duet
// peer), else Opus. PCM (L16) when the path has shown it has room and
// loses nothing: a direct path to a LAN or loopback address (see lanPath)
// and pcmAfter reports in a row with no loss and a round trip under
// pcmMaxRTT. Duet cannot measure a path's capacity beyond that, so a path
// through the internet gets PCM only when asked for (--codec pcm). The
// first report with a loss or queueing sends PCM back to Opus Custom at
// once, and PCM then needs twice as many clean reports before it is tried
// again (up to maxPCMWait), so a path that cannot carry it is not tried
// every few seconds. Heavy loss (lossForTwo) sends Opus with two frames of
// redundancy instead of Opus Custom, which has none, until the path is
// clean again (cleanToRecover reports); so does a bitrate stepped below
// half the configured one (queueing), since Opus Custom's small frames
// fall apart at low rates (minCustomBitrate) where Opus's do not. A codec
// chosen by the singer is kept whatever the path does.
type adapter struct {
	base   int // the configured bitrate, the ceiling
	rate   int
	red    int
	clean  int // reports in a row without loss or queueing
	minRTT time.Duration

	pcm     bool // PCM earned
	pcmRun  int  // reports in a row fit for PCM
	pcmNeed int  // reports in a row PCM needs now
}

// Thresholds of the adapter.
const (
	lossForRED      = 0.01 // a report losing this much turns redundancy on
	lossForTwo      = 0.05 // and this much, two frames deep
	cleanToRecover  = 5    // clean reports before stepping back up
	minBitrate      = 24000
	queueingPastMin = 30 * time.Millisecond

	pcmAfter   = 3 // clean reports (about seconds) before PCM
	maxPCMWait = 60
	pcmMaxRTT  = 10 * time.Millisecond
)

func newAdapter(base int) *adapter { return &adapter{base: base, rate: base, pcmNeed: pcmAfter} }

// update takes one report, and whether the path is a direct one on the
// LAN (lanPath), and returns the bitrate and redundancy to use.
func (a *adapter) update(f peer.Feedback, lan bool) (rate, red int) {
	if f.RTT > 0 && (a.minRTT == 0 || f.RTT < a.minRTT) {
		a.minRTT = f.RTT
	}
	congested := f.RTT > 2*a.minRTT && f.RTT-a.minRTT > queueingPastMin
	if lan && f.FractionLost == 0 && f.RTT > 0 && f.RTT < pcmMaxRTT && !congested {
		if a.pcmRun++; a.pcmRun >= a.pcmNeed {
			a.pcm = true
		}
	} else {
		if a.pcm {
			a.pcm = false
			a.pcmNeed = min(2*a.pcmNeed, maxPCMWait)
		}
		a.pcmRun = 0
	}
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

// codec returns the codec to send: choice if the singer made one, else
// (Auto) as the adapter says, among those the partner accepts. RED rides
// only with Opus.
func (a *adapter) codec(choice codec.Kind, accepts func(codec.Kind) bool) codec.Kind {
	switch {
	case choice != Auto:
		return choice
	case a.pcm && accepts(codec.L16):
		return codec.L16
	case a.red < 2 && 2*a.rate >= a.base && accepts(codec.OpusCustom):
		return codec.OpusCustom
	}
	return codec.Opus
}

// lanPath reports whether the connection goes straight to an address on
// the LAN or this machine: a host candidate here, no relay, and a
// private, link-local or loopback address there.
func lanPath(st peer.Stats) bool {
	if st.Relayed || st.Candidate != "host" {
		return false
	}
	host, _, err := net.SplitHostPort(st.Address)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}
