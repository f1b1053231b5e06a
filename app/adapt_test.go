package app

import (
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/peer"
)

// reports gives feedback a second apart.
type reports struct{ at time.Time }

func (r *reports) next(f peer.Feedback) peer.Feedback {
	if r.at.IsZero() {
		r.at = time.Unix(1000, 0)
	}
	r.at = r.at.Add(time.Second)
	f.At = r.at
	return f
}

func TestAdapter(t *testing.T) {
	a := newAdapter(96000, 240, codec.OpusCustom)
	var rep reports
	ok := peer.Feedback{RTT: 20 * time.Millisecond}
	if r, red := a.update(rep.next(ok), false); r != 96000 || red != 0 {
		t.Fatalf("clean path: %d bps, redundancy %d", r, red)
	}
	if r, red := a.update(rep.next(peer.Feedback{FractionLost: 0.02, RTT: 21 * time.Millisecond}), false); red != 1 || r >= 96000 {
		t.Errorf("2 %% loss: %d bps, redundancy %d; want redundancy 1 at a lower bitrate", r, red)
	}
	if r, red := a.update(rep.next(peer.Feedback{FractionLost: 0.08, RTT: 21 * time.Millisecond}), false); red != 2 || r > 96000*2/5 {
		t.Errorf("8 %% loss: %d bps, redundancy %d; want 2 at ≤ 40 %%", r, red)
	}
	// Queueing: the round trip swells and stays; redundancy goes, what
	// goes on the wire comes down.
	before := a.cost(codec.Opus, a.out, a.frame, a.red)
	for range 3 {
		a.update(rep.next(peer.Feedback{FractionLost: 0.08, RTT: 200 * time.Millisecond}), false)
	}
	if after := a.cost(codec.Opus, a.out, a.frame, a.red); a.red != 0 || after >= before || a.budget == 0 {
		t.Errorf("congested: %d bit/s on the wire (was %d), redundancy %d, budget %d", after, before, a.red, a.budget)
	}
	// Clean again: a few reports later redundancy is off and the rate
	// climbs back to the ceiling, never beyond.
	for range 30 {
		a.update(rep.next(ok), false)
	}
	if a.red != 0 || a.out != 96000 || a.budget != 0 || a.frame != 240 {
		t.Errorf("after a clean while: %d bps in frames of %d, redundancy %d, budget %d", a.out, a.frame, a.red, a.budget)
	}
	if a.rate < minBitrate {
		t.Errorf("rate %d under the floor", a.rate)
	}
}

// TestAdapterConnected: a direct LAN path whose ICE round trip is short
// sends PCM from the start, and the first loss ends it; a slow or
// unmeasured round trip, or a path off the LAN, starts on Opus Custom.
func TestAdapterConnected(t *testing.T) {
	all := func(codec.Kind) bool { return true }
	for _, tc := range []struct {
		lan  bool
		rtt  time.Duration
		want codec.Kind
	}{
		{true, 300 * time.Microsecond, codec.L16},
		{true, 0, codec.OpusCustom},
		{true, 25 * time.Millisecond, codec.OpusCustom},
		{false, 300 * time.Microsecond, codec.OpusCustom},
	} {
		a := newAdapter(96000, 240, codec.OpusCustom)
		a.connected(tc.lan, tc.rtt)
		if got := a.codec(Auto, all); got != tc.want {
			t.Errorf("connected on lan %v, round trip %v: %v, want %v", tc.lan, tc.rtt, got, tc.want)
		}
		if got := a.codec(codec.Opus, all); got != codec.Opus {
			t.Errorf("the singer chose Opus; connected on lan %v, round trip %v: %v", tc.lan, tc.rtt, got)
		}
		if got := a.codec(Auto, func(k codec.Kind) bool { return k == codec.Opus }); got != codec.Opus {
			t.Errorf("a partner with Opus only; connected on lan %v, round trip %v: %v", tc.lan, tc.rtt, got)
		}
	}
	a := newAdapter(96000, 240, codec.OpusCustom)
	a.connected(true, time.Millisecond)
	var rep reports
	// The first report may come before the partner has seen a sender
	// report: no round trip yet, which ends nothing.
	a.update(rep.next(peer.Feedback{}), true)
	if got := a.codec(Auto, all); got != codec.L16 {
		t.Errorf("PCM from the start, then a report with no round trip yet: %v, want L16", got)
	}
	a.update(rep.next(peer.Feedback{RTT: time.Millisecond, FractionLost: 0.02}), true)
	if got := a.codec(Auto, all); got != codec.OpusCustom {
		t.Errorf("PCM from the start, then a loss: %v, want Opus Custom", got)
	}
}

// TestAdapterCodec walks the codec rule under Auto: Opus Custom, PCM
// after three clean reports on the LAN, back at the first loss (or the
// second slow round trip in a row), PCM again
// only after twice as long; Opus with redundancy under heavy loss; the
// singer's own choice kept; what the partner lacks never chosen.
func TestAdapterCodec(t *testing.T) {
	all := func(codec.Kind) bool { return true }
	clean := peer.Feedback{RTT: time.Millisecond}
	lossy := peer.Feedback{RTT: time.Millisecond, FractionLost: 0.02}
	heavy := peer.Feedback{RTT: time.Millisecond, FractionLost: 0.08}
	a := newAdapter(96000, 240, codec.OpusCustom)
	var rep reports
	step := func(f peer.Feedback, lan bool, want codec.Kind) {
		t.Helper()
		a.update(rep.next(f), lan)
		if got := a.codec(Auto, all); got != want {
			t.Fatalf("after %+v (lan %v): %v, want %v", f, lan, got, want)
		}
	}
	if got := a.codec(Auto, all); got != codec.OpusCustom {
		t.Fatalf("before any report: %v", got)
	}
	step(clean, true, codec.OpusCustom)
	step(clean, true, codec.OpusCustom)
	step(clean, true, codec.L16) // three clean reports
	step(clean, true, codec.L16)
	step(lossy, true, codec.OpusCustom) // the first loss
	for range 5 {
		step(clean, true, codec.OpusCustom) // now six are needed
	}
	step(clean, true, codec.L16)
	// A slow round trip, or a path off the LAN, is no place for PCM; one
	// slow report alone (a busy machine) is forgiven, two in a row are not.
	slow := peer.Feedback{RTT: 15 * time.Millisecond}
	step(slow, true, codec.L16)
	step(clean, true, codec.L16)
	step(slow, true, codec.L16)
	step(slow, true, codec.OpusCustom)
	for range 20 {
		step(clean, false, codec.OpusCustom)
	}
	// Heavy loss: Opus, whose frames RED can repeat.
	step(heavy, false, codec.Opus)
	if a.red != 2 {
		t.Errorf("redundancy %d under heavy loss", a.red)
	}
	for range cleanToRecover - 1 {
		step(clean, false, codec.Opus)
	}
	step(clean, false, codec.OpusCustom)
	// Queueing: a budget, and Opus under it (Opus Custom's 375 packets a
	// second cost the most in headers); Opus Custom when the budget has
	// climbed back to what it costs.
	for range 20 {
		a.update(rep.next(clean), false) // back to the full rate
	}
	for range 3 {
		a.update(rep.next(peer.Feedback{RTT: 80 * time.Millisecond}), false)
	}
	if a.budget == 0 || a.codec(Auto, all) != codec.Opus {
		t.Fatalf("a round trip 79 ms over its least: budget %d, %v", a.budget, a.codec(Auto, all))
	}
	for i := 0; a.codec(Auto, all) == codec.Opus; i++ {
		if a.update(rep.next(clean), false); i > 30 {
			t.Fatalf("still Opus at a budget of %d after 30 clean reports", a.budget)
		}
	}
	if a.budget != 0 {
		t.Errorf("Opus Custom back under a budget of %d", a.budget)
	}
	if got := bitrateFor(codec.OpusCustom, a.out, a.base); got < minCustomBitrate {
		t.Errorf("Opus Custom back at %d b/s", got)
	}
	// The singer's choice stands; what the partner lacks is not chosen.
	if got := a.codec(codec.L24, all); got != codec.L24 {
		t.Errorf("chosen L24, got %v", got)
	}
	opusOnly := func(k codec.Kind) bool { return k == codec.Opus }
	for range 12 {
		a.update(rep.next(clean), true)
	}
	if got := a.codec(Auto, opusOnly); got != codec.Opus {
		t.Errorf("with a partner that has only Opus: %v", got)
	}
	if got := a.codec(Auto, func(k codec.Kind) bool { return k != codec.L16 }); got != codec.OpusCustom {
		t.Errorf("with a partner without L16: %v", got)
	}
}

func TestLanPath(t *testing.T) {
	for _, tc := range []struct {
		st   peer.Stats
		want bool
	}{
		{peer.Stats{Candidate: "host", Address: "127.0.0.1:5000"}, true},
		{peer.Stats{Candidate: "host", Address: "192.168.1.20:5000"}, true},
		{peer.Stats{Candidate: "host", Address: "[fe80::1]:5000"}, true},
		{peer.Stats{Candidate: "host", Address: "[::ffff:10.0.0.2]:5000"}, true},
		{peer.Stats{Candidate: "host", Address: "203.0.113.5:5000"}, false},
		{peer.Stats{Candidate: "srflx", Address: "192.168.1.20:5000"}, false},
		{peer.Stats{Candidate: "host", Relayed: true, Address: "10.0.0.2:5000"}, false},
		{peer.Stats{Candidate: "host", Address: "garbage"}, false},
		{peer.Stats{}, false},
	} {
		if got := lanPath(tc.st); got != tc.want {
			t.Errorf("lanPath(%+v) = %v, want %v", tc.st, got, tc.want)
		}
	}
}

// TestAdapterBottleneck: the partner receives 120 kbit/s of the 300 we
// send and loses over half: redundancy stays off, and what is sent fits
// a budget under the link's rate, in Opus frames of 10 ms or more (a
// 5 ms stream's headers alone are 90 kbit/s). When the path clears, full
// quality comes back.
func TestAdapterBottleneck(t *testing.T) {
	all := func(codec.Kind) bool { return true }
	a := newAdapter(96000, 240, codec.OpusCustom)
	var rep reports
	a.codec(Auto, all)
	a.update(rep.next(peer.Feedback{RTT: 140 * time.Millisecond, FractionLost: 0.58, SentRate: 300_000, ReceivedRate: 120_000}), false)
	k := a.codec(Auto, all)
	cost := a.cost(k, a.out, a.frame, a.red)
	t.Logf("budget %d: %v at %d bit/s in frames of %d, redundancy %d: %d bit/s on the wire", a.budget, k, a.out, a.frame, a.red, cost)
	if a.red != 0 || k != codec.Opus || a.frame < 480 || a.budget == 0 || a.budget >= 120_000 || cost > a.budget {
		t.Fatalf("behind a 120 kbit/s queue: budget %d, %v at %d bit/s in frames of %d, redundancy %d", a.budget, k, a.out, a.frame, a.red)
	}
	// The queue drains; the sender stays under the link, but for a
	// probe a few per cent over it now and then.
	for range 5 {
		a.update(rep.next(peer.Feedback{RTT: 60 * time.Millisecond, SentRate: cost, ReceivedRate: cost}), false)
		if a.budget == 0 || a.budget > 120_000*105/100 {
			t.Fatalf("budget %d over the link's 120 kbit/s", a.budget)
		}
	}
	for i := range 20 {
		a.update(rep.next(peer.Feedback{RTT: 60 * time.Millisecond}), false)
		if a.codec(Auto, all) == codec.OpusCustom {
			t.Logf("full quality %d clean reports later", i+1)
			if a.frame != 240 || a.out != 96000 || a.budget != 0 {
				t.Errorf("Opus Custom at %d bit/s, frame %d, budget %d", a.out, a.frame, a.budget)
			}
			return
		}
	}
	t.Errorf("20 clean reports later: %v at %d bit/s in frames of %d, budget %d", a.codec(Auto, all), a.out, a.frame, a.budget)
}

// TestAdapterBudgetLeavesOther: 40 kbit/s of data channels and RTCP
// cross the same 120 kbit/s bottleneck as the voice: the voice settles
// where both fit under the link (a probe goes 3 % over it), not where
// the voice alone would.
func TestAdapterBudgetLeavesOther(t *testing.T) {
	const link, other = 120_000, 40_000
	all := func(codec.Kind) bool { return true }
	a := newAdapter(96000, 240, codec.OpusCustom)
	var rep reports
	a.codec(Auto, all)
	// Behind the full queue the voice gets its share of the link.
	a.update(rep.next(peer.Feedback{RTT: 140 * time.Millisecond, FractionLost: 0.6, SentRate: 300_000,
		ReceivedRate: link * 300 / 340, OtherRate: other}), false)
	for i := range 4 { // before a probe
		k := a.codec(Auto, all)
		cost := a.cost(k, a.out, a.frame, a.red)
		if cost+other > link*103/100 {
			t.Fatalf("report %d: the voice costs %d bit/s on the wire, and %d more cross the %d bit/s link", i+1, cost, other, link)
		}
		a.update(rep.next(peer.Feedback{RTT: 60 * time.Millisecond, SentRate: cost, ReceivedRate: cost, OtherRate: other}), false)
	}
	if cost := a.cost(a.codec(Auto, all), a.out, a.frame, a.red); cost+other < link*3/4 {
		t.Errorf("settled at %d bit/s of voice and %d else on a %d bit/s link", cost, other, link)
	}
}

// TestAdapterRandomLoss: 3 % loss and a jittery round trip that does not
// grow is random loss: redundancy stays on, and no budget or longer frame
// comes.
func TestAdapterRandomLoss(t *testing.T) {
	a := newAdapter(96000, 240, codec.OpusCustom)
	var rep reports
	for i := range 120 {
		jitter := time.Duration(i*7919%23) * time.Millisecond // 0–22 ms, in no order
		a.update(rep.next(peer.Feedback{RTT: 80*time.Millisecond + jitter, FractionLost: 0.03, SentRate: 200_000, ReceivedRate: 194_000}), false)
		if a.red == 0 || a.budget != 0 || a.frame != 240 {
			t.Fatalf("report %d: redundancy %d, budget %d, frame %d", i+1, a.red, a.budget, a.frame)
		}
	}
}

// TestAdapterRedundancyWithinBudget: random loss on a path that found a
// bottleneck before gets redundancy only as deep as the budget carries:
// what is sent stays within it.
func TestAdapterRedundancyWithinBudget(t *testing.T) {
	all := func(codec.Kind) bool { return true }
	for _, link := range []int{60_000, 90_000, 120_000, 200_000} {
		a := newAdapter(96000, 240, codec.OpusCustom)
		var rep reports
		a.codec(Auto, all)
		a.update(rep.next(peer.Feedback{RTT: 140 * time.Millisecond, FractionLost: 0.5, SentRate: 2 * link, ReceivedRate: link}), false)
		deepest := 0
		for _, loss := range []float64{0.06, 0.06, 0.02, 0.08, 0.06} {
			a.update(rep.next(peer.Feedback{RTT: 60 * time.Millisecond, FractionLost: loss, SentRate: link, ReceivedRate: link}), false)
			k := a.codec(Auto, all)
			deepest = max(deepest, a.red)
			if cost := a.cost(k, a.out, a.frame, a.red); a.budget == 0 || cost > a.budget {
				t.Fatalf("link %d, loss %.2f: %v at %d bit/s, frame %d, redundancy %d: %d bit/s on the wire, budget %d",
					link, loss, k, a.out, a.frame, a.red, cost, a.budget)
			}
		}
		t.Logf("link %d kbit/s: budget %d, redundancy up to %d", link/1000, a.budget, deepest)
		if link >= 200_000 && deepest < 2 {
			t.Errorf("link %d: redundancy at most %d where the budget %d carries two frames", link, deepest, a.budget)
		}
	}
}
