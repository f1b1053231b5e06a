// Package codec holds Duet's voice codecs, all mono at 48 kHz, float32
// samples in [-1, 1]:
//
//   - Opus (RFC 7587), encoded through gopkg.in/hraban/opus.v2 and decoded
//     through libopus directly (cgo), restricted-low-delay (CELT only):
//     frames of 2.5, 5 (the default), 10 or 20 ms, delay one frame plus
//     2.5 ms of look-ahead. Any WebRTC peer speaks it.
//   - Opus Custom (libopus's custom modes, cgo) at 64-sample frames: delay
//     one frame plus 64 samples, 2.67 ms in all. Duet peers only.
//   - L16 and L24 PCM (RFC 3551, RFC 3190): no delay beyond the packet, at
//     768 or 1152 kbit/s. Duet peers only, on fat clean paths.
//
// Kind names them, Format is one as negotiated in SDP (ParseFormat checks
// what a peer sends), and New builds an encoder and decoder for a Format.
//
// An encoder or decoder is not safe for concurrent use: each belongs to
// one goroutine (the encoder to the send loop, the decoder to the audio
// thread). Every decoder neither allocates nor blocks in Decode and
// Conceal, errors included: they return only predeclared error values.
package codec

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/hraban/opus.v2"

	"github.com/duetapp/duet/audio"
)

// DefaultFrame is the frame duration Duet uses unless told otherwise.
const DefaultFrame = 5 * time.Millisecond

// DefaultBitrate is the encoder's starting bitrate in bits per second: high
// enough that a sung voice keeps its air and vibrato.
const DefaultBitrate = 96000

// Lookahead is the encoder's algorithmic delay beyond one frame in
// restricted-low-delay mode.
const Lookahead = 2500 * time.Microsecond

// MinConceal is the shortest concealment the decoder makes, in samples
// (2.5 ms, Opus's smallest frame).
const MinConceal = 120

// MaxPacket is the largest Opus packet in bytes (RFC 6716 §3.2.1).
const MaxPacket = 1275

// ErrFrame reports a frame duration Opus does not offer in low-delay mode.
var ErrFrame = errors.New("codec: frame must be 2.5, 5, 10 or 20 ms")

// FrameSamples returns the samples per frame of duration d, or ErrFrame.
func FrameSamples(d time.Duration) (int, error) {
	switch d {
	case 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond:
		return audio.Samples(d), nil
	}
	return 0, fmt.Errorf("%w (got %v)", ErrFrame, d)
}

// Encoder turns frames of mono samples into Opus packets.
type Encoder struct {
	enc     *opus.Encoder
	frame   int
	bitrate int
}

// NewEncoder returns a restricted-low-delay mono encoder for frames of
// duration frame at bitrate bits per second.
func NewEncoder(frame time.Duration, bitrate int) (*Encoder, error) {
	n, err := FrameSamples(frame)
	if err != nil {
		return nil, err
	}
	enc, err := opus.NewEncoder(audio.SampleRate, 1, opus.AppRestrictedLowdelay)
	if err != nil {
		return nil, fmt.Errorf("codec: new encoder: %w", err)
	}
	e := &Encoder{enc: enc, frame: n}
	if err := e.SetBitrate(bitrate); err != nil {
		return nil, err
	}
	return e, nil
}

// FrameSamples returns the samples the encoder takes per Encode.
func (e *Encoder) FrameSamples() int { return e.frame }

// SetBitrate changes the target bitrate in bits per second.
func (e *Encoder) SetBitrate(bitrate int) error {
	if err := e.enc.SetBitrate(bitrate); err != nil {
		return fmt.Errorf("codec: bitrate %d: %w", bitrate, err)
	}
	e.bitrate = bitrate
	return nil
}

// Bitrate returns the target bitrate in bits per second.
func (e *Encoder) Bitrate() int { return e.bitrate }

// Close does nothing: hraban/opus keeps the encoder in Go memory.
func (e *Encoder) Close() error { return nil }

// Encode encodes exactly one frame of pcm into dst (at least MaxPacket
// bytes) and returns the packet length.
func (e *Encoder) Encode(pcm []float32, dst []byte) (int, error) {
	if len(pcm) != e.frame {
		return 0, fmt.Errorf("codec: encode %d samples, frame is %d", len(pcm), e.frame)
	}
	n, err := e.enc.EncodeFloat32(pcm, dst)
	if err != nil {
		return 0, fmt.Errorf("codec: encode: %w", err)
	}
	return n, nil
}
