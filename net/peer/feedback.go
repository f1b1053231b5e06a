package peer

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// WireOverhead is what a voice packet costs on the wire beyond its
// payload, in bytes: the RTP header (12), the SRTP tag (16, pion's default
// AEAD AES-GCM profiles) and the IPv4 and UDP headers (28); a packet
// stamped with its send time (timing.go, at most 250 a second) carries 8
// more. At 200 packets a second it is 89.6 kbit/s, more than a 5 ms Opus
// stream's payload at 64 kbit/s.
const WireOverhead = 12 + 16 + ipUDPHeaders

// ipUDPHeaders is what IPv4 and UDP add to a datagram, bytes.
const ipUDPHeaders = 28

// Feedback is what the partner's RTCP receiver reports say about the path
// our voice takes, for adapting the Opus bitrate and the redundancy (on
// the encoder's goroutine: the encoder is not safe for concurrent use).
//
// Congestion control (net/congestion, in the app's adapter) works from
// these reports, not from pion's GCC (TWCC feedback, no-op pacer), which
// was tried and measured on the lab's "mobile" path
// (60 ± 30 ms, 5 % bursty loss, 300 kb/s), 200 packets a second, 30 s.
// Under the limit (96 kb/s of frames, ~190 kb/s on the wire) its target
// wandered 98–163 kb/s, pulled down by random loss that redundancy should
// cover, not the rate. Over the limit (352 kb/s of frames, 27 % lost, RTT
// 350–530 ms from a full queue) it sat at 100 kb/s, the loss-based
// controller's hard-wired floor, while the delay-based estimate climbed to
// 420 kb/s (a standing queue has no delay gradient). A constant audio
// stream never probes, so GCC cannot see headroom either; and TWCC costs 8
// bytes a packet (12.8 kb/s at 200 packets a second). The loss and RTT
// here carry the same signal, undistorted.
type Feedback struct {
	// FractionLost is the share of our packets the partner lost over its
	// last report interval (about a second), 0…1, before any recovery
	// from redundancy: the loss redundancy has to cover.
	FractionLost float64
	// Lost is the partner's running count of our packets lost.
	Lost int64
	// RTT is the round trip from the report; 0 until the partner has
	// seen one of our sender reports. A queue filling (the link's rate
	// exceeded) shows here first, as a growing RTT, before the loss.
	RTT time.Duration
	// MinRTT is the least RTT the partner's reports gave over the last
	// minRTTWindow: the path's own round trip, without the queue or the
	// stall one report can carry (a loaded machine once made a browser's
	// report on loopback say 54 ms, held for its 5 s). For what must not
	// overstate the path, such as how soon a packet can arrive.
	MinRTT time.Duration
	// At is when the report came.
	At time.Time
	// SentRate is what we sent of our voice since the report before,
	// and ReceivedRate what the partner received of it meanwhile (the
	// packets its reports' highest sequence number and loss count say
	// came, at the sizes they were sent at), both in bits per second on
	// the wire (WireOverhead included); 0 at the first report, or when we
	// sent nothing meanwhile. Behind a full queue ReceivedRate is the
	// link's rate.
	SentRate, ReceivedRate int
	// OtherRate is what else we sent on the connection's path meanwhile
	// (the data channels and their acknowledgements, RTCP, DTLS, ICE's
	// checks), bits per second on the wire; 0 when not known. It crosses
	// the same bottleneck as the voice.
	OtherRate int
}

// feedbackState holds the latest Feedback for Peer.Feedback. onReports
// runs on one goroutine (the RTCP reader); the rest is safe from any.
type feedbackState struct {
	fractionLost atomic.Uint32 // RTCP's 8-bit fraction, /256
	rtt          atomic.Int64  // nanoseconds, from RTCP receiver reports
	minRTT       atomic.Int64  // nanoseconds, the least over minRTTWindow
	lost         atomic.Int64
	at           atomic.Int64 // the latest report's, Unix nanoseconds
	sentRate     atomic.Int64 // bits per second
	receivedRate atomic.Int64
	otherRate    atomic.Int64

	// sent returns our voice packets and payload bytes sent so far; nil:
	// no rates.
	sent func() (packets, bytes int64)
	// path returns the packets and bytes (UDP payload) sent so far on
	// the connection's path, all of them; ok is false without one.
	path func() (packets, bytes uint64, ok bool)
	// sizes holds each recent voice packet's RTP size (header and
	// payload) plus one, by sequence number modulo its length (0: not
	// sent); the encoder's goroutine writes, the RTCP reader reads.
	sizes   [sizeRing]atomic.Uint32
	lastSeq atomic.Uint32 // the latest sent's sequence number plus one; 0: none
	// rtts are the round trips of the last minRTTWindow, oldest first,
	// for minRTT; the RTCP reader's alone.
	rtts []timedRTT
	// The report before, for the rates: when it came, its highest
	// sequence number received (extended) and loss count, and what we
	// had sent by then.
	prev struct {
		ok             bool
		at             time.Time
		highest        uint32
		lost           int64
		packets, bytes int64
		lastSeq        uint32 // as lastSeq
		path           pathCount
	}
}

// timedRTT is a round trip and when its report came.
type timedRTT struct {
	at  time.Time
	rtt time.Duration
}

// minRTTWindow is how far back Feedback.MinRTT looks: several of a
// browser's reports (one in 2-5 s), few enough that a path that got
// longer (a relay) shows soon.
const minRTTWindow = 30 * time.Second

// sizeRing is how many packets' sizes feedbackState keeps: over 4 s of
// the most packets Duet sends (750 a second, 1.3 ms Opus Custom).
const sizeRing = 1 << 12

// sentPacket notes a voice packet sent with sequence number seq, of size
// bytes of RTP (header and payload); the encoder's goroutine.
func (f *feedbackState) sentPacket(seq uint16, size int) {
	f.sizes[int(seq)%sizeRing].Store(uint32(size) + 1)
	f.lastSeq.Store(uint32(seq) + 1)
}

// rangeBytes returns the wire bytes of the packets after sequence number
// from up to to (extended numbers), or false if some are not known.
func (f *feedbackState) rangeBytes(from, to uint32) (int64, bool) {
	n := int64(int32(to - from))
	if n <= 0 || n >= sizeRing {
		return 0, false
	}
	var sum int64
	for i := range n {
		s := f.sizes[int(uint16(from+1+uint32(i)))%sizeRing].Load()
		if s == 0 {
			return 0, false
		}
		sum += int64(s) - 1 - 12 + WireOverhead // RTP's 12 are in WireOverhead
	}
	return sum, true
}

// rates works out SentRate and ReceivedRate from a report on our voice
// that came at now.
func (f *feedbackState) rates(r rtcp.ReceptionReport, now time.Time) {
	if f.sent == nil {
		return
	}
	packets, bytes := f.sent()
	last := f.lastSeq.Load()
	prev := f.prev
	f.prev.ok, f.prev.at, f.prev.highest, f.prev.lost = true, now, r.LastSequenceNumber, int64(r.TotalLost)
	f.prev.packets, f.prev.bytes, f.prev.lastSeq = packets, bytes, last
	var path pathCount
	if f.path != nil {
		path.packets, path.bytes, path.ok = f.path()
	}
	f.prev.path = path
	dt := now.Sub(prev.at).Seconds()
	dp := packets - prev.packets
	if !prev.ok || dt <= 0 || dp <= 0 {
		f.sentRate.Store(0) // not known
		f.receivedRate.Store(0)
		return
	}
	wire := float64(bytes-prev.bytes+dp*WireOverhead) * 8 // bits sent meanwhile
	if prev.lastSeq != 0 && last != 0 {
		// At their sizes, header extensions included.
		if b, ok := f.rangeBytes(uint32(uint16(prev.lastSeq-1)), uint32(uint16(prev.lastSeq-1))+uint32(uint16(last-prev.lastSeq))); ok {
			wire = float64(b * 8)
		}
	}
	f.sentRate.Store(int64(wire / dt))
	f.otherRate.Store(int64(path.since(prev.path, wire) / dt))
	// What arrived: the packets between the two reports' highest
	// sequence numbers, less those lost, at their own sizes (the packet
	// rate may have changed since they were sent); else at the mean size
	// of ours meanwhile.
	span := int64(int32(r.LastSequenceNumber - prev.highest))
	if span > maxSpan(dp) {
		f.receivedRate.Store(0) // not known: see ours
		return
	}
	got := max(span-(int64(r.TotalLost)-prev.lost), 0)
	if bytes, ok := f.rangeBytes(prev.highest, r.LastSequenceNumber); ok {
		f.receivedRate.Store(int64(float64(bytes*8) * float64(got) / float64(span) / dt))
		return
	}
	f.receivedRate.Store(int64(wire * float64(got) / float64(dp) / dt))
}

// pathCount is what was sent on the connection's path by some moment.
type pathCount struct {
	packets, bytes uint64
	ok             bool
}

// since returns the bits sent on the wire since was, less voice bits of
// voice: what else was sent; 0 if not known.
func (c pathCount) since(was pathCount, voice float64) float64 {
	if !c.ok || !was.ok || c.bytes < was.bytes || c.packets < was.packets {
		return 0 // a new path, or none
	}
	all := float64(c.bytes-was.bytes+(c.packets-was.packets)*ipUDPHeaders) * 8
	return max(0, all-voice)
}

// ours reports whether span packets between the report before and this
// one can be ours: not many more than we sent meanwhile. The first
// report of a stream may stand for packets before ours (seen: a span of
// 23,000 where we had sent 375, which put the loss at 0.8 % where it was
// 60 %, and the received rate at 19 Mbit/s).
func (f *feedbackState) ours(span int64) bool {
	if f.sent == nil {
		return true
	}
	packets, _ := f.sent()
	return span <= maxSpan(packets-f.prev.packets)
}

// maxSpan is the most packets a report may say were sent after the one
// before, when we sent sent meanwhile: twice as many and a few, for
// reports that cross our counting.
func maxSpan(sent int64) int64 { return 2*sent + 64 }

// feedback returns the latest Feedback.
func (f *feedbackState) feedback() Feedback {
	fb := Feedback{
		FractionLost: float64(f.fractionLost.Load()) / 256,
		Lost:         f.lost.Load(),
		RTT:          time.Duration(f.rtt.Load()),
		MinRTT:       time.Duration(f.minRTT.Load()),
		SentRate:     int(f.sentRate.Load()),
		ReceivedRate: int(f.receivedRate.Load()),
		OtherRate:    int(f.otherRate.Load()),
	}
	if at := f.at.Load(); at != 0 {
		fb.At = time.Unix(0, at)
	}
	return fb
}

// onReports takes the partner's reception reports on our voice (stream
// ssrc; 0 takes any): the loss they counted, and the round trip (RFC 3550
// §6.4.1: now − LSR − DLSR, in 1/65536 s, against the clock that stamped
// our sender reports). It reports whether a Feedback is due: the partner
// reports every ReportInterval, so that one gets through a queue full of
// our voice soon, but a Feedback sums about a second of them
// (feedbackEvery, what the adapter's counts are made for); the first is
// due at once.
func (f *feedbackState) onReports(reports []rtcp.ReceptionReport, ssrc uint32, now time.Time) bool {
	due := false
	for _, r := range reports {
		if ssrc != 0 && r.SSRC != ssrc {
			continue
		}
		f.lost.Store(int64(r.TotalLost))
		if r.LastSenderReport != 0 {
			if rtt := ntpMiddle(now) - r.LastSenderReport - r.Delay; rtt < 1<<31 {
				f.addRTT(time.Duration(rtt)*time.Second/65536, now)
			}
		}
		if f.prev.ok && now.Sub(f.prev.at) < feedbackEvery {
			continue
		}
		due = true
		fraction := uint32(r.FractionLost)
		if span := int64(int32(r.LastSequenceNumber - f.prev.highest)); f.prev.ok && span > 0 && f.ours(span) {
			// The loss over all the reports this Feedback sums.
			fraction = uint32(min(max(int64(r.TotalLost)-f.prev.lost, 0)*256/span, 255))
		}
		f.fractionLost.Store(fraction)
		f.rates(r, now)
		f.at.Store(now.UnixNano())
	}
	return due
}

// The partner's reports and our Feedback: see onReports.
const (
	// ReportInterval is how often each side sends its reception
	// reports: four times pion's second. A drop-tail queue offered 2.5
	// times its rate by periodic voice lets a report through only when
	// it comes between a packet leaving and the next voice packet: about
	// one in eight, so at one a second the first came after 2-12 s in
	// the lab's bottleneck. The cost: 2.6 kbit/s each way.
	ReportInterval = 250 * time.Millisecond
	feedbackEvery  = 950 * time.Millisecond
)

// addRTT takes a report's round trip, which came at now.
func (f *feedbackState) addRTT(rtt time.Duration, now time.Time) {
	f.rtt.Store(int64(rtt))
	keep := 0
	for keep < len(f.rtts) && now.Sub(f.rtts[keep].at) > minRTTWindow {
		keep++
	}
	f.rtts = append(f.rtts[:0], f.rtts[keep:]...)
	f.rtts = append(f.rtts, timedRTT{now, rtt})
	least := rtt
	for _, r := range f.rtts {
		least = min(least, r.rtt)
	}
	f.minRTT.Store(int64(least))
}

// ntpMiddle returns the middle 32 bits of t's NTP timestamp (16.16 fixed
// point seconds), the form RTCP reports use.
func ntpMiddle(t time.Time) uint32 {
	const unixToNTP = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}
