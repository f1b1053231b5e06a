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
