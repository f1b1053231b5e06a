package app

import (
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/peer"
)

func TestAdapter(t *testing.T) {
	a := newAdapter(96000)
	ok := peer.Feedback{RTT: 20 * time.Millisecond}
	if r, red := a.update(ok); r != 96000 || red != 0 {
		t.Fatalf("clean path: %d bps, redundancy %d", r, red)
	}
	if r, red := a.update(peer.Feedback{FractionLost: 0.02, RTT: 21 * time.Millisecond}); red != 1 || r >= 96000 {
		t.Errorf("2 %% loss: %d bps, redundancy %d; want redundancy 1 at a lower bitrate", r, red)
	}
	if r, red := a.update(peer.Feedback{FractionLost: 0.08, RTT: 21 * time.Millisecond}); red != 2 || r > 96000*2/5 {
		t.Errorf("8 %% loss: %d bps, redundancy %d; want 2 at ≤ 40 %%", r, red)
	}
	// Queueing: the round trip swells; redundancy goes, the rate steps down.
	before := a.rate
	if r, red := a.update(peer.Feedback{FractionLost: 0.08, RTT: 200 * time.Millisecond}); red != 0 || r >= before {
		t.Errorf("congested: %d bps (was %d), redundancy %d", r, before, red)
	}
	// Clean again: a few reports later redundancy is off and the rate
	// climbs back to the ceiling, never beyond.
	for range 30 {
		a.update(ok)
	}
	if a.red != 0 || a.rate != 96000 {
		t.Errorf("after a clean while: %d bps, redundancy %d", a.rate, a.red)
	}
	if a.rate < minBitrate {
		t.Errorf("rate %d under the floor", a.rate)
	}
}

// TestLossBringsRedundancy sings over a path losing 4 % of packets: the
// reports turn redundancy on, and the frames it carries fill gaps.
func TestLossBringsRedundancy(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s duet")
	}
	path := impair.Profile{Name: "lossy", Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: impair.Bursty(0.04, 1.2), Seed: 4}
	res, err := RunLocal(t.Context(), LocalConfig{
		HostVoice:  voice(196, 1, 6),
		GuestVoice: voice(330, 2, 6),
		Codec:      codec.Opus, // redundancy is Opus's
		Network:    &path,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	g, h := res.GuestStats, res.HostStats
	t.Logf("guest sends at %d bps with redundancy %d; the host lost %d, recovered %d (RED packets %d)",
		g.Bitrate, g.Redundancy, h.Voice.PacketsLost, h.Peer.FramesRecovered, h.Peer.REDPacketsReceived)
	if g.Redundancy == 0 || g.Bitrate >= 96000 {
		t.Errorf("over a lossy path the guest sends %d bps with redundancy %d", g.Bitrate, g.Redundancy)
	}
	if h.Peer.FramesRecovered == 0 {
		t.Error("no frame recovered from redundancy")
	}
}
