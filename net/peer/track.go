package peer

import (
	"strconv"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Payload types Duet offers, as Chrome does: Opus at 111, and RFC 2198
// redundancy of Opus ("audio/red", fmtp "111/111") at 63. The answerer takes
// the offerer's numbers; the ones in use are read after negotiation.
const (
	opusPayloadType = 111
	redPayloadType  = 63
)

// MimeTypeRED is the media type of RFC 2198 redundant audio.
const MimeTypeRED = "audio/red"

func redCapability() webrtc.RTPCodecCapability {
	pt := strconv.Itoa(opusPayloadType)
	return webrtc.RTPCodecCapability{
		MimeType:    MimeTypeRED,
		ClockRate:   48000,
		Channels:    2,
		SDPFmtpLine: pt + "/" + pt, // each block is Opus (RFC 2198 §5)
	}
}

// voiceTrack is the outgoing voice, a webrtc.TrackLocal whose codec is
// Opus. pion's TrackLocalStaticRTP stamps every packet with the payload
// type of the codec it was bound to, so a RED packet written through it
// would go out labelled Opus; voiceTrack keeps both negotiated payload
// types and lets the writer choose. Safe for concurrent use.
type voiceTrack struct {
	mu     sync.RWMutex
	bindID string // the binding's context, "" when not bound
	ssrc   uint32
	opusPT uint8
	redPT  uint8 // 0 when the partner did not accept RED
	out    webrtc.TrackLocalWriter
}

// Bind is called by pion once negotiation is done, with the codecs both
// sides accepted for this transceiver (the sender's parameters).
func (v *voiceTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	opus, red, ok := negotiated(c.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bindID, v.ssrc, v.out = c.ID(), uint32(c.SSRC()), c.WriteStream()
	v.opusPT, v.redPT = uint8(opus.PayloadType), 0
	if red != nil {
		v.redPT = uint8(red.PayloadType)
	}
	return opus, nil
}

// negotiated finds Opus among codecs, and RED whose blocks are that Opus.
func negotiated(codecs []webrtc.RTPCodecParameters) (opus webrtc.RTPCodecParameters, red *webrtc.RTPCodecParameters, ok bool) {
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeOpus) {
			opus, ok = c, true
			break
		}
	}
	if !ok {
		return opus, nil, false
	}
	for i, c := range codecs {
		if strings.EqualFold(c.MimeType, MimeTypeRED) && redOf(c.SDPFmtpLine, uint8(opus.PayloadType)) {
			return opus, &codecs[i], true
		}
	}
	return opus, nil, true
}

// redOf reports whether a RED fmtp line ("111/111") names only payload
// type pt for its blocks.
func redOf(fmtp string, pt uint8) bool {
	parts := strings.Split(strings.TrimSpace(fmtp), "/")
	for _, s := range parts {
		if n, err := strconv.Atoi(s); err != nil || n != int(pt) {
			return false
		}
	}
	return len(parts) > 0
}

// Unbind is called by pion when the sender stops.
func (v *voiceTrack) Unbind(c webrtc.TrackLocalContext) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.bindID != c.ID() {
		return webrtc.ErrUnbindFailed
	}
	v.bindID, v.out = "", nil
	return nil
}

func (v *voiceTrack) ID() string                { return "voice" }
func (v *voiceTrack) RID() string               { return "" }
func (v *voiceTrack) StreamID() string          { return "duet" }
func (v *voiceTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// payloadTypes returns the negotiated Opus and RED payload types (RED 0
// when not negotiated); ok is false before negotiation.
func (v *voiceTrack) payloadTypes() (opus, red uint8, ok bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.opusPT, v.redPT, v.out != nil
}

// ssrcNow returns the voice's SSRC, 0 before negotiation.
func (v *voiceTrack) ssrcNow() uint32 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.ssrc
}

// write sends one RTP packet; h's SSRC is set here, its payload type must
// be one payloadTypes returned. Before negotiation (or after the sender
// stopped) the packet is dropped and sent is false, as a
// TrackLocalStaticRTP without bindings does.
func (v *voiceTrack) write(h *rtp.Header, payload []byte) (sent bool, err error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.out == nil {
		return false, nil
	}
	h.SSRC = v.ssrc
	_, err = v.out.WriteRTP(h, payload)
	return err == nil, err
}
