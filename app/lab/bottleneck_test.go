package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/peer"
)

// sender is one moment of a session's sending.
type sender struct {
	at             time.Time
	codec          string
	red            int
	packets, bytes int64
}

func sending(st app.Stats) sender {
	return sender{time.Now(), st.Codec, st.Redundancy, st.Peer.PacketsSent, st.Peer.BytesSent}
}

// wireBps is what a session sent between two moments, in bits per second
// on the wire.
func wireBps(a, b sender) float64 {
	bytes := float64(b.bytes-a.bytes) + float64(b.packets-a.packets)*peer.WireOverhead
	return bytes * 8 / b.at.Sub(a.at).Seconds()
}

// watch calls check with the guest's sending every quarter second, a
// second apart, until check says done or the duet nears its end (the
// voice's length from now, less a second); it reports whether check said
// done.
func watch(host, guest *app.Session, length time.Duration, check func(before, now sender) bool) bool {
	end := time.Now().Add(length - time.Second)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last []sender
	for now := range tick.C {
		if now.After(end) {
			return false
		}
		last = append(last, sending(guest.Stats()))
		if len(last) > 4 && check(last[len(last)-5], last[len(last)-1]) {
			return true
		}
	}
	return false
}

// TestBottleneckBacksOff sings over a 120 kbit/s link behind an 80 ms
// queue, both ways, with the codec left to the app: at full quality Duet
// sends 300 kbit/s, and the queue drops half of it. The guest must come
// to send under the link's rate, without redundancy, in Opus (whose
// longer frames carry fewer headers).
func TestBottleneckBacksOff(t *testing.T) {
	if testing.Short() {
		t.Skip("a 14 s duet")
	}
	const seconds = 14
	path := impair.Profile{Name: "bottleneck", Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond,
		RateBps: 120_000, QueueBytes: 1200, Overhead: impair.WireOverhead, Seed: 16}
	var first, fit sender
	var rate float64
	backedOff := false
	_, err := Run(t.Context(), Config{
		HostVoice:  testkit.Voice(196, 1, seconds),
		GuestVoice: testkit.Voice(330, 2, seconds),
		Network:    &path,
		Logger:     testkit.Logger(t),
		Sessions: func(host, guest *app.Session) {
			backedOff = watch(host, guest, seconds*time.Second, func(a, b sender) bool {
				if first.codec == "" {
					first = b
				}
				rate, fit = wireBps(a, b), b
				return rate < 120_000 && b.red == 0 && strings.HasPrefix(b.codec, "Opus ") && !strings.HasPrefix(b.codec, "Opus Custom")
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first %s; then %s with redundancy %d at %.0f bit/s on the wire", first.codec, fit.codec, fit.red, rate)
	if !backedOff {
		t.Errorf("behind a 120 kbit/s link the guest still sends %s with redundancy %d at %.0f bit/s", fit.codec, fit.red, rate)
	}
}

// TestRandomLossKeepsRedundancy: 3 % of packets lost at random, with no
// queue, is loss for redundancy to cover: the guest sends Opus with
// redundancy, in the configured 5 ms frames, and never drops it for a
// budget.
func TestRandomLossKeepsRedundancy(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s duet")
	}
	const seconds = 10
	path := impair.Profile{Name: "random", Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond,
		Loss: impair.GilbertElliott{LossGood: 0.03}, Seed: 17}
	var on, off []string
	_, err := Run(t.Context(), Config{
		HostVoice:  testkit.Voice(196, 1, seconds),
		GuestVoice: testkit.Voice(330, 2, seconds),
		Codec:      codec.Opus,
		Network:    &path,
		Logger:     testkit.Logger(t),
		Sessions: func(host, guest *app.Session) {
			watch(host, guest, seconds*time.Second, func(_, b sender) bool {
				switch {
				case b.red > 0 && b.codec == "Opus 5 ms":
					on = append(on, b.codec)
				case len(on) > 0:
					off = append(off, b.codec) // redundancy dropped, or the frame changed
				}
				return false
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d samples with redundancy in 5 ms frames, %d without after it came: %v", len(on), len(off), off)
	if len(on) == 0 || len(off) > 0 {
		t.Errorf("over 3 %% random loss: redundancy in 5 ms frames in %d samples, then %d without (%v)", len(on), len(off), off)
	}
}
