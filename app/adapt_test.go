package app

import (
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/peer"
)

func TestAdapter(t *testing.T) {
	a := newAdapter(96000)
	ok := peer.Feedback{RTT: 20 * time.Millisecond}
	if r, red := a.update(ok, false); r != 96000 || red != 0 {
		t.Fatalf("clean path: %d bps, redundancy %d", r, red)
	}
	if r, red := a.update(peer.Feedback{FractionLost: 0.02, RTT: 21 * time.Millisecond}, false); red != 1 || r >= 96000 {
		t.Errorf("2 %% loss: %d bps, redundancy %d; want redundancy 1 at a lower bitrate", r, red)
	}
	if r, red := a.update(peer.Feedback{FractionLost: 0.08, RTT: 21 * time.Millisecond}, false); red != 2 || r > 96000*2/5 {
		t.Errorf("8 %% loss: %d bps, redundancy %d; want 2 at ≤ 40 %%", r, red)
	}
	// Queueing: the round trip swells; redundancy goes, the rate steps down.
	before := a.rate
	if r, red := a.update(peer.Feedback{FractionLost: 0.08, RTT: 200 * time.Millisecond}, false); red != 0 || r >= before {
		t.Errorf("congested: %d bps (was %d), redundancy %d", r, before, red)
	}
	// Clean again: a few reports later redundancy is off and the rate
	// climbs back to the ceiling, never beyond.
	for range 30 {
		a.update(ok, false)
	}
	if a.red != 0 || a.rate != 96000 {
		t.Errorf("after a clean while: %d bps, redundancy %d", a.rate, a.red)
	}
	if a.rate < minBitrate {
		t.Errorf("rate %d under the floor", a.rate)
	}
}

// TestAdapterCodec walks the codec rule under Auto: Opus Custom, PCM
// after three clean reports on the LAN, back at the first loss, PCM again
// only after twice as long; Opus with redundancy under heavy loss; the
// singer's own choice kept; what the partner lacks never chosen.
func TestAdapterCodec(t *testing.T) {
	all := func(codec.Kind) bool { return true }
	clean := peer.Feedback{RTT: time.Millisecond}
	lossy := peer.Feedback{RTT: time.Millisecond, FractionLost: 0.02}
	heavy := peer.Feedback{RTT: time.Millisecond, FractionLost: 0.08}
	a := newAdapter(96000)
	step := func(f peer.Feedback, lan bool, want codec.Kind) {
		t.Helper()
		a.update(f, lan)
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
	// A slow round trip, or a path off the LAN, is no place for PCM.
	step(peer.Feedback{RTT: 15 * time.Millisecond}, true, codec.OpusCustom)
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
	// Queueing steps the rate down: below half the configured one, Opus,
	// whose frames keep a voice at low rates; Opus Custom when it climbs
	// back.
	for range 20 {
		a.update(clean, false) // back to the full rate
	}
	for i, want := range []codec.Kind{codec.OpusCustom, codec.OpusCustom, codec.Opus} { // 72, 54, 40.5 kb/s
		if a.update(peer.Feedback{RTT: 80 * time.Millisecond}, false); a.codec(Auto, all) != want {
			t.Fatalf("congested report %d, rate %d: %v, want %v", i+1, a.rate, a.codec(Auto, all), want)
		}
	}
	for a.codec(Auto, all) == codec.Opus {
		if a.update(clean, false); a.rate*2 < a.base && a.codec(Auto, all) != codec.Opus {
			t.Fatalf("Opus Custom back at %d b/s", a.rate)
		}
	}
	if got := bitrateFor(codec.OpusCustom, a.rate, a.base); got < minCustomBitrate {
		t.Errorf("Opus Custom back at %d b/s", got)
	}
	// The singer's choice stands; what the partner lacks is not chosen.
	if got := a.codec(codec.L24, all); got != codec.L24 {
		t.Errorf("chosen L24, got %v", got)
	}
	opusOnly := func(k codec.Kind) bool { return k == codec.Opus }
	for range 12 {
		a.update(clean, true)
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
