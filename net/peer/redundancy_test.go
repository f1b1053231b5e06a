package peer

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/red"
)

type got struct {
	seq     uint16
	ts      uint32
	payload string
}

// receiver returns an inbound with RED at 63 and the frames it passes on.
func receiver() (*inbound, *[]got, *[]got) {
	var prim, rec []got
	in := &inbound{
		pay: negotiate([]webrtc.RTPCodecParameters{
			{RTPCodecCapability: capability(codec.Opus), PayloadType: 111},
			{RTPCodecCapability: redCapability(), PayloadType: 63},
		}),
		onPacket:    func(seq uint16, ts uint32, _ codec.Kind, p []byte) { prim = append(prim, got{seq, ts, string(p)}) },
		onRecovered: func(seq uint16, ts uint32, p []byte) { rec = append(rec, got{seq, ts, string(p)}) },
	}
	return in, &prim, &rec
}

// TestRedundancyRoundTrip runs the sender's history into the receiver,
// losing some packets, across the sequence and timestamp wraparounds.
func TestRedundancyRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		n         int
		lost      map[int]bool // packet indexes
		recovered []int
	}{
		{"one", 1, map[int]bool{5: true, 9: true, 10: true}, []int{5, 10}},
		{"two", 2, map[int]bool{5: true, 9: true, 10: true, 14: true, 15: true, 16: true}, []int{5, 9, 10, 15, 16}},
		{"off", 0, map[int]bool{5: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			h.n = tc.n
			in, prim, rec := receiver()
			seq0, ts0 := uint16(65530), uint32(1<<32-1000)
			for i := range 30 {
				seq, ts := seq0+uint16(i), ts0+uint32(i)*240
				payload := []byte{byte(i), 0xaa}
				older := h.blocks(111, seq, ts)
				pt, body := uint8(111), payload
				if len(older) > 0 {
					var err error
					body, err = red.Encode(nil, 111, ts, payload, older)
					if err != nil {
						t.Fatal(err)
					}
					pt = 63
				}
				h.push(seq, ts, payload)
				if tc.lost[i] {
					continue
				}
				if _, err := in.packet(pt, seq, ts, body); err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
			}
			if len(*prim) != 30-len(tc.lost) {
				t.Errorf("%d primaries, want %d", len(*prim), 30-len(tc.lost))
			}
			if len(*rec) != len(tc.recovered) {
				t.Fatalf("recovered %v, want packets %v", *rec, tc.recovered)
			}
			for j, i := range tc.recovered {
				want := got{seq0 + uint16(i), ts0 + uint32(i)*240, string([]byte{byte(i), 0xaa})}
				if (*rec)[j] != want {
					t.Errorf("recovered %d: %+v, want %+v", j, (*rec)[j], want)
				}
			}
		})
	}
}

// TestHistoryRuns checks that only runs of equally long frames with
// consecutive sequence numbers are sent as redundancy.
func TestHistoryRuns(t *testing.T) {
	t.Parallel()
	var h history
	h.n = 2
	h.push(10, 1000, []byte{1})
	h.push(11, 1240, []byte{2})
	if b := h.blocks(111, 12, 1480); len(b) != 2 || b[0].TS != 1000 || b[1].TS != 1240 {
		t.Errorf("steady run: %+v", b)
	}
	// A gap in sequence numbers: nothing before it.
	if b := h.blocks(111, 13, 1720); len(b) != 0 {
		t.Errorf("after a gap: %+v", b)
	}
	// The frame length changed (120 ticks after 240): only the newest.
	h.push(12, 1480, []byte{3})
	if b := h.blocks(111, 13, 1600); len(b) != 1 || b[0].TS != 1480 {
		t.Errorf("after a frame change: %+v", b)
	}
	// An empty frame (nothing to carry) ends the run.
	h.push(13, 1720, nil)
	if b := h.blocks(111, 14, 1960); len(b) != 0 {
		t.Errorf("after an empty frame: %+v", b)
	}
}

// TestInboundFrameChange: blocks that cannot be numbered are skipped, not
// misplaced.
func TestInboundFrameChange(t *testing.T) {
	t.Parallel()
	in, _, rec := receiver()
	in.packet(111, 100, 24000, []byte{1})
	in.packet(111, 101, 24240, []byte{2})
	// 103 says its newest block is 480 ticks old: not one frame (240).
	body, _ := red.Encode(nil, 111, 24960, []byte{4}, []red.Block{{PT: 111, TS: 24480, Payload: []byte{3}}})
	r, err := in.packet(63, 103, 24960, body)
	if err != nil || r.skipped != 1 || len(*rec) != 0 {
		t.Errorf("got %+v %v, recovered %v; want one block skipped", r, err, *rec)
	}
	// A block of another payload type is skipped.
	body, _ = red.Encode(nil, 111, 25200, []byte{5}, []red.Block{{PT: 96, TS: 24960, Payload: []byte{4}}})
	if r, err := in.packet(63, 104, 25200, body); err != nil || r.skipped != 1 {
		t.Errorf("foreign block: %+v %v", r, err)
	}
}

// TestInboundGarbage feeds random and truncated RED payloads: each is
// dropped with an error or parsed, never a panic, and the stream goes on.
func TestInboundGarbage(t *testing.T) {
	t.Parallel()
	in, prim, _ := receiver()
	rng := rand.New(rand.NewPCG(1, 2))
	bad := 0
	for i := range 5000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%3 == 0 && len(b) > 0 {
			b[0] |= 0x80 // a redundant header, likely truncated
		}
		if _, err := in.packet(63, uint16(i), uint32(i)*240, b); err != nil {
			bad++
		}
	}
	if bad == 0 {
		t.Error("no garbage was refused")
	}
	if _, err := in.packet(7, 1, 1, []byte{1}); err == nil {
		t.Error("an unknown payload type was accepted")
	}
	n := len(*prim)
	if _, err := in.packet(111, 6000, 6000*240, []byte("ok")); err != nil || len(*prim) != n+1 || !bytes.Equal([]byte((*prim)[n].payload), []byte("ok")) {
		t.Error("a good packet after garbage was not passed on")
	}
}

func TestSeqWindow(t *testing.T) {
	t.Parallel()
	var w seqWindow
	steps := []struct {
		seq  uint16
		want bool
	}{
		{65534, true}, {65535, true}, {65534, false}, {2, true}, // across the wraparound
		{0, true}, {0, false}, {1, true}, {65535, false},
		{65536 + 2 - 64, false}, {65536 + 2 - 63, true}, // the window's edge
		{200, true}, {199, true}, {2, false},
	}
	for i, s := range steps {
		if got := w.mark(s.seq); got != s.want {
			t.Errorf("step %d: mark(%d) = %v, want %v", i, s.seq, got, s.want)
		}
	}
}

// BenchmarkRedundantSend measures the sender's RED packing per frame.
func BenchmarkRedundantSend(b *testing.B) {
	var h history
	h.n = 2
	payload := make([]byte, 60)
	seq, ts := uint16(0), uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		older := h.blocks(111, seq, ts)
		h.buf, _ = red.Encode(h.buf[:0], 111, ts, payload, older)
		h.push(seq, ts, payload)
		seq++
		ts += 240
	}
}
