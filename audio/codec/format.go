package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/duetapp/duet/audio"
)

// Kind names one of Duet's codecs.
type Kind uint8

// The codecs. Opus goes to any WebRTC peer; the others only between Duet
// peers that both offer them (see Format).
const (
	Opus       Kind = iota + 1 // RFC 7587 Opus, low-delay, 2.5–20 ms frames
	OpusCustom                 // Opus Custom at 64-sample frames, Duet only
	L16                        // RFC 3551 16-bit PCM, 768 kbit/s
	L24                        // RFC 3190 24-bit PCM, 1152 kbit/s
)

// String returns the name ParseKind takes: "opus", "custom", "l16", "l24".
func (k Kind) String() string {
	switch k {
	case Opus:
		return "opus"
	case OpusCustom:
		return "custom"
	case L16:
		return "l16"
	case L24:
		return "l24"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind reads a codec's name, as given to --codec: "opus", "custom",
// "l16", "l24", or "pcm" for L16 (a microphone's own noise lies far above
// 16-bit steps, and it takes a third less of the path than L24).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "opus":
		return Opus, nil
	case "custom":
		return OpusCustom, nil
	case "pcm", "l16":
		return L16, nil
	case "l24":
		return L24, nil
	}
	return 0, fmt.Errorf("%w: %q (want opus, custom, pcm, l16 or l24)", ErrFormat, s)
}

// sampleBytes returns a PCM kind's bytes per sample, 0 for the others.
func (k Kind) sampleBytes() int {
	switch k {
	case L16:
		return 2
	case L24:
		return 3
	}
	return 0
}

// ErrFormat reports a codec, or a codec's parameters, that Duet does not
// speak.
var ErrFormat = errors.New("codec: unsupported format")

// Format is a codec as two peers agree on it in SDP. In an offer, Duet
// lists OpusCustom, then L16/L24 (when PCM is wanted), then Opus, each with
// MimeType, ClockRate, Channels and Fmtp; a peer that knows only Opus
// answers Opus, and a Duet peer answers the first it shares.
//
//	a=rtpmap:<pt> X-DUET-OPUS-CUSTOM/48000/1   a=fmtp:<pt> frame=64
//	a=rtpmap:<pt> L16/48000/1                   (RFC 3551 §4.5.11, dynamic)
//	a=rtpmap:<pt> L24/48000/1                   (RFC 3190)
//	a=rtpmap:<pt> opus/48000/2                  (RFC 7587; its fmtp is net/peer's)
//
// All run at 48 kHz, so an RTP timestamp advances one tick a sample. Each
// side chooses its own packet size; decoders take any the Format allows.
type Format struct {
	Kind Kind
	// Frame is the Opus Custom frame both codecs are built for, in samples
	// (fmtp "frame"): CustomFrame. 0 for the other kinds.
	Frame int
}

// FormatOf returns Duet's format of kind k: for Opus Custom at CustomFrame.
func FormatOf(k Kind) Format {
	if k == OpusCustom {
		return Format{Kind: k, Frame: CustomFrame}
	}
	return Format{Kind: k}
}

// The MIME types, as pion spells them ("audio/" and the rtpmap's encoding
// name). X-DUET-OPUS-CUSTOM is Duet's own: Opus Custom has no registered
// RTP payload format.
const (
	MimeOpus       = "audio/opus"
	MimeOpusCustom = "audio/X-DUET-OPUS-CUSTOM"
	MimeL16        = "audio/L16"
	MimeL24        = "audio/L24"
)

// MimeType returns the format's MIME type ("" for an unknown kind).
func (f Format) MimeType() string {
	switch f.Kind {
	case Opus:
		return MimeOpus
	case OpusCustom:
		return MimeOpusCustom
	case L16:
		return MimeL16
	case L24:
		return MimeL24
	}
	return ""
}

// ClockRate returns the RTP clock rate, 48 000 Hz for every kind.
func (f Format) ClockRate() uint32 { return 48000 }

// Channels returns the rtpmap's channel count: 2 for Opus, whose RFC 7587
// rtpmap always says so (Duet sends mono in it), 1 for the others.
func (f Format) Channels() uint16 {
	if f.Kind == Opus {
		return 2
	}
	return 1
}

// Fmtp returns the format's fmtp line: "frame=64" for Opus Custom, empty
// for the others (Opus's minptime and useinbandfec are net/peer's).
func (f Format) Fmtp() string {
	if f.Kind == OpusCustom {
		return "frame=" + strconv.Itoa(f.Frame)
	}
	return ""
}

// Lookahead returns the decoder's delay beyond one packet: 2.5 ms for
// Opus, 1.33 ms for Opus Custom, none for PCM. A voice's codec delay is
// its packet's duration plus this.
func (f Format) Lookahead() time.Duration {
	switch f.Kind {
	case Opus:
		return Lookahead
	case OpusCustom:
		return audio.Duration(CustomLookahead)
	}
	return 0
}

// ConcealStep returns the unit a decoder conceals in, in samples: a jitter
// buffer waiting for a late packet should conceal in steps of it. Opus: 120
// (2.5 ms, its shortest frame); Opus Custom: its frame (64); PCM: 1, any
// length.
func (f Format) ConcealStep() int {
	switch f.Kind {
	case Opus:
		return MinConceal
	case OpusCustom:
		return f.Frame
	}
	return 1
}

// ParseFormat reads a codec from an SDP media section's rtpmap and fmtp
// (as pion hands them over: MIME type, clock rate, channels, fmtp line)
// and checks everything a peer may have put there: the name (any case),
// 48 kHz, mono (channels 0, absent, means 1; Opus must say 2), and for Opus
// Custom a frame Duet allows, so no mode a peer names reaches libopus
// unchecked. Unknown fmtp keys are ignored; Opus's fmtp is not read.
func ParseFormat(mimeType string, clockRate uint32, channels uint16, fmtp string) (Format, error) {
	var f Format
	switch {
	case strings.EqualFold(mimeType, MimeOpus):
		f.Kind = Opus
	case strings.EqualFold(mimeType, MimeOpusCustom):
		f.Kind = OpusCustom
	case strings.EqualFold(mimeType, MimeL16):
		f.Kind = L16
	case strings.EqualFold(mimeType, MimeL24):
		f.Kind = L24
	default:
		return Format{}, fmt.Errorf("%w: %q", ErrFormat, mimeType)
	}
	if clockRate != 48000 {
		return Format{}, fmt.Errorf("%w: %s at %d Hz, want 48000", ErrFormat, mimeType, clockRate)
	}
	if channels == 0 {
		channels = 1
	}
	if channels != f.Channels() {
		return Format{}, fmt.Errorf("%w: %s with %d channels, want %d", ErrFormat, mimeType, channels, f.Channels())
	}
	if f.Kind != OpusCustom {
		return f, nil
	}
	frame, err := fmtpInt(fmtp, "frame")
	if err != nil {
		return Format{}, fmt.Errorf("%w: %s: %w", ErrFormat, mimeType, err)
	}
	if frame != CustomFrame {
		return Format{}, fmt.Errorf("%w: %s frame=%d: %w", ErrFormat, mimeType, frame, ErrCustomFrame)
	}
	f.Frame = frame
	return f, nil
}

// fmtpInt returns the value of key in an fmtp line ("a=1;b=2", keys in
// any case): a decimal number, given once.
func fmtpInt(fmtp, key string) (int, error) {
	found := false
	var v int
	for p := range strings.SplitSeq(fmtp, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), key) {
			continue
		}
		if found {
			return 0, fmt.Errorf("fmtp %s given twice", key)
		}
		found = true
		val = strings.TrimSpace(val)
		n, err := strconv.Atoi(val)
		if err != nil || len(val) > 6 || n < 0 || val[0] == '+' {
			return 0, fmt.Errorf("fmtp %s=%q is not a number", key, val)
		}
		v = n
	}
	if !found {
		return 0, fmt.Errorf("fmtp has no %s", key)
	}
	return v, nil
}

// FrameEncoder is what every encoder here does: *Encoder, *CustomEncoder
// and *PCMEncoder. Not safe for concurrent use.
type FrameEncoder interface {
	// FrameSamples returns the samples each Encode takes: one packet.
	FrameSamples() int
	// Encode encodes exactly one packet of samples into dst (MaxPacket
	// bytes always suffice) and returns the payload's length.
	Encode(pcm []float32, dst []byte) (int, error)
	// Bitrate returns the target bitrate in bits per second; SetBitrate
	// changes it (PCM's is fixed: ErrFixedBitrate).
	Bitrate() int
	SetBitrate(bitrate int) error
	// Close frees what the encoder holds; safe to call twice.
	Close() error
}

// FrameDecoder is what every decoder here does: *Decoder, *CustomDecoder
// and *PCMDecoder. It satisfies audio/jitter's Decoder. Not safe for
// concurrent use; Decode and Conceal neither allocate nor block, errors
// included.
type FrameDecoder interface {
	// Decode decodes one payload into pcm (960 samples always suffice)
	// and returns the samples written; a malformed payload is an error.
	Decode(packet []byte, pcm []float32) (int, error)
	// Conceal fills pcm, the length of the missing audio, with packet-
	// loss concealment.
	Conceal(pcm []float32) error
	// Close frees what the decoder holds; safe to call twice.
	Close() error
}

// EncoderOptions are the local choices behind an encoder, which the peer
// need not know.
type EncoderOptions struct {
	// Packet is the samples per packet: for Opus 120, 240, 480 or 960;
	// for Opus Custom a whole number of frames (a 128-sample device block
	// is 2); for PCM 1…MaxPCMFrame.
	Packet int
	// Bitrate in bits per second for Opus and Opus Custom; 0 means the
	// codec's default. PCM ignores it.
	Bitrate int
	// VBR and Complexity tune Opus Custom (see CustomOptions).
	VBR        bool
	Complexity int
}

// NewEncoder returns an encoder for f, checked as ParseFormat checks.
func (f Format) NewEncoder(o EncoderOptions) (FrameEncoder, error) {
	// Each case returns its own nil on error, not an interface holding a
	// nil pointer.
	switch f.Kind {
	case Opus:
		if o.Bitrate == 0 {
			o.Bitrate = DefaultBitrate
		}
		e, err := NewEncoder(audio.Duration(o.Packet), o.Bitrate)
		if err != nil {
			return nil, err
		}
		return e, nil
	case OpusCustom:
		e, err := NewCustomEncoder(f.Frame, o.Packet, CustomOptions{Bitrate: o.Bitrate, VBR: o.VBR, Complexity: o.Complexity})
		if err != nil {
			return nil, err
		}
		return e, nil
	case L16, L24:
		e, err := NewPCMEncoder(f.Kind, o.Packet)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrFormat, f.Kind)
}

// NewDecoder returns a decoder for f, checked as ParseFormat checks.
func (f Format) NewDecoder() (FrameDecoder, error) {
	switch f.Kind {
	case Opus:
		d, err := NewDecoder()
		if err != nil {
			return nil, err
		}
		return d, nil
	case OpusCustom:
		d, err := NewCustomDecoder(f.Frame)
		if err != nil {
			return nil, err
		}
		return d, nil
	case L16, L24:
		d, err := NewPCMDecoder(f.Kind)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrFormat, f.Kind)
}

// New returns an encoder and a decoder for f: the pair one side of a duet
// needs once the peers have agreed on f.
func New(f Format, o EncoderOptions) (FrameEncoder, FrameDecoder, error) {
	enc, err := f.NewEncoder(o)
	if err != nil {
		return nil, nil, err
	}
	dec, err := f.NewDecoder()
	if err != nil {
		enc.Close()
		return nil, nil, err
	}
	return enc, dec, nil
}
