package peer

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// WireOverhead is what a voice packet costs on the wire beyond its
// payload, in bytes: the RTP header (12, no extensions on our voice), the
// SRTP tag (16, pion's default AEAD AES-GCM profiles) and the IPv4 and
// UDP headers (28). At 200 packets a second it is 89.6 kbit/s, more than
// a 5 ms Opus stream's payload at 64 kbit/s.
const WireOverhead = 12 + 16 + 28

// Feedback is what the partner's RTCP receiver reports say about the path
// our voice takes, for adapting the Opus bitrate and the redundancy (on
// the encoder's goroutine: the encoder is not safe for concurrent use).
//
// There is no congestion controller's target bitrate: pion's GCC (TWCC
// feedback, no-op pacer) was tried and measured on the lab's "mobile" path
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
}

// feedbackState holds the latest Feedback for Peer.Feedback.
type feedbackState struct {
	fractionLost atomic.Uint32 // RTCP's 8-bit fraction, /256
	rtt          atomic.Int64  // nanoseconds, from RTCP receiver reports
	lost         atomic.Int64
}

// onReports takes the partner's reception reports on our voice (stream
// ssrc; 0 takes any): the loss they counted, and the round trip (RFC 3550
// §6.4.1: now − LSR − DLSR, in 1/65536 s, against the clock that stamped
// our sender reports). It reports whether one was about our voice.
func (f *feedbackState) onReports(reports []rtcp.ReceptionReport, ssrc uint32, now time.Time) bool {
	ours := false
	for _, r := range reports {
		if ssrc != 0 && r.SSRC != ssrc {
			continue
		}
		ours = true
		f.lost.Store(int64(r.TotalLost))
		f.fractionLost.Store(uint32(r.FractionLost))
		if r.LastSenderReport == 0 {
			continue
		}
		if rtt := ntpMiddle(now) - r.LastSenderReport - r.Delay; rtt < 1<<31 {
			f.rtt.Store(int64(time.Duration(rtt) * time.Second / 65536))
		}
	}
	return ours
}

// ntpMiddle returns the middle 32 bits of t's NTP timestamp (16.16 fixed
// point seconds), the form RTCP reports use.
func ntpMiddle(t time.Time) uint32 {
	const unixToNTP = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix() + unixToNTP)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}
