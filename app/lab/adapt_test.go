package lab

import (
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/impair"
)

// TestLossBringsRedundancy sings over a path losing 4 % of packets: the
// reports turn redundancy on, and the frames it carries fill gaps.
func TestLossBringsRedundancy(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s duet")
	}
	path := impair.Profile{Name: "lossy", Delay: 5 * time.Millisecond, Jitter: time.Millisecond, Loss: impair.Bursty(0.04, 1.2), Seed: 4}
	res, err := Run(t.Context(), Config{
		HostVoice:  testkit.Voice(196, 1, 6),
		GuestVoice: testkit.Voice(330, 2, 6),
		Codec:      codec.Opus, // redundancy is Opus's
		Network:    &path,
		Logger:     testkit.Logger(t),
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
