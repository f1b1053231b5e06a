package codec

/*
#cgo pkg-config: opus
#include <opus.h>
*/
import "C"

import "unsafe"

// Decoder turns Opus packets back into mono samples and conceals lost ones.
// It runs on the audio thread, so it calls libopus itself rather than
// through hraban/opus, whose errors are fmt.Errorf values and boxed codes:
// an allocation on every malformed packet.
type Decoder struct {
	// state is libopus's decoder, in Go memory (it holds no pointers, so
	// cgo may be handed it); st points at it.
	state []byte
	st    *C.OpusDecoder
}

// NewDecoder returns a mono 48 kHz decoder.
func NewDecoder() (*Decoder, error) {
	d := &Decoder{state: make([]byte, C.opus_decoder_get_size(1))}
	d.st = (*C.OpusDecoder)(unsafe.Pointer(&d.state[0]))
	if code := C.opus_decoder_init(d.st, 48000, 1); code != C.OPUS_OK {
		return nil, opusError(code)
	}
	return d, nil
}

// Decode decodes one packet into pcm, which must hold the packet's frame
// (20 ms, 960 samples, always does), and returns the samples written. An
// empty or malformed packet, or one longer than pcm, is an error (one of
// the predeclared values) and leaves the decoder as it was.
func (d *Decoder) Decode(packet []byte, pcm []float32) (int, error) {
	if len(packet) == 0 {
		return 0, errOpusInvalidPacket // libopus would conceal instead
	}
	if len(pcm) == 0 {
		return 0, ErrShortBuffer
	}
	n := C.opus_decode_float(d.st, (*C.uchar)(unsafe.Pointer(&packet[0])), C.opus_int32(len(packet)),
		(*C.float)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), 0)
	if n < 0 {
		return 0, opusError(n)
	}
	return int(n), nil
}

// Close does nothing: the decoder lives in Go memory.
func (d *Decoder) Close() error { return nil }

// Conceal fills pcm, exactly the length of the missing audio, with Opus
// packet-loss concealment continuing from the last decoded frame. libopus
// conceals in steps of 2.5 ms (MinConceal): a length that is not a
// multiple of it is an error.
func (d *Decoder) Conceal(pcm []float32) error {
	if len(pcm) == 0 {
		return nil
	}
	// libopus sizes the concealment from the buffer it is given.
	if n := C.opus_decode_float(d.st, nil, 0, (*C.float)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), 0); n < 0 {
		return opusError(n)
	}
	return nil
}
