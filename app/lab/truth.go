package lab

import (
	"encoding/binary"
	"net"
	"sync"
)

// Truth is what the network did to one direction's voice packets, seen on
// the sockets themselves: each packet as its sender wrote it (before the
// impairment) and as its receiver read it (after). SRTP leaves the RTP
// header in the clear, so sequence numbers can be read there; payloads
// cannot, so redundancy (RED) is not seen into.
type Truth struct {
	// Sent counts the voice packets written.
	Sent int
	// Arrived counts those the receiver read, each once.
	Arrived int
	// Lost counts the packets between the first and the last to arrive
	// (by sequence number) that never did: RFC 3550's view, as a receiver
	// can know of no packet before its first or after its last.
	Lost int
	// LostSamples is the audio the lost packets carried, in samples at
	// 48 kHz (RTP's clock for each of Duet's codecs), from the timestamps
	// of the packets around each gap.
	LostSamples int
	// Duplicated counts copies read more than once, Reordered packets read
	// after one sent later.
	Duplicated, Reordered int
}

// voicePayloadTypes are the RTP payload types of Duet's voice (net/peer's
// Opus, RED, Opus Custom, L24, L16); RTCP's packet types (200…) fall
// outside RTP's 7-bit range, and its low bits (72…) outside this set.
var voicePayloadTypes = [128]bool{111: true, 63: true, 96: true, 97: true, 98: true}

// voiceHeader returns the SSRC, sequence number and timestamp of a voice
// RTP packet; ok is false for anything else on the socket (STUN, DTLS,
// SRTCP).
func voiceHeader(b []byte) (ssrc uint32, seq uint16, ts uint32, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 || !voicePayloadTypes[b[1]&0x7f] {
		return 0, 0, 0, false
	}
	return binary.BigEndian.Uint32(b[8:12]), binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[4:8]), true
}

// wire records one direction's voice packets: those sent, per SSRC, and
// those read. Safe for concurrent use.
type wire struct {
	mu      sync.Mutex
	streams map[uint32]*stream
}

// stream is one SSRC's packets, sequence numbers unwrapped from the first
// one written.
type stream struct {
	sent            int
	highSent        int64
	arrived         map[int64]copies // per unwrapped sequence number
	highRead        int64
	read, reordered int
}

// copies is how many copies of a packet were read, and its timestamp.
type copies struct {
	n  int
	ts uint32
}

func unwrapNear(ref int64, seq uint16) int64 {
	return ref + int64(int16(seq-uint16(ref)))
}

func (w *wire) stream(ssrc uint32, seq uint16) *stream {
	if w.streams == nil {
		w.streams = make(map[uint32]*stream)
	}
	s := w.streams[ssrc]
	if s == nil {
		s = &stream{highSent: int64(seq) + 1<<16, highRead: -1, arrived: make(map[int64]copies)}
		w.streams[ssrc] = s
	}
	return s
}

func (w *wire) sent(b []byte) {
	ssrc, seq, _, ok := voiceHeader(b)
	if !ok {
		return
	}
	w.mu.Lock()
	s := w.stream(ssrc, seq)
	s.sent++
	s.highSent = max(s.highSent, unwrapNear(s.highSent, seq))
	w.mu.Unlock()
}

func (w *wire) read(b []byte) {
	ssrc, seq, ts, ok := voiceHeader(b)
	if !ok {
		return
	}
	w.mu.Lock()
	s := w.stream(ssrc, seq)
	ext := unwrapNear(s.highSent, seq)
	s.arrived[ext] = copies{s.arrived[ext].n + 1, ts}
	if s.read > 0 && ext < s.highRead {
		s.reordered++
	}
	s.read++
	s.highRead = max(s.highRead, ext)
	w.mu.Unlock()
}

// truth sums the streams.
func (w *wire) truth() Truth {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t Truth
	for _, s := range w.streams {
		t.Sent += s.sent
		t.Reordered += s.reordered
		if len(s.arrived) == 0 {
			continue
		}
		lo, hi := s.highRead, s.highRead
		for ext, c := range s.arrived {
			lo, hi = min(lo, ext), max(hi, ext)
			t.Duplicated += c.n - 1
		}
		t.Arrived += len(s.arrived)
		t.Lost += int(hi-lo+1) - len(s.arrived)
		t.LostSamples += s.lostSamples(lo, hi)
	}
	return t
}

// lostSamples adds up the time of the gaps between lo and hi: from the end
// of the packet before each gap (its timestamp and length, the step from
// the one before it if that came, else the gap's mean) to the timestamp
// of the packet after.
func (s *stream) lostSamples(lo, hi int64) int {
	total := 0
	for ext := lo; ext < hi; ext++ {
		if _, ok := s.arrived[ext+1]; ok {
			continue
		}
		before := s.arrived[ext]
		after := ext + 2
		for ; after <= hi; after++ {
			if _, ok := s.arrived[after]; ok {
				break
			}
		}
		gap := int64(int32(s.arrived[after].ts - before.ts))
		frame := gap / (after - ext)
		if prev, ok := s.arrived[ext-1]; ok {
			frame = int64(int32(before.ts - prev.ts))
		}
		total += int(max(0, gap-frame))
		ext = after - 1
	}
	return total
}

// wiredConn is one singer's socket: what it writes goes on out, what it
// reads came over in.
type wiredConn struct {
	net.PacketConn
	out, in *wire
}

func (c wiredConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.out.sent(b)
	return c.PacketConn.WriteTo(b, addr)
}

func (c wiredConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if n > 0 {
		c.in.read(b[:n])
	}
	return n, addr, err
}
