package jitter

import (
	"errors"
	"testing"
)

const frame = 240

// fakeDecoder "decodes" a packet into a frame filled with its first byte,
// and conceals with -1, so tests can read back which packet played.
type fakeDecoder struct{}

func (fakeDecoder) Decode(p []byte, pcm []float32) (int, error) {
	if p[0] == 0xff {
		return 0, errors.New("corrupt")
	}
	for i := range pcm[:frame] {
		pcm[i] = float32(p[0])
	}
	return frame, nil
}

func (fakeDecoder) Conceal(pcm []float32) error {
	for i := range pcm {
		pcm[i] = -1
	}
	return nil
}

func newBuffer(target int) *Buffer {
	return New(Config{Frame: frame, Target: target, Capacity: 16}, fakeDecoder{})
}

// readFrames reads n frames and returns the value each frame carried
// (0 for silence while filling, -1 for concealment).
func readFrames(t *testing.T, b *Buffer, n int) []float32 {
	t.Helper()
	out := make([]float32, frame)
	var got []float32
	for range n {
		b.Read(out)
		if out[0] != out[frame-1] {
			t.Fatalf("frame not aligned to reads: starts %v ends %v", out[0], out[frame-1])
		}
		got = append(got, out[0])
	}
	return got
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPlayout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target int
		seqs   []uint16 // inserted before reading
		vals   []byte   // payload value for each seq
		want   []float32
		stats  Stats
	}{
		{
			// Once playing, a missing next packet may only be late: conceal.
			name: "in order, then a gap", target: 2 * frame,
			seqs: []uint16{10, 11, 12}, vals: []byte{1, 2, 3},
			want:  []float32{1, 2, 3, -1},
			stats: Stats{PacketsReceived: 3, PlayedSamples: 4 * frame, ConcealedSamples: frame, ConcealmentEvents: 1, Underruns: 1},
		},
		{
			name: "reordered", target: 0,
			seqs: []uint16{10, 12, 11, 13}, vals: []byte{1, 3, 2, 4},
			want:  []float32{1, 2, 3, 4},
			stats: Stats{PacketsReceived: 4, PlayedSamples: 4 * frame},
		},
		{
			name: "loss concealed", target: 0,
			seqs: []uint16{10, 11, 13}, vals: []byte{1, 2, 4},
			want:  []float32{1, 2, -1, 4},
			stats: Stats{PacketsReceived: 3, PacketsLost: 1, ConcealedSamples: frame, ConcealmentEvents: 1, PlayedSamples: 4 * frame},
		},
		{
			name: "wraparound", target: 0,
			seqs: []uint16{65534, 65535, 0, 1}, vals: []byte{1, 2, 3, 4},
			want:  []float32{1, 2, 3, 4},
			stats: Stats{PacketsReceived: 4, PlayedSamples: 4 * frame},
		},
		{
			name: "reordered across wraparound", target: 0,
			seqs: []uint16{65535, 1, 0, 2}, vals: []byte{1, 3, 2, 4},
			want:  []float32{1, 2, 3, 4},
			stats: Stats{PacketsReceived: 4, PlayedSamples: 4 * frame},
		},
		{
			name: "duplicate dropped", target: 0,
			seqs: []uint16{5, 5, 6}, vals: []byte{1, 9, 2},
			want:  []float32{1, 2},
			stats: Stats{PacketsReceived: 3, PacketsDuplicated: 1, PlayedSamples: 2 * frame},
		},
		{
			name: "undecodable concealed", target: 0,
			seqs: []uint16{5, 6, 7}, vals: []byte{1, 0xff, 3},
			want:  []float32{1, -1, 3},
			stats: Stats{PacketsReceived: 3, DecodeErrors: 1, ConcealedSamples: frame, ConcealmentEvents: 1, PlayedSamples: 3 * frame},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuffer(tc.target)
			for i, s := range tc.seqs {
				b.Insert(s, []byte{tc.vals[i]})
			}
			got := readFrames(t, b, len(tc.want))
			if !equal(got, tc.want) {
				t.Errorf("played %v, want %v", got, tc.want)
			}
			st := b.Stats()
			st.BufferedSamples = 0
			if st != tc.stats {
				t.Errorf("stats %+v\nwant  %+v", st, tc.stats)
			}
		})
	}
}

func TestWaitsForTarget(t *testing.T) {
	b := newBuffer(3 * frame)
	b.Insert(1, []byte{1})
	b.Insert(2, []byte{2})
	if got := readFrames(t, b, 2); !equal(got, []float32{0, 0}) {
		t.Fatalf("below target played %v, want silence", got)
	}
	b.Insert(3, []byte{3})
	if got := readFrames(t, b, 3); !equal(got, []float32{1, 2, 3}) {
		t.Fatalf("at target played %v, want 1 2 3", got)
	}
}

func TestLatePacketDiscarded(t *testing.T) {
	b := newBuffer(0)
	b.Insert(1, []byte{1})
	b.Insert(3, []byte{3})
	readFrames(t, b, 3) // 1, concealed, 3
	b.Insert(2, []byte{2})
	st := b.Stats()
	if st.PacketsDiscarded != 1 {
		t.Fatalf("PacketsDiscarded = %d, want 1", st.PacketsDiscarded)
	}
	if st.PacketsLost != 0 {
		t.Fatalf("PacketsLost = %d, want 0 (it arrived, late)", st.PacketsLost)
	}
}

// TestReorderedAtStartExpected: packets sent before the first to arrive,
// reordered behind it, were expected too: one of them lost counts as lost,
// the others as late, none as missing from the count. After a jump within
// the stream (a reset), what came before was counted already.
func TestReorderedAtStartExpected(t *testing.T) {
	b := newBuffer(0)
	b.Insert(10, []byte{10})
	b.Insert(11, []byte{11})
	b.Insert(8, []byte{8}) // 9 never comes
	b.Insert(7, []byte{7})
	st := b.Stats()
	if st.PacketsLost != 1 || st.PacketsDiscarded != 2 || st.PacketsReceived != 4 {
		t.Fatalf("7, 8 behind 10, 11, 9 lost: %d lost, %d late of %d received; want 1, 2, 4", st.PacketsLost, st.PacketsDiscarded, st.PacketsReceived)
	}
	// A jump past what the buffer holds starts a segment; a packet from
	// before it is late, and was expected in the one before.
	far := uint16(11 + 10*len(b.slots))
	b.Insert(far, []byte{1})
	b.Insert(far-1, []byte{1})
	b.Insert(12, []byte{12})
	st = b.Stats()
	if want := int64(far) - 7 + 1 - 7; st.PacketsLost != want {
		t.Errorf("after a jump to %d: %d lost, want %d (7…%d expected, 7 received)", far, st.PacketsLost, want, far)
	}
}

// TestLateAfterWaitPlays checks that a packet that missed its time while the
// buffer was empty still plays (the delay grows) rather than being dropped.
func TestLateAfterWaitPlays(t *testing.T) {
	b := newBuffer(0)
	b.Insert(1, []byte{1})
	if got := readFrames(t, b, 2); !equal(got, []float32{1, -1}) {
		t.Fatalf("played %v, want 1 then a concealed frame", got)
	}
	b.Insert(2, []byte{2})
	b.Insert(3, []byte{3})
	if got := readFrames(t, b, 2); !equal(got, []float32{2, 3}) {
		t.Fatalf("after the wait played %v, want 2 3", got)
	}
	if st := b.Stats(); st.PacketsDiscarded != 0 || st.Underruns != 1 {
		t.Fatalf("stats %+v, want no discards and one underrun", st)
	}
}

// TestLostAfterWaitNotConcealedTwice checks that when the packet waited for
// turns out lost, its slot (already concealed) is skipped, not concealed
// again.
func TestLostAfterWaitNotConcealedTwice(t *testing.T) {
	b := newBuffer(0)
	b.Insert(1, []byte{1})
	readFrames(t, b, 2) // 1, concealed while waiting for 2
	b.Insert(3, []byte{3})
	if got := readFrames(t, b, 1); !equal(got, []float32{3}) {
		t.Fatalf("played %v, want 3", got)
	}
	if st := b.Stats(); st.ConcealedSamples != frame || st.PacketsLost != 1 {
		t.Fatalf("stats %+v, want one concealed frame and one lost packet", st)
	}
}

func TestReadSplitsFrames(t *testing.T) {
	b := newBuffer(0)
	for i := range 4 {
		b.Insert(uint16(i), []byte{byte(i + 1)})
	}
	out := make([]float32, 100) // not a divisor of the frame
	var got []float32
	for range 9 {
		b.Read(out)
		got = append(got, out...)
	}
	for i, v := range got {
		if want := float32(i/frame + 1); v != want {
			t.Fatalf("sample %d = %v, want %v", i, v, want)
		}
	}
}

func TestStreamStopsAndRestarts(t *testing.T) {
	b := newBuffer(0)
	b.Insert(100, []byte{1})
	// Stream stops: the buffer conceals for 100 ms, then goes quiet.
	got := readFrames(t, b, 1+giveUpSamples/frame+5)
	if got[0] != 1 || got[1] != -1 || got[len(got)-1] != 0 {
		t.Fatalf("after the stream stopped: first %v, second %v, last %v; want 1, -1, 0", got[0], got[1], got[len(got)-1])
	}
	// The sender comes back far ahead: the buffer starts again there.
	b.Insert(5000, []byte{7})
	b.Insert(5001, []byte{8})
	if got := readFrames(t, b, 2); !equal(got, []float32{7, 8}) {
		t.Fatalf("after restart played %v, want 7 8", got)
	}
	if st := b.Stats(); st.Resets != 1 {
		t.Fatalf("Resets = %d, want 1", st.Resets)
	}
}

func TestUnwrap(t *testing.T) {
	for _, tc := range []struct {
		highest int64
		seq     uint16
		want    int64
	}{
		{65535, 0, 65536},
		{65536, 65535, 65535},
		{65536 + 100, 99, 65536 + 99},
		{3*65536 + 65530, 4, 4*65536 + 4},
		{3*65536 + 4, 65530, 2*65536 + 65530},
	} {
		if got := unwrap(tc.highest, tc.seq); got != tc.want {
			t.Errorf("unwrap(%d, %d) = %d, want %d", tc.highest, tc.seq, got, tc.want)
		}
	}
}

func BenchmarkInsertRead(b *testing.B) {
	buf := newBuffer(frame)
	out := make([]float32, 128)
	payload := []byte{1, 2, 3}
	seq := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		buf.Insert(seq, payload)
		seq++
		buf.Read(out)
		buf.Read(out)
	}
}

// TestWaitStep checks that waiting for a late packet conceals in short
// steps, and that a packet found lost after a wait is concealed only for the
// rest of its time.
func TestWaitStep(t *testing.T) {
	read := func(b *Buffer, n int) []float32 {
		out := make([]float32, n)
		b.Read(out)
		return out
	}
	b := New(Config{Frame: frame, WaitStep: frame / 2, Capacity: 16}, fakeDecoder{})
	b.Insert(1, []byte{1})
	read(b, frame)
	if got := read(b, frame/2); got[0] != -1 || got[frame/2-1] != -1 {
		t.Fatalf("waiting step = %v…, want concealment", got[0])
	}
	b.Insert(3, []byte{3}) // 2 is lost
	got := read(b, frame)
	if got[0] != -1 || got[frame/2-1] != -1 || got[frame/2] != 3 {
		t.Fatalf("after the wait: %v, %v, %v; want the rest of 2 concealed, then 3", got[0], got[frame/2-1], got[frame/2])
	}
	if st := b.Stats(); st.ConcealedSamples != frame || st.PacketsLost != 1 || st.Underruns != 1 {
		t.Fatalf("stats %+v, want one frame concealed in all, one lost, one underrun", st)
	}
}

// TestInsertRecovered: a frame recovered from redundancy fills a gap still
// ahead of playout; one whose time has come (played or concealed), one
// held already, or one beyond the buffer is ignored, and none counts as a
// received, late or duplicate packet.
func TestInsertRecovered(t *testing.T) {
	b := newBuffer(0)
	b.InsertRecovered(9, []byte{9}) // before any stream: nowhere to put it
	for _, s := range []uint16{10, 11, 13, 16} {
		b.Insert(s, []byte{byte(s)})
	}
	got := readFrames(t, b, 2)                // 10, 11
	b.InsertRecovered(12, []byte{12})         // the gap ahead: fills it
	b.InsertRecovered(10, []byte{99})         // played: ignored
	b.InsertRecovered(13, []byte{99})         // held: ignored
	b.InsertRecovered(10+1000, []byte{99})    // far beyond the buffer: ignored
	got = append(got, readFrames(t, b, 2)...) // 12, 13
	got = append(got, readFrames(t, b, 1)...) // 14 lost: concealed
	b.InsertRecovered(14, []byte{14})         // its time has passed: ignored
	b.InsertRecovered(15, []byte{15})         // still ahead: fills
	got = append(got, readFrames(t, b, 2)...) // 15, 16
	if want := []float32{10, 11, 12, 13, -1, 15, 16}; !equal(got, want) {
		t.Errorf("played %v, want %v", got, want)
	}
	st := b.Stats()
	if st.PacketsRecovered != 2 || st.PacketsReceived != 4 || st.PacketsDiscarded != 0 || st.PacketsDuplicated != 0 || st.PacketsLost != 3 {
		t.Errorf("stats %+v: want 2 recovered, 4 received, 3 lost, none late or duplicated", st)
	}
}

// TestRecoveredThenOwnPacket: a frame recovered from redundancy whose own
// packet comes after all, before its time, is a reordered packet, not a
// duplicate of a lost one (on a reordering path with RED the duplicates
// made Duet count ten times the packets its capture missed); a recovered
// frame played before its own packet came counts as recovered, and the
// packet as discarded, not lost.
func TestRecoveredThenOwnPacket(t *testing.T) {
	b := newBuffer(0)
	for _, s := range []uint16{10, 12, 14} {
		b.Insert(s, []byte{byte(s)})
	}
	b.InsertRecovered(11, []byte{11})
	b.InsertRecovered(13, []byte{13})
	b.Insert(11, []byte{11})                  // its own packet, in time
	got := readFrames(t, b, 4)                // 10 11 12 13
	b.Insert(13, []byte{13})                  // its own packet, too late
	got = append(got, readFrames(t, b, 1)...) // 14
	if want := []float32{10, 11, 12, 13, 14}; !equal(got, want) {
		t.Errorf("played %v, want %v", got, want)
	}
	st := b.Stats()
	if st.PacketsLost != 0 || st.PacketsDuplicated != 0 || st.PacketsRecovered != 1 || st.PacketsDiscarded != 1 || st.PacketsReceived != 5 {
		t.Errorf("stats %+v: want none lost or duplicated, 1 recovered, 1 discarded, 5 received", st)
	}
}

// TestStallCounted: a stream that stops for longer than playout conceals
// (giveUpSamples) and comes back counts every packet it missed as lost and
// their whole time as concealed, whether it comes back within the buffer
// or so far ahead that the buffer starts again (a 5 s cut was reported as 0
// lost and 150-200 ms concealed).
func TestStallCounted(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		back     uint16 // the first packet after the gap
		resets   int64
	}{
		{"within the buffer", 64, 36, 0},
		{"beyond the buffer", 16, 1005, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{Frame: frame, Capacity: tc.capacity}, fakeDecoder{})
			for s := uint16(1); s <= 5; s++ {
				b.Insert(s, []byte{byte(s)})
			}
			got := readFrames(t, b, 5+giveUpSamples/frame+10)
			if got[4] != 5 || got[len(got)-1] != 0 {
				t.Fatalf("before the gap: frame 5 %v, last %v; want 5, then silence", got[4], got[len(got)-1])
			}
			b.Insert(tc.back, []byte{1})
			b.Insert(tc.back+1, []byte{2})
			if got := readFrames(t, b, 2); !equal(got, []float32{1, 2}) {
				t.Fatalf("after the gap played %v, want 1 2", got)
			}
			missed := int64(tc.back - 6)
			st := b.Stats()
			if st.PacketsLost != missed || st.ConcealedSamples != missed*frame || st.Resets != tc.resets {
				t.Errorf("lost %d, concealed %d samples, %d resets; want %d, %d, %d",
					st.PacketsLost, st.ConcealedSamples, st.Resets, missed, missed*frame, tc.resets)
			}
		})
	}
}

// shiftDecoder writes 40 samples fewer than the packet's frame for packet
// 2, as a change of codec that keeps the voice's delay does, and says the
// packet's own length through Frame.
type shiftDecoder struct{ fakeDecoder }

func (d shiftDecoder) Decode(p []byte, pcm []float32) (int, error) {
	n, err := d.fakeDecoder.Decode(p, pcm)
	if p[0] == 2 {
		n -= 40
	}
	return n, err
}

func (shiftDecoder) Frame() int { return frame }

// TestLostAfterShiftedFrame: packets 3-5 are lost after packet 2, which
// decoded 40 samples short of its frame. Each lost packet's time is a
// whole frame, not what the last decode wrote (which moved the voice 40
// samples earlier with every loss).
func TestLostAfterShiftedFrame(t *testing.T) {
	b := New(Config{Frame: frame, Target: 2 * frame, Capacity: 16}, shiftDecoder{})
	for _, seq := range []uint16{1, 2, 6, 7, 8} {
		b.Insert(seq, []byte{byte(seq)})
	}
	out := make([]float32, 6*frame-40) // packets 1, 2 (short), 3-5 lost, 6
	b.Read(out)
	if got, want := b.Stats().ConcealedSamples, int64(3*frame); got != want {
		t.Errorf("three lost packets after the short one concealed %d samples, want %d", got, want)
	}
	if out[frame+(frame-40)] != -1 || out[frame+(frame-40)+3*frame] != 6 {
		t.Errorf("packet 6 does not follow three frames of concealment after packet 2's %d samples", frame-40)
	}
}
