package peer

import (
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/clock"
)

type stamped struct {
	stamp uint32
	at    int64
}

// TestSendTimes: a guest with a clock stamps its voice packets, at most
// one every stampEvery, with that clock; the host reads each stamp with
// the time on its own clock (here 5 s ahead) it read the packet, and the
// trip so measured is the loopback's: not negative, not long.
func TestSendTimes(t *testing.T) {
	t.Parallel()
	base := time.Now()
	const ahead = int64(5 * time.Second)
	guestNow := func() int64 { return int64(time.Since(base)) }
	hostNow := func() int64 { return int64(time.Since(base)) + ahead }
	stamps := make(chan stamped, 1000)
	host, guest, hostGot, _, _, _ := pairWith(t,
		[]func(*Config){func(c *Config) {
			c.Now = hostNow
			c.OnSendTime = func(s uint32, at int64) { stamps <- stamped{s, at} }
		}},
		[]func(*Config){func(c *Config) { c.Now = guestNow }})
	defer host.Close()
	defer guest.Close()
	seq, ts := startVoice(t, guest, hostGot)
	drainStamps := func() {
		for {
			select {
			case <-stamps:
			default:
				return
			}
		}
	}
	drainStamps()
	// 200 packets a millisecond apart: about 50 stamped.
	start := guestNow()
	for range 200 {
		if err := guest.WriteVoice(codec.Opus, seq, ts, []byte{0xf8}); err != nil {
			t.Fatal(err)
		}
		seq++
		ts += 48
		time.Sleep(time.Millisecond)
	}
	// A last packet, stampEvery after the others: it carries a stamp.
	time.Sleep(stampEvery)
	end := guestNow()
	if err := guest.WriteVoice(codec.Opus, seq, ts, []byte{0xf8}); err != nil {
		t.Fatal(err)
	}
	var got []stamped
	deadline := time.After(10 * time.Second)
	for len(got) == 0 || clock.Unstamp(got[len(got)-1].stamp, end) < end-int64(time.Microsecond) {
		select {
		case s := <-stamps:
			if sent := clock.Unstamp(s.stamp, s.at-ahead); sent >= start-int64(time.Microsecond) {
				got = append(got, s)
			}
		case <-deadline:
			t.Fatalf("%d stamps came within 10 s, not the last packet's", len(got))
		}
	}
	if max := int((end-start)/int64(stampEvery)) + 2; len(got) > max {
		t.Errorf("%d stamps on packets over %v, want at most one every %v (%d)", len(got), time.Duration(end-start), stampEvery, max)
	}
	if len(got) < 10 {
		t.Errorf("only %d of the packets were stamped", len(got))
	}
	for i, s := range got {
		sent := clock.Unstamp(s.stamp, s.at-ahead)
		if trip := s.at - ahead - sent; trip < -int64(time.Microsecond) || trip > int64(time.Second) {
			t.Errorf("packet %d: a trip of %v on loopback", i, time.Duration(trip))
		}
		if i > 0 {
			if gap := sent - clock.Unstamp(got[i-1].stamp, sent); gap < int64(stampEvery)-int64(time.Microsecond) {
				t.Errorf("stamps %d and %d are %v apart, want ≥ %v", i-1, i, time.Duration(gap), stampEvery)
			}
		}
	}
}

// TestNoSendTimesFromAPeerWithout: a partner that does not offer the
// extension (a browser, or a peer without a clock) gets no stamps and
// sends none; the voice flows as ever.
func TestNoSendTimesFromAPeerWithout(t *testing.T) {
	t.Parallel()
	stamps := make(chan stamped, 1000)
	base := time.Now()
	withClock := func(c *Config) {
		c.Now = func() int64 { return int64(time.Since(base)) }
		c.OnSendTime = func(s uint32, at int64) { stamps <- stamped{s, at} }
	}
	host, guest, hostGot, guestGot, _, _ := pairWith(t, []func(*Config){withClock}, nil)
	defer host.Close()
	defer guest.Close()
	startVoice(t, guest, hostGot)
	startVoice(t, host, guestGot)
	if host.track.sendTime() != 0 {
		t.Error("the host stamps its voice for a guest that did not accept the extension")
	}
	select {
	case s := <-stamps:
		t.Fatalf("the host read a stamp %+v from a guest without a clock", s)
	default:
	}
}

// TestSendTimeOffered: the extension is in the offer only with a clock.
func TestSendTimeOffered(t *testing.T) {
	t.Parallel()
	for _, now := range []func() int64{nil, func() int64 { return 0 }} {
		p, err := New(Config{Loopback: true, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		offer, err := p.Offer()
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Contains(offer, SendTimeURI), now != nil; got != want {
			t.Errorf("clock set %v: send-time extension in the offer %v", want, got)
		}
	}
}
