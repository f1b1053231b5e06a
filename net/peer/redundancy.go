package peer

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/red"
)

// MaxRedundancy is the most previous frames a RED packet carries
// (SetRedundancy): each one costs a frame's bytes plus 4 of header, and
// covers one more packet of a loss burst.
const MaxRedundancy = 2

// frame is a voice payload the sender keeps for redundancy.
type frame struct {
	seq     uint16
	ts      uint32
	payload []byte // reused buffer
	ok      bool
}

// history is the sender's side of redundancy: the last MaxRedundancy
// frames sent and the RED payload being built, reused so that sending
// allocates nothing once warm. Not safe for concurrent use (Peer.sendMu).
type history struct {
	n      int                  // previous frames to send, 0…MaxRedundancy
	frames [MaxRedundancy]frame // frames[k-1] is the one k before the last pushed
	older  [MaxRedundancy]red.Block
	buf    []byte
}

// blocks returns the frames to carry with a packet (seq, ts), oldest first:
// those exactly 1, 2, … n sequence numbers before it, stopping at the first
// that is missing or does not fit. All must be equally long in time (frame
// k ticks k times frame 1's), the contract the receiver relies on to number
// them (see inbound.redundant).
func (h *history) blocks(pt uint8, seq uint16, ts uint32) []red.Block {
	m := 0
	var step uint32
	for k := 1; k <= h.n; k++ {
		f := &h.frames[k-1]
		off := ts - f.ts
		if k == 1 {
			step = off
		}
		if !f.ok || f.seq != seq-uint16(k) || off != uint32(k)*step || off == 0 || off > red.MaxOffset ||
			len(f.payload) == 0 || len(f.payload) > red.MaxLength {
			break
		}
		m = k
	}
	out := h.older[:m]
	for k := 1; k <= m; k++ {
		f := &h.frames[k-1]
		out[m-k] = red.Block{PT: pt, TS: f.ts, Payload: f.payload}
	}
	return out
}

// push remembers a frame just sent.
func (h *history) push(seq uint16, ts uint32, payload []byte) {
	last := h.frames[MaxRedundancy-1]
	copy(h.frames[1:], h.frames[:MaxRedundancy-1])
	last.seq, last.ts, last.ok = seq, ts, true
	last.payload = append(last.payload[:0], payload...)
	h.frames[0] = last
}

// Errors of the receive path; counted in Stats.PacketsDiscarded, never
// fatal.
var (
	errPayloadType = errors.New("peer: payload type not negotiated")
	errREDPrimary  = errors.New("peer: RED primary is not Opus")
	errPCMLength   = errors.New("peer: PCM payload of a wrong length")
)

// inbound is the receive side: it passes the packets of every negotiated
// codec on with their kind, unpacks RED packets into their primary and the
// frames recovered from their redundancy, and numbers those frames. A
// packet of a payload type not negotiated, or PCM that is not a whole
// number of samples (or longer than codec.MaxPCMFrame), never reaches the
// callbacks. Used by one goroutine.
//
// Numbering: RED blocks carry timestamp offsets, not sequence numbers. A
// recovered block's sequence number is the packet's less k, with k its
// offset divided by the frame length in ticks, which holds as long as
// frames are equally long: Duet's Opus frames are (2.5, 5 or 10 ms, fixed
// for a while; history.blocks sends only such runs). The frame length is
// the timestamp step between consecutive primary packets; each packet's
// newest block must be exactly one frame old, each block's offset a whole
// number of frames. Blocks that do not fit are skipped (counted), which
// only happens around a change of frame length.
//
// Padding: browsers send padding-only packets (RTP padding and no payload:
// bandwidth probes) in the voice's sequence space, under Opus's payload
// type or RED's. They carry no frame, so they are skipped (padding), and every
// sequence number the callbacks get is RTP's less the padding packets
// before it: the frames are numbered without gaps, the jitter buffer
// neither counts a padding packet lost nor conceals for it, and RED's
// blocks are numbered from the frames before them (a padding packet in
// between once took the number of the frame before it).
type inbound struct {
	pay         payloads
	onPacket    func(seq uint16, ts uint32, kind codec.Kind, payload []byte)
	onRecovered func(seq uint16, ts uint32, payload []byte)
	reds        *atomic.Int64 // well-formed RED packets, counted before their frames go on
	pad         padding

	frameTicks uint32 // 0 until two consecutive primaries came
	lastSeq    uint16
	lastTS     uint32
	haveLast   bool
	seen       seqWindow
	blocks     [red.MaxBlocks + 1]red.Block
}

// result says what one packet brought.
type result struct {
	recovered int // frames passed to onRecovered
	skipped   int // redundant blocks that did not fit
}

// padding takes the sequence number of an incoming packet that is padding
// only (RTP's P bit set, no payload left): no frame, skipped.
func (in *inbound) padding(seq uint16) { in.pad.skip(seq) }

// packet takes one incoming RTP packet's payload type, sequence number,
// timestamp and payload; an error means the packet was dropped.
func (in *inbound) packet(pt uint8, seq uint16, ts uint32, payload []byte) (result, error) {
	if pt > 127 {
		return result{}, errPayloadType
	}
	seq = in.pad.frame(seq, ts, in.frameTicks)
	if int16(pt) != in.pay.red {
		k := in.pay.kind[pt]
		if k == 0 {
			return result{}, errPayloadType
		}
		if !pcmLengthOK(k, len(payload)) {
			return result{}, errPCMLength
		}
		in.primary(seq, ts, k, payload)
		return result{}, nil
	}
	blocks, err := red.Decode(in.blocks[:0], payload, ts)
	if err != nil {
		return result{}, err
	}
	prim := blocks[len(blocks)-1]
	if int16(prim.PT) != in.pay.pt[codec.Opus] {
		return result{}, fmt.Errorf("%w: payload type %d", errREDPrimary, prim.PT)
	}
	if in.reds != nil {
		in.reds.Add(1) // before the frame goes on: who got it may read the count
	}
	in.primary(seq, ts, codec.Opus, prim.Payload)
	var r result
	in.redundant(seq, ts, blocks[:len(blocks)-1], &r)
	return r, nil
}

// pcmLengthOK reports whether n bytes are a PCM payload codec.PCMDecoder
// takes (RFC 3551 L16, RFC 3190 L24: whole samples, none extra), or true
// for a kind that is not PCM.
func pcmLengthOK(k codec.Kind, n int) bool {
	width := 0
	switch k {
	case codec.L16:
		width = 2
	case codec.L24:
		width = 3
	default:
		return true
	}
	return n > 0 && n%width == 0 && n/width <= codec.MaxPCMFrame
}

func (in *inbound) primary(seq uint16, ts uint32, k codec.Kind, payload []byte) {
	if in.haveLast && seq == in.lastSeq+1 {
		if step := ts - in.lastTS; step > 0 && step <= red.MaxOffset {
			in.frameTicks = step
		}
	}
	if !in.haveLast || int16(seq-in.lastSeq) > 0 {
		in.lastSeq, in.lastTS, in.haveLast = seq, ts, true
	}
	in.seen.mark(seq)
	if in.onPacket != nil {
		in.onPacket(seq, ts, k, payload)
	}
}

// redundant numbers a packet's redundant blocks (see inbound) and passes
// on those whose frame has not come yet.
func (in *inbound) redundant(seq uint16, ts uint32, blocks []red.Block, r *result) {
	if len(blocks) == 0 {
		return
	}
	f := in.frameTicks
	if f == 0 || ts-blocks[len(blocks)-1].TS != f {
		r.skipped += len(blocks)
		return
	}
	for _, b := range blocks {
		off := ts - b.TS
		k := off / f
		if int16(b.PT) != in.pay.pt[codec.Opus] || off%f != 0 || k == 0 || k > red.MaxBlocks {
			r.skipped++
			continue
		}
		s := seq - uint16(k)
		if !in.seen.mark(s) {
			continue // came as a primary, or from an earlier packet
		}
		r.recovered++
		if in.onRecovered != nil {
			in.onRecovered(s, b.TS, b.Payload)
		}
	}
}

// seqWindow remembers which of the 64 sequence numbers up to the newest
// one were seen, across the 16-bit wraparound.
type seqWindow struct {
	top     uint16
	mask    uint64 // bit i: top-i seen
	started bool
}

// mark records seq and reports whether it is new: not seen before and not
// more than 63 before the newest (too old to tell, and to play).
func (w *seqWindow) mark(seq uint16) bool {
	if !w.started {
		w.top, w.mask, w.started = seq, 1, true
		return true
	}
	d := int(int16(seq - w.top))
	switch {
	case d > 0:
		if d >= 64 {
			w.mask = 0
		} else {
			w.mask <<= d
		}
		w.top, w.mask = seq, w.mask|1
		return true
	case -d >= 64:
		return false
	}
	bit := uint64(1) << -d
	if w.mask&bit != 0 {
		return false
	}
	w.mask |= bit
	return true
}

// padding numbers frames past the padding-only packets among them (see
// inbound), across the 16-bit wraparound and reordering within 64
// packets. A padding packet counts when it is newer than every packet seen
// before it. One that is lost, or comes after the frame sent after it
// (browsers send padding in order, between frames, but a network may
// reorder), is inferred from that frame: a frame a whole frame's time after
// the last, with sequence numbers skipped between them, has only padding
// before it, so the numbers skipped are counted as padding too (and the
// padding itself, should it come, is ignored). This only once the sender
// has sent padding (Duet peers never do). Frames of equal length tell
// padding from a lost frame this way; a frame lost just where the length
// changes may be taken for padding, and its time played through instead
// of concealed.
type padding struct {
	top     uint16 // the newest RTP sequence number seen
	mask    uint64 // bit i: top-i is a counted padding packet
	skipped uint16 // padding packets counted, mod 2^16
	started bool
	pads    bool // the sender sends padding
	// The newest frame's RTP sequence number and timestamp.
	lastSeq uint16
	lastTS  uint32
}

// advance makes seq the newest sequence number if it is, and reports
// whether it was.
func (p *padding) advance(seq uint16) bool {
	d := int(int16(seq - p.top))
	switch {
	case !p.started:
		p.mask, p.started = 0, true
	case d <= 0:
		return false
	case d >= 64:
		p.mask = 0
	default:
		p.mask <<= d
	}
	p.top = seq
	return true
}

// skip notes a padding-only packet.
func (p *padding) skip(seq uint16) {
	p.pads = true
	if p.advance(seq) {
		p.mask |= 1
		p.skipped++
	}
}

// frame returns the number of the frame a packet with RTP sequence number
// seq and timestamp ts carries: seq less the padding packets counted
// before it. frameTicks is the frame length, 0 if not known yet.
func (p *padding) frame(seq uint16, ts uint32, frameTicks uint32) uint16 {
	started := p.started
	if p.advance(seq) {
		if gap := int(int16(seq - p.lastSeq)); started && p.pads && gap > 1 && gap <= 64 && frameTicks > 0 && ts-p.lastTS == frameTicks {
			// Nothing but padding between the last frame and this one:
			// count what has not come of it.
			for back := 1; back < gap; back++ {
				if bit := uint64(1) << back; p.mask&bit == 0 {
					p.mask |= bit
					p.skipped++
				}
			}
		}
		p.lastSeq, p.lastTS = seq, ts
		return seq - p.skipped
	}
	back := int(int16(p.top - seq)) // ≥ 0: seq came late
	if back >= 64 {
		return seq - p.skipped // too old to tell, and to play
	}
	// The padding counted after seq does not come before it.
	return seq - p.skipped + uint16(bits.OnesCount64(p.mask&(1<<back-1)))
}
