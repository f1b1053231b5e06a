package peer

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
)

// TestFastVoice: on loopback the voice comes in through the real-time
// socket reader, which decrypts it itself: every packet reaches OnPacket
// once, through the fast path, while pion, which reads every packet too,
// hands on none of them again and still counts them all.
func TestFastVoice(t *testing.T) {
	t.Parallel()
	host, guest, hostGot, _, _, _ := pair(t)
	defer guest.Close()
	defer host.Close()
	if !host.fast.on {
		t.Skip("no real-time socket reader on this system")
	}
	seq, ts := startVoice(t, guest, hostGot)
	drain(hostGot)
	const n = 600 // across the sequence number's wrap (startVoice begins at 65000)
	for i := range n {
		if err := guest.WriteVoice(codec.Opus, seq+uint16(i), ts+240*uint32(i), []byte{0xf8, byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // keep within the socket's buffer
		}
	}
	seen := make(map[uint16]int)
	deadline := time.After(10 * time.Second)
	for len(seen) < n {
		select {
		case r := <-hostGot:
			if d := r.seq - seq; d < n {
				seen[r.seq]++
			}
		case <-deadline:
			t.Fatalf("%d of %d packets arrived within 10 s", len(seen), n)
		}
	}
	// pion reads the same packets (its statistics count them as read):
	// once it has all, any it handed on again is in hostGot.
	for waited := time.Now(); pionReceived(host) < uint32(n); time.Sleep(10 * time.Millisecond) {
		if time.Since(waited) > 10*time.Second {
			t.Fatalf("pion read %d of the %d packets within 10 s", pionReceived(host), n)
		}
	}
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	for len(hostGot) > 0 {
		if r := <-hostGot; r.seq-seq < n {
			seen[r.seq]++
		}
	}
	for s, k := range seen {
		if k != 1 {
			t.Errorf("packet %d handed on %d times", s, k)
		}
	}
	if took := host.fast.took.Load(); took < n {
		t.Errorf("the fast path took %d packets, want all %d and the first", took, n)
	}
	if failed := host.fast.failed.Load(); failed != 0 {
		t.Errorf("the fast path could not decrypt %d packets", failed)
	}
	// Counted once each: those the fast path took, and at most the
	// first few (startVoice's) through pion before it had the keys.
	took, early := host.fast.took.Load(), int64(seq-65000)
	if st := host.Stats(); st.PacketsReceived < took || st.PacketsReceived > took+early {
		t.Errorf("%d packets received counted, want the %d the fast path took and at most %d more", st.PacketsReceived, took, early)
	}
}

// pionReceived is how many voice packets pion's statistics say it read.
func pionReceived(p *Peer) uint32 {
	for _, s := range p.pc.GetStats() {
		if in, ok := s.(webrtc.InboundRTPStreamStats); ok && in.Kind == "audio" {
			return in.PacketsReceived
		}
	}
	return 0
}

// TestFastVoiceRole: our DTLS role, as pion takes it, from the partner's
// description.
func TestFastVoiceRole(t *testing.T) {
	for _, tc := range []struct {
		typ    webrtc.SDPType
		setup  string
		client bool
	}{
		{webrtc.SDPTypeAnswer, "active", false},
		{webrtc.SDPTypeAnswer, "passive", true},
		{webrtc.SDPTypeAnswer, "actpass", false}, // we offered: ICE's controlling agent, the server
		{webrtc.SDPTypeAnswer, "", false},
		{webrtc.SDPTypeOffer, "actpass", true}, // we answer as the client
		{webrtc.SDPTypeOffer, "active", false},
		{webrtc.SDPTypeOffer, "passive", true},
	} {
		sdp := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
		if tc.setup != "" {
			sdp += "a=setup:" + tc.setup + "\r\n"
		}
		var f fastVoice
		f.isClient.Store(!tc.client)
		f.remote(webrtc.SessionDescription{Type: tc.typ, SDP: sdp})
		if f.isClient.Load() != tc.client {
			t.Errorf("%v with setup %q: client %v, want %v", tc.typ, tc.setup, f.isClient.Load(), tc.client)
		}
	}
}

// TestFastVoiceTaken: pion's copy of a packet is dropped only if the fast
// path handed on that very packet (RTP time and sequence number).
func TestFastVoiceTaken(t *testing.T) {
	var f fastVoice
	pkt := func(seq uint16, ts uint32) []byte {
		b := make([]byte, 12)
		b[0], b[2], b[3] = 0x80, byte(seq>>8), byte(seq)
		b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		return b
	}
	f.handed[7].Store(handedKey(1000, 7))
	for _, tc := range []struct {
		seq   uint16
		ts    uint32
		taken bool
	}{{7, 1000, true}, {7, 1000 + 65536*240, false}, {7 + handedRing, 1000, false}, {8, 1240, false}} {
		if got := f.taken(pkt(tc.seq, tc.ts)); got != tc.taken {
			t.Errorf("packet %d at %d: taken %v, want %v", tc.seq, tc.ts, got, tc.taken)
		}
	}
	if f.taken([]byte{0x80, 0, 0}) {
		t.Error("a 3-byte packet counted as taken")
	}
}
