// Package red packs and unpacks RTP payloads for redundant audio, RFC 2198
// ("RED"), as browsers use it for Opus: each packet carries its primary
// frame and copies of up to a few previous ones, so a lost packet's frame
// can come with the next. It only handles payloads (after the RTP header);
// negotiating the "red" payload type in SDP is the peer's business.
//
// Layout (RFC 2198 §3): for each redundant block a 4-byte header
//
//	F=1 (1 bit) | block PT (7) | timestamp offset (14) | block length (10)
//
// then a 1-byte header for the primary, F=0 | PT (7), then the blocks'
// data, oldest first, the primary last. Offsets are RTP ticks before the
// packet's timestamp (< 16384: 341 ms at 48 kHz); lengths < 1024 bytes.
//
// Functions are pure and safe for concurrent use; Decode returns blocks
// that alias its input.
package red

import (
	"errors"
	"fmt"
)

// Limits of the format, and of what Decode accepts.
const (
	MaxOffset = 1<<14 - 1
	MaxLength = 1<<10 - 1
	MaxBlocks = 16 // redundant blocks in one packet
)

// Errors wrapped by Encode and Decode.
var (
	ErrTruncated = errors.New("red: payload truncated")
	ErrTooMany   = errors.New("red: too many blocks")
	ErrBlock     = errors.New("red: block does not fit the format")
)

// Block is one frame in a RED payload.
type Block struct {
	PT      uint8  // payload type, < 128
	TS      uint32 // RTP timestamp: the packet's less the block's offset
	Payload []byte
}

// Encode appends to dst the RED payload of a packet with timestamp ts
// carrying primary (payload type pt) and the older frames, oldest first.
// Each older frame's TS must be before ts by at most MaxOffset, its
// payload at most MaxLength bytes; empty older frames are skipped (RFC
// 2198 allows them, but they carry nothing).
func Encode(dst []byte, pt uint8, ts uint32, primary []byte, older []Block) ([]byte, error) {
	if pt > 127 {
		return dst, fmt.Errorf("%w: payload type %d", ErrBlock, pt)
	}
	n := 0
	for i, b := range older {
		off := ts - b.TS
		switch {
		case len(b.Payload) == 0:
			continue
		case b.PT > 127:
			return dst, fmt.Errorf("%w: block %d payload type %d", ErrBlock, i, b.PT)
		case off > MaxOffset || off == 0:
			return dst, fmt.Errorf("%w: block %d is %d ticks before the packet, want 1…%d", ErrBlock, i, int32(off), MaxOffset)
		case len(b.Payload) > MaxLength:
			return dst, fmt.Errorf("%w: block %d is %d bytes, want ≤ %d", ErrBlock, i, len(b.Payload), MaxLength)
		}
		n++
	}
	if n > MaxBlocks {
		return dst, fmt.Errorf("%w: %d redundant, want ≤ %d", ErrTooMany, n, MaxBlocks)
	}
	for _, b := range older {
		if len(b.Payload) == 0 {
			continue
		}
		off, l := uint32(ts-b.TS), uint32(len(b.Payload))
		dst = append(dst, 0x80|b.PT, byte(off>>6), byte(off<<2)|byte(l>>8), byte(l))
	}
	dst = append(dst, pt)
	for _, b := range older {
		dst = append(dst, b.Payload...)
	}
	return append(dst, primary...), nil
}

// Decode appends to blocks the frames of a RED payload from a packet with
// timestamp ts: the redundant ones oldest first, the primary last. The
// payloads alias payload.
func Decode(blocks []Block, payload []byte, ts uint32) ([]Block, error) {
	start := len(blocks)
	p := payload
	data := 0 // bytes of redundant data the headers announce
	var lens [MaxBlocks]int
	for {
		if len(p) == 0 {
			return blocks[:start], fmt.Errorf("%w: header %d missing", ErrTruncated, len(blocks)-start)
		}
		if p[0]&0x80 == 0 {
			break
		}
		if len(blocks)-start == MaxBlocks {
			return blocks[:start], fmt.Errorf("%w: more than %d redundant", ErrTooMany, MaxBlocks)
		}
		if len(p) < 4 {
			return blocks[:start], fmt.Errorf("%w: header %d has %d of 4 bytes", ErrTruncated, len(blocks)-start, len(p))
		}
		off := uint32(p[1])<<6 | uint32(p[2])>>2
		l := int(p[2]&3)<<8 | int(p[3])
		lens[len(blocks)-start] = l
		blocks = append(blocks, Block{PT: p[0] & 0x7f, TS: ts - off})
		data += l
		p = p[4:]
	}
	primaryPT := p[0]
	p = p[1:]
	if len(p) < data {
		return blocks[:start], fmt.Errorf("%w: blocks announce %d bytes, %d left", ErrTruncated, data, len(p))
	}
	for i := start; i < len(blocks); i++ {
		l := lens[i-start]
		blocks[i].Payload = p[:l:l]
		p = p[l:]
	}
	return append(blocks, Block{PT: primaryPT, TS: ts, Payload: p}), nil
}
