package peer

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/impair"
)

// frameBytes is a 96 kb/s Opus frame of 5 ms.
const frameBytes = 60

// voiceFrame is a test frame that names its packet index.
func voiceFrame(i int) []byte {
	b := make([]byte, frameBytes)
	binary.BigEndian.PutUint32(b, uint32(i))
	return b
}

// startVoice sends probe frames from one peer until one arrives, and
// returns the sequence number and timestamp to go on from; got is fed by
// the other peer's OnPacket.
func startVoice(t *testing.T, from *Peer, got chan received) (uint16, uint32) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	seq, ts := uint16(65000), uint32(1<<32-100_000)
	for {
		if err := from.WriteVoice(codec.Opus, seq, ts, []byte{0xf8}); err != nil {
			t.Fatal(err)
		}
		seq++
		ts += 240
		select {
		case <-got:
			return seq, ts
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatal("no voice packet arrived within 10 s")
		}
	}
}

// drain empties a channel fed by OnPacket.
func drain(c chan received) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestRedundancyOnOff sends frames without and with redundancy and checks
// what goes over the wire: plain Opus packets, then RED ones a frame
// larger; garbage RED packets in between are counted and dropped.
func TestRedundancyOnOff(t *testing.T) {
	t.Parallel()
	host, guest, hostGot, _, _, _ := pair(t)
	seq, ts := startVoice(t, guest, hostGot)
	// Let the probes' stragglers arrive: wait for a marker frame.
	send := func(n int) (first uint16) {
		t.Helper()
		first = seq
		for i := range n {
			if err := guest.WriteVoice(codec.Opus, seq, ts, voiceFrame(i)); err != nil {
				t.Fatal(err)
			}
			seq++
			ts += 240
		}
		return first
	}
	// receive waits for the frames first…first+n-1 (loopback loses none).
	receive := func(first uint16, n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for n > 0 {
			select {
			case r := <-hostGot:
				if d := r.seq - first; int(d) < n && len(r.payload) == frameBytes {
					if i := binary.BigEndian.Uint32(r.payload); int(i) != int(d) {
						t.Fatalf("frame %d carries %d", d, i)
					}
					if r.seq == first+uint16(n)-1 {
						return
					}
				}
			case <-deadline:
				t.Fatal("frames did not arrive within 10 s")
			}
		}
	}
	receive(send(1), 1)
	drain(hostGot)
	g0, h0 := guest.Stats(), host.Stats()

	// Off: plain Opus, the bytes are the frames'.
	receive(send(50), 50)
	g1, h1 := guest.Stats(), host.Stats()
	if n := g1.REDPacketsSent - g0.REDPacketsSent; n != 0 {
		t.Errorf("redundancy 0 sent %d RED packets", n)
	}
	if n, b := g1.PacketsSent-g0.PacketsSent, g1.BytesSent-g0.BytesSent; n != 50 || b != 50*frameBytes {
		t.Errorf("redundancy 0: %d packets, %d bytes; want 50 of %d", n, b, frameBytes)
	}
	if n, b := h1.PacketsReceived-h0.PacketsReceived, h1.BytesReceived-h0.BytesReceived; n != 50 || b != 50*frameBytes || h1.REDPacketsReceived != 0 {
		t.Errorf("redundancy 0 received %d packets of %d bytes, %d RED", n, b, h1.REDPacketsReceived)
	}

	// Garbage with the RED payload type, straight onto the track.
	for _, g := range [][]byte{{}, {0x80}, {0xef, 0, 0, 5, 111, 1}, {0x80 | 111, 0xff, 0xff, 0xff, 111}, {5, 1, 2}} {
		h := rtp.Header{Version: 2, PayloadType: 63, SequenceNumber: seq, Timestamp: ts}
		if _, err := guest.track.write(&h, g); err != nil {
			t.Fatal(err)
		}
		seq++
		ts += 240
	}

	// On: each packet carries the previous frame, but the first: the one
	// before it is the garbage's number, which WriteVoice did not send.
	guest.SetRedundancy(1)
	receive(send(50), 50)
	g2, h2 := guest.Stats(), host.Stats()
	if n, b := g2.REDPacketsSent-g1.REDPacketsSent, g2.BytesSent-g1.BytesSent; n != 49 || b != 50*frameBytes+49*(1+4+frameBytes) {
		t.Errorf("redundancy 1: %d RED packets, %d bytes", n, b)
	}
	if n := h2.REDPacketsReceived - h1.REDPacketsReceived; n != 49 {
		t.Errorf("redundancy 1: %d RED packets received, want 49", n)
	}
	if h2.PacketsDiscarded != 5 {
		t.Errorf("%d packets discarded, want the 5 of garbage", h2.PacketsDiscarded)
	}
	if h2.FramesRecovered != 0 {
		t.Errorf("%d frames recovered on a lossless path", h2.FramesRecovered)
	}
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	if err := guest.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRedundancyRecovers sends 1,000 frames with redundancy 1 through a
// path that loses 5 % of packets at random: the receiver recovers most
// frames its OnPacket missed, and the sender's feedback sees the loss.
func TestRedundancyRecovers(t *testing.T) {
	t.Parallel()
	recovered := make(chan received, 1000)
	fbs := make(chan Feedback, 100)
	lossy := &impair.Profile{Name: "loss5", Loss: impair.GilbertElliott{LossGood: 0.05}, Seed: 42}
	host, guest, hostGot, _, _, _ := pairWith(t,
		[]func(*Config){func(c *Config) {
			c.OnRecovered = func(seq uint16, ts uint32, p []byte) { recovered <- received{seq, ts, bytes.Clone(p), codec.Opus} }
		}},
		[]func(*Config){func(c *Config) {
			c.WrapConn = impaired(*lossy)
			c.OnFeedback = func(f Feedback) { fbs <- f }
		}})
	defer host.Close()
	defer guest.Close()
	guest.SetRedundancy(1)
	seq, ts := startVoice(t, guest, hostGot)

	const n = 1000
	first, ts0 := seq, ts
	primaries := map[uint16]bool{}
	recov := map[uint16]bool{}
	check := func(r received, what string) {
		d := r.seq - first
		if int(d) >= n || len(r.payload) != frameBytes {
			return
		}
		if i := binary.BigEndian.Uint32(r.payload); int(i) != int(d) || r.ts != ts0+uint32(d)*240 {
			t.Fatalf("%s frame %d carries %d, ts %d", what, d, i, r.ts)
		}
	}
	// Send at the real pace (5 ms frames) while collecting, then a tail
	// until one of it arrives: the path keeps order, so by then every
	// frame has come or is lost.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	var feedback []Feedback
	for i := 0; ; {
		select {
		case f := <-fbs:
			feedback = append(feedback, f)
		case <-tick.C:
			if err := guest.WriteVoice(codec.Opus, seq, ts, voiceFrame(i)); err != nil {
				t.Fatal(err)
			}
			i++
			seq++
			ts += 240
		case r := <-hostGot:
			check(r, "primary")
			if d := r.seq - first; int(d) < n {
				primaries[r.seq] = true
			} else if int(d) > n+1 && int(d) < 2*n {
				goto done
			}
		case r := <-recovered:
			check(r, "recovered")
			if primaries[r.seq] || recov[r.seq] {
				t.Errorf("frame %d recovered but it came already", r.seq-first)
			}
			recov[r.seq] = true
		case <-deadline:
			t.Fatalf("the tail did not arrive within 30 s (%d primaries)", len(primaries))
		}
	}
done:
	for {
		select {
		case r := <-recovered:
			check(r, "recovered")
			recov[r.seq] = true
			continue
		default:
		}
		break
	}
	missed, got := 0, 0
	for d := range n {
		s := first + uint16(d)
		if !primaries[s] {
			missed++
			if recov[s] {
				got++
			}
		}
	}
	t.Logf("5 %% loss, redundancy 1: %d of %d frames missed, %d recovered (%.1f %%); stats %+v",
		missed, n, got, 100*float64(got)/float64(max(missed, 1)), host.Stats())
	if missed < n/50 || missed > n/10 {
		t.Errorf("%d of %d frames missed on a 5 %% loss path", missed, n)
	}
	if got < missed*85/100 {
		t.Errorf("only %d of %d missed frames recovered", got, missed)
	}
	if st := host.Stats(); st.FramesRecovered < int64(got) {
		t.Errorf("Stats.FramesRecovered = %d, want ≥ %d", st.FramesRecovered, got)
	}

	// Reports come about once a second: four or so in five.
	if len(feedback) < 2 {
		t.Fatalf("%d feedback reports in 5 s", len(feedback))
	}
	var sum float64
	for _, f := range feedback {
		sum += f.FractionLost
	}
	last := feedback[len(feedback)-1]
	t.Logf("feedback: %d reports, mean fraction lost %.3f, last %+v", len(feedback), sum/float64(len(feedback)), last)
	if mean := sum / float64(len(feedback)); mean < 0.02 || mean > 0.10 {
		t.Errorf("mean fraction lost %.3f on a 5 %% loss path", mean)
	}
	if last.Lost < int64(missed)/2 || last.RTT <= 0 {
		t.Errorf("last feedback %+v: want about %d lost and an RTT", last, missed)
	}
	if f := guest.Feedback(); f.Lost < last.Lost {
		t.Errorf("Feedback() = %+v, older than the last OnFeedback %+v", f, last)
	}
}

// TestFeedbackMobile sends a 96 kb/s voice (60-byte frames, 200 a second)
// over the lab's "mobile" path (60 ± 30 ms, 5 % bursty loss, 300 kb/s)
// and logs what feedback says each second. Long; run with DUET_LAB=1
// (DUET_BYTES sets the frame size, DUET_RED the redundancy).
func TestFeedbackMobile(t *testing.T) {
	t.Parallel()
	if os.Getenv("DUET_LAB") == "" {
		t.Skip("a 30 s measurement; set DUET_LAB=1")
	}
	var mobile impair.Profile
	for _, p := range impair.Scenarios() {
		if p.Name == "mobile" {
			mobile = p
		}
	}
	fbs := make(chan Feedback, 100)
	host, guest, hostGot, _, _, _ := pairWith(t,
		[]func(*Config){func(c *Config) { m := mobile; m.Seed = 1; c.WrapConn = impaired(m) }},
		[]func(*Config){func(c *Config) {
			m := mobile
			m.Seed = 2
			c.WrapConn = impaired(m)
			c.OnFeedback = func(f Feedback) { fbs <- f }
		}})
	defer host.Close()
	defer guest.Close()
	if n, _ := strconv.Atoi(os.Getenv("DUET_RED")); n > 0 {
		guest.SetRedundancy(n)
	}
	size := frameBytes
	if n, _ := strconv.Atoi(os.Getenv("DUET_BYTES")); n > 0 {
		size = n
	}
	seq, ts := startVoice(t, guest, hostGot)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	end := time.After(30 * time.Second)
	start := time.Now()
	for i := 0; ; {
		select {
		case <-tick.C:
			if err := guest.WriteVoice(codec.Opus, seq, ts, append(voiceFrame(i), make([]byte, size-frameBytes)...)); err != nil {
				t.Fatal(err)
			}
			i++
			seq++
			ts += 240
		case <-hostGot:
		case f := <-fbs:
			st := guest.Stats()
			t.Logf("%5.1f s  lost %4.1f %%  rtt %4d ms  sent %d packets, %.1f kb/s of payload",
				time.Since(start).Seconds(), 100*f.FractionLost, f.RTT.Milliseconds(),
				st.PacketsSent, float64(st.BytesSent*8)/time.Since(start).Seconds()/1000)
		case <-end:
			h, f := host.Stats(), guest.Feedback()
			t.Logf("redundancy %s: %d packets lost (partner's count), %d frames recovered (%.1f %%)",
				os.Getenv("DUET_RED"), f.Lost, h.FramesRecovered, 100*float64(h.FramesRecovered)/float64(max(f.Lost, 1)))
			return
		}
	}
}

// impaired wraps a peer's loopback socket in the lab's network path p.
func impaired(p impair.Profile) func(net.PacketConn) net.PacketConn {
	return func(c net.PacketConn) net.PacketConn { return impair.New(c, p) }
}
