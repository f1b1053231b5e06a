package peer

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestFeedbackRates: from two reports a second apart, what we sent on the
// wire (payload and WireOverhead per packet) and what the partner
// received of it, from its highest sequence number and loss count, across
// the 16-bit sequence number's wraparound.
func TestFeedbackRates(t *testing.T) {
	t.Parallel()
	var packets, bytes int64
	f := feedbackState{sent: func() (int64, int64) { return packets, bytes }}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	report := func(highest, lost uint32) Feedback {
		f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: highest, TotalLost: lost}}, 5, at)
		return f.feedback()
	}
	packets, bytes = 100, 6000
	if fb := report(65500, 3); fb.SentRate != 0 || fb.ReceivedRate != 0 || !fb.At.Equal(at) {
		t.Fatalf("first report: %+v; want no rates yet, At %v", fb, at)
	}
	// A second later: 200 packets of 60 bytes more, the partner's highest
	// 200 on (past 65535), 100 more of them lost.
	at = at.Add(time.Second)
	packets, bytes = 300, 18000
	fb := report(65500+200, 103)
	wantSent := 200 * (60 + WireOverhead) * 8
	if fb.SentRate != wantSent || fb.ReceivedRate != wantSent/2 {
		t.Errorf("sent %d, received %d bit/s; want %d and %d", fb.SentRate, fb.ReceivedRate, wantSent, wantSent/2)
	}
	// Nothing sent meanwhile: no rates.
	at = at.Add(time.Second)
	if fb := report(65700, 103); fb.SentRate != 0 || fb.ReceivedRate != 0 {
		t.Errorf("a report after nothing sent: %+v", fb)
	}
}

// TestFeedbackOtherRate: what else crossed the path (everything the
// selected candidate pair sent, with IP and UDP headers, less the voice);
// nothing known across a change of path, whose counts start again.
func TestFeedbackOtherRate(t *testing.T) {
	t.Parallel()
	var packets, bytes int64
	path := pathCount{ok: true}
	f := feedbackState{
		sent: func() (int64, int64) { return packets, bytes },
		path: func() (uint64, uint64, bool) { return path.packets, path.bytes, path.ok },
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	report := func(highest uint32) Feedback {
		f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: highest}}, 5, at)
		return f.feedback()
	}
	packets, bytes, path.packets, path.bytes = 100, 6000, 150, 20000
	report(100)
	// A second later: 200 voice packets of 60 bytes of payload (88 with
	// RTP's header and SRTP's tag) and 30 others of 100 bytes.
	at = at.Add(time.Second)
	packets, bytes = 300, 18000
	path.packets += 230
	path.bytes += 200*(60+12+16) + 30*100
	if fb := report(300); fb.OtherRate != 30*(100+28)*8 {
		t.Errorf("other %d bit/s, want %d", fb.OtherRate, 30*(100+28)*8)
	}
	// A new path: its counts start from nothing.
	at = at.Add(time.Second)
	packets, bytes = 500, 30000
	path.packets, path.bytes = 210, 200*88+10*100
	if fb := report(500); fb.OtherRate != 0 || fb.SentRate == 0 {
		t.Errorf("across a change of path: other %d bit/s (want 0, not known), sent %d", fb.OtherRate, fb.SentRate)
	}
}

// TestFeedbackSpanNotOurs: a report whose sequence numbers say far more
// packets came than we sent since the report before (a first report that
// stands for packets before ours) gives RTCP's own loss and no received
// rate, not a loss and a rate over packets we never sent.
func TestFeedbackSpanNotOurs(t *testing.T) {
	t.Parallel()
	var packets, bytes int64
	f := feedbackState{sent: func() (int64, int64) { return packets, bytes }}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: 7}}, 5, at)
	// A second later: 375 sent, 225 of them lost (60 %, RTCP's 153/256),
	// but the highest is 23,000 on.
	at = at.Add(time.Second)
	packets, bytes = 375, 375*60
	f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: 23_007, TotalLost: 225, FractionLost: 153}}, 5, at)
	if fb := f.feedback(); fb.FractionLost != 153.0/256 || fb.ReceivedRate != 0 || fb.SentRate == 0 {
		t.Errorf("lost %.3f, received %d bit/s, sent %d; want RTCP's %.3f, not known, and what we sent", fb.FractionLost, fb.ReceivedRate, fb.SentRate, 153.0/256)
	}
}

// TestFeedbackRatesBySize: what the partner received is counted at the
// sizes its packets were sent at, though we send smaller packets now
// (a change of codec or frame between the two): the packets between its
// reports' highest sequence numbers, less those lost.
func TestFeedbackRatesBySize(t *testing.T) {
	t.Parallel()
	var f feedbackState
	var packets, bytes int64
	f.sent = func() (int64, int64) { return packets, bytes }
	seq := uint16(65500)
	send := func(n, size int) {
		for range n {
			f.sentPacket(seq, size)
			seq++
			packets++
			bytes += int64(size - 12)
		}
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	send(10, 212)
	f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: 65509}}, 5, at)
	send(200, 212) // 200 B of payload: these the partner reports on
	send(300, 112) // then 100 B ones
	at = at.Add(time.Second)
	f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: 65509 + 200, TotalLost: 20}}, 5, at)
	fb := f.feedback()
	wantReceived := 180 * (200 + WireOverhead) * 8
	wantSent := (200*(200+WireOverhead) + 300*(100+WireOverhead)) * 8
	if fb.ReceivedRate != wantReceived || fb.SentRate != wantSent {
		t.Errorf("received %d, sent %d bit/s; want %d and %d", fb.ReceivedRate, fb.SentRate, wantReceived, wantSent)
	}
}

// TestFeedbackEverySecond: the partner reports every ReportInterval; the
// first report is told at once, then a Feedback sums about a second of
// them, with the loss over them all.
func TestFeedbackEverySecond(t *testing.T) {
	t.Parallel()
	var packets int64
	f := feedbackState{sent: func() (int64, int64) { return packets, packets * 60 }}
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	highest, lost := uint32(1000), uint32(0)
	report := func(got, lostNow uint32, fraction uint8) bool {
		at = at.Add(ReportInterval)
		packets += int64(got + lostNow)
		highest, lost = highest+got+lostNow, lost+lostNow
		return f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSequenceNumber: highest, TotalLost: lost, FractionLost: fraction}}, 5, at)
	}
	if !report(25, 25, 128) {
		t.Fatal("the first report told nothing")
	}
	var told []int
	for i := range 8 {
		if report(49, 1, 5) {
			told = append(told, i)
		}
	}
	if len(told) != 2 || told[0] != 3 {
		t.Errorf("reports told among 8 a quarter second apart: %v; want the 4th and 8th", told)
	}
	if fb := f.feedback(); fb.FractionLost < 0.015 || fb.FractionLost > 0.025 {
		t.Errorf("loss over a second of reports losing 1 in 50: %.3f", fb.FractionLost)
	}
}

// TestFeedbackMinRTT: one report's stalled round trip shows in RTT, not in
// MinRTT; a path that got longer shows in MinRTT once the shorter one's
// reports are older than its window.
func TestFeedbackMinRTT(t *testing.T) {
	t.Parallel()
	var f feedbackState
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	report := func(rtt time.Duration) Feedback {
		at = at.Add(5 * time.Second)
		sent := at.Add(-rtt)
		f.onReports([]rtcp.ReceptionReport{{SSRC: 5, LastSenderReport: ntpMiddle(sent)}}, 5, at)
		return f.feedback()
	}
	near := func(got, want time.Duration) bool { return (got - want).Abs() < time.Millisecond }
	if fb := report(2 * time.Millisecond); !near(fb.MinRTT, 2*time.Millisecond) {
		t.Fatalf("after one report of 2 ms: MinRTT %v", fb.MinRTT)
	}
	if fb := report(54 * time.Millisecond); !near(fb.RTT, 54*time.Millisecond) || !near(fb.MinRTT, 2*time.Millisecond) {
		t.Errorf("after a stalled report of 54 ms: RTT %v, MinRTT %v; want 54 ms, 2 ms", fb.RTT, fb.MinRTT)
	}
	var fb Feedback
	for range int(minRTTWindow/(5*time.Second)) + 1 {
		fb = report(20 * time.Millisecond) // a relay now
	}
	if !near(fb.MinRTT, 20*time.Millisecond) {
		t.Errorf("after %v of reports of 20 ms: MinRTT %v", minRTTWindow, fb.MinRTT)
	}
	if len(f.rtts) > int(minRTTWindow/(5*time.Second))+1 {
		t.Errorf("%d round trips kept of %v at one in 5 s", len(f.rtts), minRTTWindow)
	}
}
