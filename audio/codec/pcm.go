package codec

import (
	"errors"
	"math"
)

// MaxPCMFrame is the most samples a PCM packet may carry: 5.33 ms, Duet's
// largest device block, 768 bytes of L24, which fits any path's MTU after
// the SRTP, RTP, UDP and IPv6 headers, and the jitter buffer's slots.
const MaxPCMFrame = 256

// ErrPCMLength reports a PCM payload that is empty, not a whole number of
// samples, or longer than MaxPCMFrame; ErrFixedBitrate a bitrate asked of
// PCM, whose rate is fixed.
var (
	ErrPCMLength    = errors.New("codec: PCM payload must be 1…256 whole samples")
	ErrFixedBitrate = errors.New("codec: PCM has a fixed bitrate")
)

// pcmFadeIn is how long, in samples, the first packet after a concealment
// fades in from where the concealment faded to (1 ms).
const pcmFadeIn = 48

// A PCMEncoder packs mono samples as RFC 3551 L16 (§4.5.11) or RFC 3190
// L24: big-endian (network order) two's-complement integers, full scale
// ±1.0, one after another with no header. Not safe for concurrent use;
// Encode does not allocate.
type PCMEncoder struct {
	width  int // bytes per sample: 2 or 3
	packet int
}

// NewPCMEncoder returns an encoder of kind L16 or L24 that takes packet
// samples (1…MaxPCMFrame) per Encode.
func NewPCMEncoder(k Kind, packet int) (*PCMEncoder, error) {
	width := k.sampleBytes()
	if width == 0 {
		return nil, ErrFormat
	}
	if packet < 1 || packet > MaxPCMFrame {
		return nil, ErrPacketFrames
	}
	return &PCMEncoder{width: width, packet: packet}, nil
}

// FrameSamples returns the samples the encoder takes per Encode.
func (e *PCMEncoder) FrameSamples() int { return e.packet }

// Bitrate returns the payload's bitrate in bits per second: 768 000 for
// L16, 1 152 000 for L24.
func (e *PCMEncoder) Bitrate() int { return 8 * e.width * 48000 }

// SetBitrate returns ErrFixedBitrate unless bitrate is PCM's own: a
// congested path calls for another codec, not a lower PCM rate.
func (e *PCMEncoder) SetBitrate(bitrate int) error {
	if bitrate != e.Bitrate() {
		return ErrFixedBitrate
	}
	return nil
}

// Encode writes exactly one packet of samples (FrameSamples) into dst,
// rounded to the nearest step and clipped to full scale, and returns the
// payload's length.
func (e *PCMEncoder) Encode(pcm []float32, dst []byte) (int, error) {
	if len(pcm) != e.packet {
		return 0, ErrEncodeLength
	}
	n := len(pcm) * e.width
	if len(dst) < n {
		return 0, ErrShortBuffer
	}
	if e.width == 2 {
		for i, v := range pcm {
			s := quantize(v, 1<<15)
			dst[2*i], dst[2*i+1] = byte(s>>8), byte(s)
		}
	} else {
		for i, v := range pcm {
			s := quantize(v, 1<<23)
			dst[3*i], dst[3*i+1], dst[3*i+2] = byte(s>>16), byte(s>>8), byte(s)
		}
	}
	return n, nil
}

// quantize maps v in [-1, 1) to an integer in [-scale, scale-1]; NaN is 0.
func quantize(v float32, scale float64) int32 {
	x := math.Round(float64(v) * scale)
	switch {
	case x >= scale:
		return int32(scale - 1)
	case x <= -scale:
		return int32(-scale)
	case x == x:
		return int32(x)
	}
	return 0
}

// Close does nothing: a PCMEncoder holds no C memory.
func (e *PCMEncoder) Close() error { return nil }

// A PCMDecoder reads L16 or L24 payloads (see PCMEncoder) back into
// samples, and conceals a lost one by fading out a mirror image of the last
// packet. Not safe for concurrent use; Decode and Conceal neither allocate
// nor block, for the audio thread.
//
// Why not silence, or the last packet again: a voice cut to silence clicks
// where it stops and where it starts again, and a repeated packet jumps at
// its start from the packet's last sample back to its first. Read
// backwards, the last packet starts on the very sample it ended with, so
// the concealment joins it without a step, and it fades to silence within
// the packet's length (a repeated 1–5 ms stretch would buzz); the packet
// after a concealment fades in from where the concealment faded to. A
// longer loss is silence after the fade: unlike Opus, PCM has no model of
// the voice to continue it with.
type PCMDecoder struct {
	width int
	last  [MaxPCMFrame]float32 // the last packet decoded
	n     int                  // its length, samples; 0 before the first
	fade  int                  // samples concealed since the last packet; -1 when none
}

// NewPCMDecoder returns a decoder of kind L16 or L24.
func NewPCMDecoder(k Kind) (*PCMDecoder, error) {
	width := k.sampleBytes()
	if width == 0 {
		return nil, ErrFormat
	}
	return &PCMDecoder{width: width, fade: -1}, nil
}

// Decode converts one payload into pcm and returns the samples written. A
// payload that is empty, not a whole number of samples, or longer than
// MaxPCMFrame returns ErrPCMLength, one longer than pcm ErrShortBuffer;
// either leaves the decoder as it was.
func (d *PCMDecoder) Decode(packet []byte, pcm []float32) (int, error) {
	if len(packet) == 0 || len(packet)%d.width != 0 || len(packet) > MaxPCMFrame*d.width {
		return 0, ErrPCMLength
	}
	n := len(packet) / d.width
	if n > len(pcm) {
		return 0, ErrShortBuffer
	}
	if d.width == 2 {
		for i := range n {
			s := int16(uint16(packet[2*i])<<8 | uint16(packet[2*i+1]))
			pcm[i] = float32(s) / (1 << 15)
		}
	} else {
		for i := range n {
			// Shift the 24 bits to the top of an int32 and back down to
			// extend the sign.
			s := int32(uint32(packet[3*i])<<24|uint32(packet[3*i+1])<<16|uint32(packet[3*i+2])<<8) >> 8
			pcm[i] = float32(s) / (1 << 23)
		}
	}
	if d.fade >= 0 {
		from := d.gain(d.fade)
		ramp := min(n, pcmFadeIn)
		for i := range ramp {
			pcm[i] *= from + (1-from)*float32(i+1)/float32(ramp+1)
		}
	}
	d.fade = -1
	d.n = copy(d.last[:], pcm[:n])
	return n, nil
}

// gain is the concealment's level j samples into it: from 1 down to 0
// across the last packet's length.
func (d *PCMDecoder) gain(j int) float32 {
	if j >= d.n {
		return 0
	}
	return 1 - float32(j+1)/float32(d.n+1)
}

// Conceal fills pcm, exactly the length of the missing audio, with the last
// packet backwards, fading out (see PCMDecoder); silence before the first
// packet and after the fade.
func (d *PCMDecoder) Conceal(pcm []float32) error {
	d.fade = max(d.fade, 0)
	for i := range pcm {
		j := d.fade + i
		if j >= d.n {
			clear(pcm[i:])
			break
		}
		pcm[i] = d.last[d.n-1-j] * d.gain(j)
	}
	d.fade = min(d.fade+len(pcm), d.n)
	return nil
}

// Close does nothing: a PCMDecoder holds no C memory.
func (d *PCMDecoder) Close() error { return nil }
