package codec

/*
#cgo pkg-config: opus
#include <opus_custom.h>

// cgo cannot call C's variadic functions: one fixed-argument wrapper per
// use of the ctl calls.
static int duet_custom_encoder_set(OpusCustomEncoder *e, int request, opus_int32 value) {
	return opus_custom_encoder_ctl(e, request, value);
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// CustomFrame is the Opus Custom frame Duet uses, in samples (1.33 ms):
// its decoder's output trails the frame by one more frame (CustomLookahead),
// 2.67 ms of algorithmic delay in all, against 5 ms for standard Opus at
// 2.5 ms frames. A larger device block travels as several frames in one
// packet (see CustomEncoder).
//
// It is the only frame size ever handed to libopus's custom modes, because
// in Debian's libopus 1.3.1 the others are useless or fatal:
//   - 128 and 256 abort the process in their first call
//     (celt_decoder.c:126: assertion failed: st->end <= 21; TestUnlistedFrameAborts
//     shows it in a child process);
//   - 120, 240, 480 and 960 are standard Opus's CELT frames with its 2.5 ms
//     look-ahead: no delay gained over standard Opus, which any peer has;
//   - 96 works (96 samples of look-ahead) but divides no device block.
const CustomFrame = 64

// CustomLookahead is the Opus Custom decoder's delay beyond one frame, in
// samples (1.33 ms at 64-sample frames), measured by TestCustomDelay.
const CustomLookahead = CustomFrame

// MaxCustomFrames is the most Opus Custom frames an encoder puts in one
// packet: 960 samples, 20 ms, the longest Opus frame and the jitter buffer's
// decode buffer.
const MaxCustomFrames = 15

// DefaultCustomBitrate is an Opus Custom encoder's bitrate unless told
// otherwise, in bits per second: 22 bytes per 64-sample frame, what Jamulus
// sends a mono voice at its default ("normal") quality.
const DefaultCustomBitrate = 132000

// The bitrates an Opus Custom encoder takes, in bits per second: below the
// minimum a 64-sample frame has too few bytes to carry a voice; libopus caps
// a mono stream at the maximum.
const (
	MinCustomBitrate = 32000
	MaxCustomBitrate = 260000
)

// DefaultCustomComplexity is the encoder's default effort, 1…10: libopus's
// own default, which Jamulus keeps for its 64-sample frames.
const DefaultCustomComplexity = 10

// customLossPercent tunes the encoder for lost packets (it leans less on
// the previous frame's energy): Jamulus sets 35 % for its 64-sample frames
// "to avoid loud artifacts" when packets are concealed.
const customLossPercent = 35

// maxCustomFrameBytes is the most bytes one frame may take: its length
// travels in one byte.
const maxCustomFrameBytes = 255

// Errors of the codecs. Every decoder's Decode and Conceal return only
// these predeclared values and libopus's below, so a failure on the audio
// thread allocates nothing.
var (
	ErrCustomFrame  = errors.New("codec: Opus Custom frame must be 64 samples")
	ErrPacketFrames = errors.New("codec: packet size not allowed (Opus Custom: 64…960 samples in steps of 64; PCM: 1…256)")
	ErrBitrate      = errors.New("codec: bitrate out of range")
	ErrComplexity   = errors.New("codec: complexity must be 1…10")
	ErrEncodeLength = errors.New("codec: encode takes exactly one packet of samples")
	ErrMalformed    = errors.New("codec: malformed Opus Custom packet")
	ErrShortBuffer  = errors.New("codec: buffer too small for the packet")
	ErrClosed       = errors.New("codec: closed")
)

// libopus's error codes as predeclared values (converting a negative code
// to an error value would allocate).
var (
	errOpusBadArg         = errors.New("codec: libopus: invalid argument")
	errOpusBufferTooSmall = errors.New("codec: libopus: buffer too small")
	errOpusInternal       = errors.New("codec: libopus: internal error")
	errOpusInvalidPacket  = errors.New("codec: libopus: invalid packet")
	errOpusUnimplemented  = errors.New("codec: libopus: unimplemented")
	errOpusInvalidState   = errors.New("codec: libopus: invalid state")
	errOpusAllocFail      = errors.New("codec: libopus: allocation failed")
	errOpusUnknown        = errors.New("codec: libopus: unknown error")
)

func opusError(code C.int) error {
	switch code {
	case C.OPUS_BAD_ARG:
		return errOpusBadArg
	case C.OPUS_BUFFER_TOO_SMALL:
		return errOpusBufferTooSmall
	case C.OPUS_INTERNAL_ERROR:
		return errOpusInternal
	case C.OPUS_INVALID_PACKET:
		return errOpusInvalidPacket
	case C.OPUS_UNIMPLEMENTED:
		return errOpusUnimplemented
	case C.OPUS_INVALID_STATE:
		return errOpusInvalidState
	case C.OPUS_ALLOC_FAIL:
		return errOpusAllocFail
	}
	return errOpusUnknown
}

// CustomOptions tune an Opus Custom encoder; the zero value is Duet's
// default.
type CustomOptions struct {
	// Bitrate in bits per second, MinCustomBitrate…MaxCustomBitrate; 0
	// means DefaultCustomBitrate. At constant bitrate each 64-sample frame
	// takes bitrate/6000 bytes, rounded to the nearest, its one-byte header
	// included.
	Bitrate int
	// VBR lets frames vary in size around Bitrate (libopus's constrained
	// VBR); by default every frame has the same size, as Jamulus sends.
	VBR bool
	// Complexity is the encoder's effort, 1…10; 0 means
	// DefaultCustomComplexity.
	Complexity int
}

// A CustomEncoder turns blocks of mono samples into Opus Custom packets.
// Not safe for concurrent use.
//
// A packet is one or more frames, each its length in one byte (2…255) and
// then the frame as libopus writes it (its own one-byte header first). The
// length bytes let the receiver split a packet whatever block the sender
// uses, so each side chooses its block without negotiating it.
type CustomEncoder struct {
	mode    *C.OpusCustomMode
	enc     *C.OpusCustomEncoder
	frame   int // samples per frame (the mode)
	packet  int // samples per Encode
	bitrate int
}

// newCustomMode creates libopus's mode for frames of n samples.
func newCustomMode(n int) (*C.OpusCustomMode, error) {
	var cerr C.int
	m := C.opus_custom_mode_create(48000, C.int(n), &cerr)
	if m == nil {
		return nil, opusError(cerr)
	}
	return m, nil
}

// NewCustomEncoder returns a mono 48 kHz Opus Custom encoder for frames of
// frame samples (CustomFrame is the only one) that takes packet samples,
// a whole number of frames, per Encode.
func NewCustomEncoder(frame, packet int, o CustomOptions) (*CustomEncoder, error) {
	if frame != CustomFrame {
		return nil, ErrCustomFrame
	}
	return newCustomEncoder(frame, packet, o)
}

// newCustomEncoder is NewCustomEncoder without the check of frame: only
// NewCustomEncoder and the test showing why it checks call it.
func newCustomEncoder(frame, packet int, o CustomOptions) (*CustomEncoder, error) {
	if packet < frame || packet%frame != 0 || packet/frame > MaxCustomFrames {
		return nil, ErrPacketFrames
	}
	if o.Bitrate == 0 {
		o.Bitrate = DefaultCustomBitrate
	}
	if o.Complexity == 0 {
		o.Complexity = DefaultCustomComplexity
	}
	if o.Bitrate < MinCustomBitrate || o.Bitrate > MaxCustomBitrate {
		return nil, ErrBitrate
	}
	if o.Complexity < 1 || o.Complexity > 10 {
		return nil, ErrComplexity
	}
	mode, err := newCustomMode(frame)
	if err != nil {
		return nil, err
	}
	var cerr C.int
	enc := C.opus_custom_encoder_create(mode, 1, &cerr)
	if enc == nil {
		C.opus_custom_mode_destroy(mode)
		return nil, opusError(cerr)
	}
	e := &CustomEncoder{mode: mode, enc: enc, frame: frame, packet: packet}
	vbr := 0
	if o.VBR {
		vbr = 1
	}
	for _, s := range []struct{ req, val C.int }{
		{C.OPUS_SET_VBR_REQUEST, C.int(vbr)},
		{C.OPUS_SET_COMPLEXITY_REQUEST, C.int(o.Complexity)},
		{C.OPUS_SET_PACKET_LOSS_PERC_REQUEST, customLossPercent},
	} {
		if r := C.duet_custom_encoder_set(enc, s.req, C.opus_int32(s.val)); r != C.OPUS_OK {
			e.Close()
			return nil, opusError(r)
		}
	}
	if err := e.SetBitrate(o.Bitrate); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// FrameSamples returns the samples the encoder takes per Encode: its
// packet.
func (e *CustomEncoder) FrameSamples() int { return e.packet }

// Bitrate returns the target bitrate in bits per second, without the
// packets' length bytes.
func (e *CustomEncoder) Bitrate() int { return e.bitrate }

// SetBitrate changes the target bitrate, MinCustomBitrate…MaxCustomBitrate
// bits per second, from the next frame on.
func (e *CustomEncoder) SetBitrate(bitrate int) error {
	if e.enc == nil {
		return ErrClosed
	}
	if bitrate < MinCustomBitrate || bitrate > MaxCustomBitrate {
		return ErrBitrate
	}
	if r := C.duet_custom_encoder_set(e.enc, C.OPUS_SET_BITRATE_REQUEST, C.opus_int32(bitrate)); r != C.OPUS_OK {
		return opusError(r)
	}
	e.bitrate = bitrate
	return nil
}

// Encode encodes exactly one packet of samples (FrameSamples) into dst and
// returns the packet's length. dst shares its room evenly among the frames,
// each at most 255 bytes; MaxPacket bytes always suffice. It does not
// allocate.
func (e *CustomEncoder) Encode(pcm []float32, dst []byte) (int, error) {
	if e.enc == nil {
		return 0, ErrClosed
	}
	if len(pcm) != e.packet {
		return 0, ErrEncodeLength
	}
	frames := e.packet / e.frame
	room := min(maxCustomFrameBytes, len(dst)/frames-1)
	if room < 2 {
		return 0, ErrShortBuffer
	}
	n := 0
	for i := range frames {
		got := C.opus_custom_encode_float(e.enc, (*C.float)(unsafe.Pointer(&pcm[i*e.frame])), C.int(e.frame),
			(*C.uchar)(unsafe.Pointer(&dst[n+1])), C.int(room))
		if got < 0 {
			return 0, opusError(got)
		}
		dst[n] = byte(got)
		n += 1 + int(got)
	}
	return n, nil
}

// Close frees the encoder's C memory; safe to call twice. Afterwards Encode
// and SetBitrate return ErrClosed.
func (e *CustomEncoder) Close() error {
	if e.enc != nil {
		C.opus_custom_encoder_destroy(e.enc)
		e.enc = nil
	}
	if e.mode != nil {
		C.opus_custom_mode_destroy(e.mode) // after the encoder that uses it
		e.mode = nil
	}
	return nil
}

// A CustomDecoder turns Opus Custom packets (see CustomEncoder) back into
// mono samples and conceals lost ones. Not safe for concurrent use;
// Decode and Conceal neither allocate nor block, for the audio thread.
type CustomDecoder struct {
	mode    *C.OpusCustomMode
	dec     *C.OpusCustomDecoder
	frame   int
	scratch []float32 // one frame, for a concealment shorter than a frame
	badBits byte      // header bits no frame may set; see customHeaderBad
}

// NewCustomDecoder returns a mono 48 kHz Opus Custom decoder for frames of
// frame samples (CustomFrame is the only one).
func NewCustomDecoder(frame int) (*CustomDecoder, error) {
	if frame != CustomFrame {
		return nil, ErrCustomFrame
	}
	return newCustomDecoder(frame)
}

// newCustomDecoder is NewCustomDecoder without the check of frame: only
// NewCustomDecoder and the test showing why it checks call it.
func newCustomDecoder(frame int) (*CustomDecoder, error) {
	mode, err := newCustomMode(frame)
	if err != nil {
		return nil, err
	}
	var cerr C.int
	dec := C.opus_custom_decoder_create(mode, 1, &cerr)
	if dec == nil {
		C.opus_custom_mode_destroy(mode)
		return nil, opusError(cerr)
	}
	d := &CustomDecoder{mode: mode, dec: dec, frame: frame, scratch: make([]float32, frame)}
	if frame == CustomFrame {
		// The header means other things in other modes, which reach here
		// only in the test that shows why they are refused.
		d.badBits = customHeaderBad
	}
	return d, nil
}

// customHeaderBad are the bits of a frame's first byte (libopus's custom
// header: end-band reduction << 5 | LM << 3 | stereo << 2) that no mono
// 64-sample stream sets: a frame size above the mode's (LM > 0), which
// libopus would reject after decoding the frames before it, and stereo.
const customHeaderBad = 0x1c

// frames checks a packet's framing and returns how many frames it holds,
// or ErrMalformed.
func (d *CustomDecoder) frames(packet []byte) (int, error) {
	k := 0
	for i := 0; i < len(packet); k++ {
		l := int(packet[i])
		// A frame of 0 or 1 bytes is how libopus is told of a loss: it
		// would conceal instead of decoding.
		if l < 2 || i+1+l > len(packet) || packet[i+1]&d.badBits != 0 {
			return 0, ErrMalformed
		}
		i += 1 + l
	}
	if k == 0 {
		return 0, ErrMalformed
	}
	return k, nil
}

// Decode decodes one packet into pcm, which must hold all its frames (960
// samples always do), and returns the samples written. A packet that is
// malformed or too long for pcm is rejected before any frame is decoded,
// so it leaves the decoder as it was.
func (d *CustomDecoder) Decode(packet []byte, pcm []float32) (int, error) {
	if d.dec == nil {
		return 0, ErrClosed
	}
	k, err := d.frames(packet)
	if err != nil {
		return 0, err
	}
	if k*d.frame > len(pcm) {
		return 0, ErrShortBuffer
	}
	at := 0
	for i := 0; i < len(packet); {
		l := int(packet[i])
		got := C.opus_custom_decode_float(d.dec, (*C.uchar)(unsafe.Pointer(&packet[i+1])), C.int(l),
			(*C.float)(unsafe.Pointer(&pcm[at])), C.int(d.frame))
		if got < 0 {
			return 0, opusError(got)
		}
		at += d.frame
		i += 1 + l
	}
	return at, nil
}

// Conceal fills pcm, exactly the length of the missing audio, with packet-
// loss concealment continuing from the last frame. libopus conceals whole
// frames: a length that is not a multiple of the frame (64 samples) ends
// with part of one, the rest of which is dropped, so the next decoded frame
// joins a little out of step; a jitter buffer should conceal in whole
// frames (ConcealStep).
func (d *CustomDecoder) Conceal(pcm []float32) error {
	if d.dec == nil {
		return ErrClosed
	}
	whole := len(pcm) - len(pcm)%d.frame
	for at := 0; at < whole; at += d.frame {
		if got := C.opus_custom_decode_float(d.dec, nil, 0, (*C.float)(unsafe.Pointer(&pcm[at])), C.int(d.frame)); got < 0 {
			return opusError(got)
		}
	}
	if whole < len(pcm) {
		if got := C.opus_custom_decode_float(d.dec, nil, 0, (*C.float)(unsafe.Pointer(&d.scratch[0])), C.int(d.frame)); got < 0 {
			return opusError(got)
		}
		copy(pcm[whole:], d.scratch)
	}
	return nil
}

// Close frees the decoder's C memory; safe to call twice. Afterwards Decode
// and Conceal return ErrClosed.
func (d *CustomDecoder) Close() error {
	if d.dec != nil {
		C.opus_custom_decoder_destroy(d.dec)
		d.dec = nil
	}
	if d.mode != nil {
		C.opus_custom_mode_destroy(d.mode)
		d.mode = nil
	}
	return nil
}
