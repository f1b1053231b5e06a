package peer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
)

// Payload types Duet offers: Opus at 111 and RFC 2198 redundancy of Opus
// ("audio/red", fmtp "111/111") at 63, as Chrome does; Duet's own codecs
// at dynamic numbers below them. The answerer takes the offerer's numbers;
// the ones in use are read after negotiation (see negotiate).
const (
	customPayloadType = 96
	l24PayloadType    = 97
	l16PayloadType    = 98
	opusPayloadType   = 111
	redPayloadType    = 63
)

// register registers the codecs to offer and take with m, in the order the
// offer lists them: RED over Opus, Opus, then the rest of kinds (Duet's
// own codecs; kinds is offered's list). A browser sends the first codec of
// the offer it knows, whatever its answer says: with L16 (which Chromium
// has) ahead of Opus, Chromium answered Opus and RED and sent L16 at the
// offer's payload type, which pion, having negotiated no L16, dropped.
// RED goes ahead of Opus so that Chromium protects its voice with it
// (after Opus it sends plain Opus). Duet peers choose their codec by
// Config.Codecs and Accepts, not by this order.
func register(m *webrtc.MediaEngine, kinds []codec.Kind) error {
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: redCapability(),
		PayloadType:        redPayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("peer: register red: %w", err)
	}
	others := slices.DeleteFunc(slices.Clone(kinds), func(k codec.Kind) bool { return k == codec.Opus })
	for _, k := range append([]codec.Kind{codec.Opus}, others...) {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: capability(k),
			PayloadType:        webrtc.PayloadType(payloadTypeOf(k)),
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("peer: register %v: %w", k, err)
		}
	}
	return nil
}

// payloadTypeOf is the payload type Duet offers kind k at.
func payloadTypeOf(k codec.Kind) uint8 {
	switch k {
	case codec.OpusCustom:
		return customPayloadType
	case codec.L24:
		return l24PayloadType
	case codec.L16:
		return l16PayloadType
	}
	return opusPayloadType
}

// MimeTypeRED is the media type of RFC 2198 redundant audio.
const MimeTypeRED = "audio/red"

// DefaultCodecs returns the voice codecs a Duet peer offers, best first:
// Opus Custom (Duet peers), then PCM (L24, L16: Duet peers, fat paths),
// then Opus (everyone).
func DefaultCodecs() []codec.Kind {
	return []codec.Kind{codec.OpusCustom, codec.L24, codec.L16, codec.Opus}
}

// capability is kind k's codec as Duet registers it. Opus's fmtp line is
// empty on purpose: pion counts a codec as matching exactly only if every
// fmtp key both sides name has the same value, and keeps only the exact
// matches when there are any; a browser answers Opus with
// "minptime=10;useinbandfec=1" and RED with "111/111", so an Opus fmtp
// naming either key differently (Duet's used to say
// "minptime=2.5;useinbandfec=0") left RED alone negotiated and the voice
// track failed. minptime is only a hint (Duet senders choose their own
// frame, browsers send 20 ms whatever it says) and in-band FEC exists only
// in the SILK modes Duet never sends, so nothing is lost by naming neither.
func capability(k codec.Kind) webrtc.RTPCodecCapability {
	f := codec.FormatOf(k)
	return webrtc.RTPCodecCapability{
		MimeType:    f.MimeType(),
		ClockRate:   f.ClockRate(),
		Channels:    f.Channels(), // Opus: 2, as RFC 7587 says; our voices are mono
		SDPFmtpLine: f.Fmtp(),
	}
}

func redCapability() webrtc.RTPCodecCapability {
	pt := strconv.Itoa(opusPayloadType)
	return webrtc.RTPCodecCapability{
		MimeType:    MimeTypeRED,
		ClockRate:   48000,
		Channels:    2,
		SDPFmtpLine: pt + "/" + pt, // each block is Opus (RFC 2198 §5)
	}
}

// payloads maps one direction's negotiated payload types to Duet's codecs.
// Each codec pion negotiated is checked with codec.ParseFormat first, so a
// mode a peer names that Duet does not take (an Opus Custom frame other
// than 64, a clock rate, a channel count) is never used, and its packets
// are discarded as of a codec nobody negotiated.
type payloads struct {
	pt   [codec.L24 + 1]int16 // by kind: its payload type, -1 none
	kind [128]codec.Kind      // by payload type: its kind, 0 none
	red  int16                // RED whose blocks are Opus, -1 none
}

// negotiate reads the codecs pion negotiated for one direction; the first
// of each kind wins.
func negotiate(codecs []webrtc.RTPCodecParameters) payloads {
	p := payloads{red: -1}
	for i := range p.pt {
		p.pt[i] = -1
	}
	for _, c := range codecs {
		if c.PayloadType > 127 {
			continue
		}
		f, err := codec.ParseFormat(c.MimeType, c.ClockRate, c.Channels, c.SDPFmtpLine)
		if err != nil || p.pt[f.Kind] >= 0 || p.kind[c.PayloadType] != 0 {
			continue // not ours (RED, an unknown codec) or a mode we refuse
		}
		p.pt[f.Kind] = int16(c.PayloadType)
		p.kind[c.PayloadType] = f.Kind
	}
	if opus := p.pt[codec.Opus]; opus >= 0 {
		for _, c := range codecs {
			if strings.EqualFold(c.MimeType, MimeTypeRED) && c.PayloadType <= 127 && p.kind[c.PayloadType] == 0 &&
				redOf(c.SDPFmtpLine, uint8(opus)) {
				p.red = int16(c.PayloadType)
				break
			}
		}
	}
	return p
}

// has reports whether kind k was negotiated.
func (p *payloads) has(k codec.Kind) bool { return int(k) < len(p.pt) && p.pt[k] >= 0 }

// any reports whether any codec was negotiated.
func (p *payloads) any() bool {
	for _, pt := range p.pt {
		if pt >= 0 {
			return true
		}
	}
	return false
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

// voiceTrack is the outgoing voice, a webrtc.TrackLocal that may send any
// of the codecs both sides accepted. pion's TrackLocalStaticRTP stamps
// every packet with the payload type of the one codec it was bound to, so
// a RED or Opus Custom packet written through it would go out labelled
// Opus; voiceTrack keeps every negotiated payload type and lets the
// writer choose. Safe for concurrent use.
type voiceTrack struct {
	mu     sync.RWMutex
	bindID string // the binding's context, "" when not bound
	ssrc   uint32
	pay    payloads
	out    webrtc.TrackLocalWriter

	sendTimeID uint8 // the send-time extension's id, 0 if not accepted (timing.go)
}

// Bind is called by pion once negotiation is done, with the codecs both
// sides accepted for this transceiver (the sender's parameters). It hands
// back Opus, which every peer has, as the codec pion describes the stream
// by (its RTCP reports only need the clock rate, 48 kHz for all).
func (v *voiceTrack) Bind(c webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := c.CodecParameters()
	pay := negotiate(codecs)
	if !pay.any() {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	var primary webrtc.RTPCodecParameters
	for _, k := range []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24, codec.L16} {
		if pay.has(k) {
			for _, cp := range codecs {
				if int16(cp.PayloadType) == pay.pt[k] {
					primary = cp
					break
				}
			}
			break
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bindID, v.ssrc, v.out = c.ID(), uint32(c.SSRC()), c.WriteStream()
	v.pay = pay
	v.sendTimeID = sendTimeID(c.HeaderExtensions())
	return primary, nil
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

// payloadTypes returns the negotiated payload type of kind k and of RED
// over Opus (-1 when not negotiated); bound is false before negotiation.
func (v *voiceTrack) payloadTypes(k codec.Kind) (pt, red int16, bound bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	pt = -1
	if v.pay.has(k) {
		pt = v.pay.pt[k]
	}
	return pt, v.pay.red, v.out != nil
}

// accepts reports whether the partner accepted kind k; false before
// negotiation.
func (v *voiceTrack) accepts(k codec.Kind) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.out != nil && v.pay.has(k)
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

// defaultPtime is the packet length Duet asks for, in ms, with "a=ptime"
// in its session descriptions (RFC 4566). Chromium 156 and Firefox 153
// send 20 ms Opus packets unless asked; asked, they send 10 ms for 10 (and
// for 5: nothing shorter), 40 for 40; "a=maxptime" alone they ignore.
const defaultPtime = 10

// withPtime adds "a=ptime:ms" to each audio section of an SDP. pion
// refuses a local description that differs from the one it made, so it
// is added to the copy that goes to the partner only: an attribute that
// pion neither reads nor needs to.
func withPtime(sdp string, ms int) string {
	var b strings.Builder
	audio := false
	end := func() {
		if audio {
			fmt.Fprintf(&b, "a=ptime:%d\r\n", ms)
		}
	}
	for line := range strings.Lines(sdp) {
		if strings.HasPrefix(line, "m=") {
			end()
			audio = strings.HasPrefix(line, "m=audio ")
		}
		b.WriteString(line)
	}
	end()
	return b.String()
}
