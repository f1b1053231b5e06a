package app

import (
	"net"
	"net/netip"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/congestion"
	"github.com/duetapp/duet/net/peer"
)

// adapter chooses the codec (under Config.Codec Auto), the Opus bitrate,
// the Opus frame and the depth of RED redundancy (how many earlier frames
// ride along with each Opus packet) from the partner's reception reports,
// about once a second.
//
// Two kinds of loss call for opposite answers. Random loss (a radio, a
// busy router) is covered by redundancy: Opus in its low-delay mode has no
// in-band FEC, so a lossy path gets RED, and redundancy multiplies what is
// sent, so the bitrate comes down as it goes up, keeping the load near
// what it was. A bottleneck (a link slower than what we send, its queue
// filling and then dropping) is congestion, which redundancy would only
// feed: net/congestion tells the two apart (the round trip growing, loss
// that comes with it or is too heavy to be random, what the partner
// received against what we sent) and keeps a budget in bits per second on
// the wire, for all we send on the path (the data channels and RTCP cross
// the same bottleneck; the voice gets what they leave). Under congestion
// redundancy goes; random loss under a budget
// may have it again, within the budget (the bitrate makes room for it).
// What is sent fits the budget: Opus (never Opus Custom or PCM, whose
// small packets cost most in headers: 375 a second), at the configured
// frame while that leaves goodRate for the voice, else in frames of 10 or
// 20 ms, whose fewer packets carry less header (a 5 ms stream's headers
// alone are 90 kbit/s, peer.WireOverhead), at the rate left. When the
// budget climbs back to what full quality costs, the limit ends. (pion's
// GCC was measured and left out: on a steady audio stream it chases random
// loss and floors at 100 kbps; see net/peer.) Opus Custom's bitrate
// follows Opus's (see bitrateFor).
//
// The codec, under Auto: Opus Custom when the partner took it (a Duet
// peer), else Opus. PCM (L16) when the path has shown it has room and
// loses nothing: a direct path to a LAN or loopback address (see lanPath)
// with a round trip under pcmMaxRTT, from the start when ICE's checks
// measured it so (connected: no change of codec a few seconds into the
// song, and no seconds of Opus Custom's look-ahead), else after pcmAfter
// reports in a row with no loss and that round trip. Duet cannot measure a
// path's capacity beyond that, so a path through the internet gets PCM
// only when asked for (--codec pcm). The first report with a loss or
// congestion, or the second in a row with a slow round trip, sends PCM
// back to Opus Custom at once, and PCM then needs twice as many clean
// reports before it is tried again (up to maxPCMWait), so a path that
// cannot carry it is not tried every few seconds. Heavy loss (lossForTwo)
// sends Opus with two frames of redundancy instead of Opus Custom, which
// has none, until the path is clean again (cleanToRecover reports); so
// does a budget, or a bitrate below half the configured one, since Opus
// Custom's small frames fall apart at low rates (minCustomBitrate) where
// Opus's do not. A codec chosen by the singer is kept whatever the path
// does (only its bitrate follows).
type adapter struct {
	base   int // the configured bitrate, the ceiling
	frame0 int // the configured Opus frame, samples
	rate   int // what random loss leaves for the voice (Opus's scale)
	red    int
	clean  int        // reports in a row without loss or queueing
	kind   codec.Kind // sent now

	cc     *congestion.Controller
	budget int  // bits per second on the wire; 0: no limit
	jammed bool // the latest report found congestion
	other  int  // what else we send on the path, smoothed: bits per second on the wire
	floor  int  // the least budget for the voice
	out    int  // the bitrate to send: rate, within the budget
	frame  int  // the Opus frame to send, samples

	pcm     bool // PCM earned
	slow    bool // PCM's last report had a slow round trip, nothing else wrong
	pcmRun  int  // reports in a row fit for PCM
	pcmNeed int  // reports in a row PCM needs now
}

// Thresholds of the adapter.
const (
	lossForRED     = 0.01 // a report losing this much turns redundancy on
	lossForTwo     = 0.05 // and this much, two frames deep
	cleanToRecover = 5    // clean reports before stepping back up
	minBitrate     = 24000
	// goodRate is the least Opus bitrate a shorter frame is kept for,
	// under a budget; below it the next longer frame.
	goodRate = 48000

	pcmAfter   = 3 // clean reports (about seconds) before PCM
	maxPCMWait = 60
	pcmMaxRTT  = 10 * time.Millisecond
)

// longFrames are the Opus frames a budget may choose, samples: 10 and
// 20 ms (the longest the jitter buffer takes).
var longFrames = [...]int{480, 960}

// newAdapter returns an adapter for the configured Opus bitrate and frame
// (samples), sending codec first until told otherwise.
func newAdapter(base, frame int, first codec.Kind) *adapter {
	// The budget's floor: 20 ms frames at the least bitrate.
	floor := minBitrate + audio.SampleRate/longFrames[1]*peer.WireOverhead*8
	return &adapter{base: base, rate: base, out: base, frame0: frame, frame: frame, kind: first, pcmNeed: pcmAfter, cc: congestion.New(floor), floor: floor}
}

// connected takes what is known as the connection comes up: whether the
// path is a direct one on the LAN (lanPath), and ICE's round trip on it
// (0: not measured). Such a path under pcmMaxRTT has earned PCM at once.
func (a *adapter) connected(lan bool, rtt time.Duration) {
	if lan && rtt > 0 && rtt < pcmMaxRTT {
		a.pcm, a.pcmRun = true, a.pcmNeed
	}
}

// update takes one report, and whether the path is a direct one on the
// LAN (lanPath), and returns the bitrate and redundancy to use (the frame
// is a.frame).
func (a *adapter) update(f peer.Feedback, lan bool) (rate, red int) {
	r := congestion.Report{At: f.At, RTT: f.RTT, FractionLost: f.FractionLost, Sent: f.SentRate, Received: f.ReceivedRate}
	if r.Sent == 0 {
		r.Sent = a.cost(a.kind, a.out, a.frame, a.red)
	}
	// The controller's budget is for all we send on the path: the
	// partner received as much of the rest, in proportion, as of the
	// voice, and the voice gets what the rest leaves of the budget.
	if f.OtherRate > 0 {
		if a.other == 0 {
			a.other = f.OtherRate
		}
		a.other = (a.other + f.OtherRate) / 2
		r.Received = int(float64(r.Received) * float64(r.Sent+f.OtherRate) / float64(r.Sent))
		r.Sent += f.OtherRate
	}
	st := a.cc.Update(r, a.cost(codec.OpusCustom, a.base, a.frame0, 0)+a.other)
	a.budget, a.jammed = st.Budget, st.Congested
	if a.budget > 0 {
		a.budget = max(a.floor, a.budget-a.other)
	}
	room := lan && f.FractionLost == 0 && !a.jammed && a.budget == 0
	switch {
	case room && f.RTT == 0:
		// No round trip yet (the partner has not seen a sender report
		// of ours): nothing earned, nothing lost.
	case room && f.RTT < pcmMaxRTT:
		a.slow = false
		if a.pcmRun++; a.pcmRun >= a.pcmNeed {
			a.pcm = true
		}
	case room && a.pcm && !a.slow:
		// One slow round trip with nothing lost is a busy machine's
		// scheduling as likely as a queue: a second in a row is a queue.
		a.slow = true
	default:
		if a.pcm {
			a.pcm = false
			a.pcmNeed = min(2*a.pcmNeed, maxPCMWait)
		}
		a.pcmRun, a.slow = 0, false
	}
	switch {
	case a.jammed:
		// The loss is the queue's: redundancy would feed it.
		a.clean = 0
		a.red = 0
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
	a.fit()
	return a.out, a.red
}

// alarm takes our voice's standing queue, as the partner's report that
// came at at shows it, between the reports update takes: a probe, or a
// climb past one, that fills a queue ends at once (see
// congestion.Controller.Alarm). It returns what update does, and whether
// the budget changed.
func (a *adapter) alarm(at time.Time, queue time.Duration) (rate, red int, changed bool) {
	budget, changed := a.cc.Alarm(at, queue, a.cost(codec.OpusCustom, a.base, a.frame0, 0)+a.other)
	if !changed {
		return a.out, a.red, false
	}
	a.budget = 0
	if budget > 0 {
		a.budget = max(a.floor, budget-a.other)
	}
	a.fit()
	return a.out, a.red, true
}

// fit chooses the frame and the bitrate to send within the budget: the
// configured frame while it leaves goodRate, else a longer one; and, at
// the longest, redundancy only as deep as the budget carries at
// minBitrate (random loss on a path behind a bottleneck: two frames of
// redundancy at the least bitrate cost 99 kbit/s on the wire, and the
// budget was under that).
func (a *adapter) fit() {
	a.frame, a.out = a.frame0, a.rate
	if a.budget == 0 {
		return
	}
	for _, f := range append([]int{a.frame0}, longFrames[:]...) {
		if f < a.frame0 {
			continue
		}
		a.frame = f
		left := a.left(f, a.red)
		if a.out = max(minBitrate, min(a.rate, left)); left >= goodRate {
			return
		}
	}
	for a.red > 0 && a.left(a.frame, a.red) < minBitrate {
		a.red--
		a.out = max(minBitrate, min(a.rate, a.left(a.frame, a.red)))
	}
}

// left is the Opus bitrate the budget leaves in frames of frame samples
// with red frames of redundancy.
func (a *adapter) left(frame, red int) int {
	perPacket := peer.WireOverhead
	if red > 0 {
		perPacket += 1 + 4*red // RED's headers
	}
	return (a.budget - audio.SampleRate/frame*perPacket*8) / (1 + red)
}

// cost is what sending codec k at Opus bitrate rate (see bitrateFor),
// in Opus frames of frame samples with red frames of redundancy, costs on
// the wire, bits per second; Opus Custom and PCM go in 128-sample packets
// (a 128-sample device block's).
func (a *adapter) cost(k codec.Kind, rate, frame, red int) int {
	switch k {
	case codec.OpusCustom, codec.L16, codec.L24:
		return bitrateFor(k, rate, a.base) + audio.SampleRate/128*peer.WireOverhead*8
	}
	perPacket := peer.WireOverhead
	if red > 0 {
		perPacket += 1 + 4*red
	}
	return rate*(1+red) + audio.SampleRate/frame*perPacket*8
}

// codec returns the codec to send: choice if the singer made one, else
// (Auto) as the adapter says, among those the partner accepts. RED rides
// only with Opus.
func (a *adapter) codec(choice codec.Kind, accepts func(codec.Kind) bool) codec.Kind {
	a.kind = a.choose(choice, accepts)
	return a.kind
}

func (a *adapter) choose(choice codec.Kind, accepts func(codec.Kind) bool) codec.Kind {
	switch {
	case choice != Auto:
		return choice
	case a.budget > 0:
		return codec.Opus
	case a.pcm && accepts(codec.L16):
		return codec.L16
	case a.red < 2 && 2*a.out >= a.base && accepts(codec.OpusCustom):
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
