package peer

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/duetapp/duet/audio/codec"
)

// TestMain checks, once every test has passed, that no goroutine is left
// over: Close must stop all that a Peer and pion started. Parallel tests
// share one goroutine count, so the check is once for the package rather
// than in each test. Some of pion's goroutines (DTLS and SCTP readers, the
// ICE agent's loop) end a moment after Close returns, with no event to wait
// on: goleak polls, for up to about 10 s.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type received struct {
	seq     uint16
	ts      uint32
	payload []byte
	kind    codec.Kind
}

// pair connects a host and a guest peer on loopback, relaying candidates
// directly, and returns them with the channels their callbacks feed.
func pair(t *testing.T, guestOpts ...func(*Config)) (host, guest *Peer, hostGot, guestGot chan received, hostCtl, guestCtl chan []byte) {
	t.Helper()
	return pairWith(t, nil, guestOpts)
}

// pairWith is pair with options for the host too.
func pairWith(t *testing.T, hostOpts, guestOpts []func(*Config)) (host, guest *Peer, hostGot, guestGot chan received, hostCtl, guestCtl chan []byte) {
	t.Helper()
	hostGot, guestGot = make(chan received, 1000), make(chan received, 1000)
	hostCtl, guestCtl = make(chan []byte, 10), make(chan []byte, 10)
	var err error
	toGuest := make(chan webrtc.ICECandidateInit, 100)
	toHost := make(chan webrtc.ICECandidateInit, 100)
	newPeer := func(got chan received, ctl chan []byte, out chan webrtc.ICECandidateInit, opts ...func(*Config)) *Peer {
		cfg := Config{
			Loopback: true,
			OnPacket: func(seq uint16, ts uint32, kind codec.Kind, payload []byte) {
				got <- received{seq, ts, bytes.Clone(payload), kind}
			},
			OnCandidate: func(c webrtc.ICECandidateInit) { out <- c },
			OnControl:   func(m []byte) { ctl <- bytes.Clone(m) },
		}
		for _, o := range opts {
			o(&cfg)
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	host = newPeer(hostGot, hostCtl, toGuest, hostOpts...)
	guest = newPeer(guestGot, guestCtl, toHost, guestOpts...)
	offer, err := host.Offer()
	if err != nil {
		t.Fatal(err)
	}
	answer, err := guest.Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Accept(answer); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	hostUp, guestUp := host.Connected(), guest.Connected()
	for hostUp != nil || guestUp != nil {
		select {
		case c := <-toGuest:
			if err := guest.AddCandidate(c); err != nil {
				t.Fatal(err)
			}
		case c := <-toHost:
			if err := host.AddCandidate(c); err != nil {
				t.Fatal(err)
			}
		case <-hostUp:
			hostUp = nil
		case <-guestUp:
			guestUp = nil
		case <-deadline:
			t.Fatal("peers did not connect within 10 s")
		}
	}
	return host, guest, hostGot, guestGot, hostCtl, guestCtl
}

func TestVoiceBothWays(t *testing.T) {
	t.Parallel()
	host, guest, hostGot, guestGot, hostCtl, guestCtl := pair(t)

	// Media may flow a moment after ICE connects (DTLS-SRTP setup): send
	// until the first packet arrives, then check a run of packets in order,
	// across the 16-bit sequence wraparound.
	send := func(from *Peer, got chan received) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		seq := uint16(65530)
		ts := uint32(1 << 31)
		for first := false; !first; {
			if err := from.WriteVoice(codec.Opus, seq, ts, []byte{0xf8, 0xff, 0xfe}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-got:
				first = true
			case <-time.After(20 * time.Millisecond):
			case <-deadline:
				t.Fatal("no voice packet arrived within 10 s")
			}
		}
		for i := range 20 {
			seq++
			ts += 240
			if err := from.WriteVoice(codec.Opus, seq, ts, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for got1 := 0; got1 < 20; {
			select {
			case r := <-got:
				if len(r.payload) != 1 {
					continue // a late copy of the probe packet
				}
				want := uint16(65531 + int(r.payload[0]))
				if r.seq != want || r.ts != uint32(1<<31)+240*uint32(r.payload[0]+1) {
					t.Fatalf("packet %d: seq %d ts %d; want seq %d", r.payload[0], r.seq, r.ts, want)
				}
				got1++
			case <-deadline:
				t.Fatalf("only %d of 20 packets arrived", got1)
			}
		}
	}
	send(guest, hostGot)
	send(host, guestGot)

	for _, tc := range []struct {
		from *Peer
		to   chan []byte
	}{{host, guestCtl}, {guest, hostCtl}} {
		deadline := time.After(10 * time.Second)
		for sent := false; !sent; {
			if err := tc.from.SendControl([]byte(`{"type":"bye"}`)); err == nil {
				sent = true
				break
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-deadline:
				t.Fatal("control channel did not open within 10 s")
			}
		}
		select {
		case m := <-tc.to:
			if string(m) != `{"type":"bye"}` {
				t.Fatalf("control message %q", m)
			}
		case <-deadline:
			t.Fatal("control message did not arrive")
		}
	}

	st := host.Stats()
	if st.Candidate != "host" || st.Relayed {
		t.Errorf("host stats: candidate %q relayed %v, want a direct host candidate", st.Candidate, st.Relayed)
	}
	if st.PacketsSent < 21 || st.PacketsReceived < 21 {
		t.Errorf("host stats: sent %d received %d, want ≥ 21 each", st.PacketsSent, st.PacketsReceived)
	}

	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-guest.Ended():
	case <-time.After(40 * time.Second):
		t.Fatal("guest did not notice the host leaving")
	}
	if err := guest.Close(); err != nil {
		t.Fatal(err)
	}
	if err := guest.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCandidatesBeforeOfferWait(t *testing.T) {
	t.Parallel()
	p, err := New(Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A candidate before the remote description is held, not an error.
	c := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"}
	if err := p.AddCandidate(c); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Answer("v=0 garbage"); err == nil {
		t.Fatal("Answer of a garbage offer succeeded")
	}
}

func TestReceiverReportRTT(t *testing.T) {
	t.Parallel()
	sent := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := sent.Add(30 * time.Millisecond)
	var f feedbackState
	if !f.onReports([]rtcp.ReceptionReport{{
		SSRC:             5,
		TotalLost:        7,
		FractionLost:     13,
		LastSenderReport: ntpMiddle(sent),
		Delay:            uint32(10 * 65536 / 1000), // held 10 ms by the receiver
	}}, 5, now) {
		t.Error("a report on our stream was not taken")
	}
	if rtt := time.Duration(f.rtt.Load()); rtt < 19*time.Millisecond || rtt > 21*time.Millisecond {
		t.Errorf("RTT = %v, want 20 ms", rtt)
	}
	if f.lost.Load() != 7 || f.fractionLost.Load() != 13 {
		t.Errorf("remote lost = %d, fraction %d/256; want 7, 13", f.lost.Load(), f.fractionLost.Load())
	}
	if f.onReports([]rtcp.ReceptionReport{{SSRC: 6, TotalLost: 99}}, 5, now) || f.lost.Load() != 7 {
		t.Error("a report on another stream was taken")
	}
	// Across the 16-bit seconds wraparound of the middle 32 bits.
	sent = time.Unix(65536-2208988800%65536, 0).Add(-5 * time.Millisecond)
	f.onReports([]rtcp.ReceptionReport{{LastSenderReport: ntpMiddle(sent)}}, 0, sent.Add(40*time.Millisecond))
	if rtt := time.Duration(f.rtt.Load()); rtt < 39*time.Millisecond || rtt > 41*time.Millisecond {
		t.Errorf("RTT across wraparound = %v, want 40 ms", rtt)
	}
}

func TestSafetyCode(t *testing.T) {
	t.Parallel()
	host, guest, _, _, _, _ := pair(t)
	defer host.Close()
	defer guest.Close()
	h, err := host.SafetyCode()
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.SafetyCode()
	if err != nil {
		t.Fatal(err)
	}
	if h != g || len(h) != 7 {
		t.Fatalf("host sees %q, guest %q: want the same six digits", h, g)
	}
	// A man in the middle gives each side a different certificate: the
	// codes then differ.
	a, b, m := "SHA-256 AA:01", "SHA-256 BB:02", "SHA-256 EE:66"
	if safetyCode(a, b) != safetyCode(b, a) {
		t.Fatal("the code depends on which side computes it")
	}
	if safetyCode(a, m) == safetyCode(m, b) {
		t.Fatal("a man in the middle yields equal codes")
	}
}

// TestSendFile sends 4 MB through the file channel, which must arrive
// whole and in order while SendFile waits on the channel's buffer.
func TestSendFile(t *testing.T) {
	t.Parallel()
	got := make(chan []byte, 1024)
	host, guest, _, _, _, _ := pair(t, func(c *Config) {
		c.OnFile = func(m []byte) { got <- bytes.Clone(m) }
	})
	defer host.Close()
	defer guest.Close()
	file := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range file {
		file[i] = byte(rng.Uint32())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		for off := 0; off < len(file); off += MaxFileMessage {
			if err := host.SendFile(ctx, file[off:min(off+MaxFileMessage, len(file))]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var recv []byte
	for len(recv) < len(file) {
		select {
		case m := <-got:
			recv = append(recv, m...)
		case <-ctx.Done():
			t.Fatalf("%d of %d bytes arrived", len(recv), len(file))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(recv, file) {
		t.Error("the file arrived changed")
	}
	if err := host.SendFile(ctx, make([]byte, MaxFileMessage+1)); err == nil {
		t.Error("an oversized message was sent")
	}
}

// TestPathRTTAtConnect: ICE's round trip on the selected pair is known to
// both sides as soon as they are connected, before any RTCP, and on
// loopback it is short.
func TestPathRTTAtConnect(t *testing.T) {
	host, guest, _, _, _, _ := pair(t)
	defer host.Close()
	defer guest.Close()
	for name, p := range map[string]*Peer{"host": host, "guest": guest} {
		rtt := p.PathRTT()
		t.Logf("%s: path round trip %v, RTCP's %v", name, rtt, p.Stats().RTT)
		if rtt <= 0 || rtt > 100*time.Millisecond {
			t.Errorf("%s: path round trip %v at connect on loopback", name, rtt)
		}
	}
}
