package peer

import (
	"encoding/binary"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/net/clock"
)

// Per-packet timing for the session clock (package clock): with
// Config.Now set, a Duet peer offers the RTP header extension SendTimeURI
// and, where the partner accepted it, stamps its voice packets with the
// time they leave on Now's clock; each incoming voice packet that carries
// the partner's stamp goes to Config.OnSendTime with the time it was read.
// The clock then has hundreds of one-way trips a second each way, where
// pings give ten. A browser knows no such extension and accepts none:
// its voice goes unstamped, and the clock falls back on its pings.
//
// Why not abs-send-time: browsers send it too, on their own clock rather
// than the session clock, so a stamp could not be told from a browser's;
// and its 6.18 fixed-point seconds are coarser (3.8 µs) than need be.

// SendTimeURI names Duet's send-time extension: three bytes, big-endian,
// the sender's clock (Config.Now) as clock.Stamp gives it (microseconds
// modulo 2^24).
const SendTimeURI = "urn:x-duet:rtp-hdrext:send-time"

// sendTimeSize is the extension's payload, in bytes.
const sendTimeSize = clock.StampSize

// stampEvery is the least time between two stamped packets: short frames
// (Opus Custom's 1.3 ms) would otherwise pay the extension's 8 bytes 750
// times a second, where 250 stamps do as well.
const stampEvery = 4 * time.Millisecond

// registerSendTime offers the send-time extension on audio.
func registerSendTime(m *webrtc.MediaEngine) error {
	return m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: SendTimeURI}, webrtc.RTPCodecTypeAudio)
}

// sendTimeID returns the send-time extension's negotiated id among exts,
// 0 if the partner did not accept it.
func sendTimeID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == SendTimeURI && e.ID > 0 && e.ID < 15 {
			return uint8(e.ID)
		}
	}
	return 0
}

// stamper stamps outgoing voice packets; WriteVoice's, under sendMu.
type stamper struct {
	last int64 // when the last stamp was put on, Now's ns
	have bool
}

// stamp puts the send time, by now, on h under extension id (0: the
// partner does not take it), if the last stamp is stampEvery old.
func (s *stamper) stamp(h *rtp.Header, now func() int64, id uint8) {
	if now == nil || id == 0 {
		return
	}
	t := now()
	if s.have && t-s.last < int64(stampEvery) {
		return
	}
	// A fresh slice: the header keeps it until the packet is written.
	st := clock.Stamp(t)
	if h.SetExtension(id, []byte{byte(st >> 16), byte(st >> 8), byte(st)}) == nil {
		s.last, s.have = t, true
	}
}

// sendTimeReader reads the partner's stamps off one incoming track.
type sendTimeReader struct {
	id   uint8
	now  func() int64
	seen func(stamp uint32, at int64)
}

// newSendTimeReader returns the reader for an incoming track of r, or nil
// when the stamps go nowhere (cfg) or the partner does not send them.
func newSendTimeReader(cfg *Config, r *webrtc.RTPReceiver) *sendTimeReader {
	if cfg.Now == nil || cfg.OnSendTime == nil {
		return nil
	}
	id := sendTimeID(r.GetParameters().HeaderExtensions)
	if id == 0 {
		return nil
	}
	return &sendTimeReader{id: id, now: cfg.Now, seen: cfg.OnSendTime}
}

// packet passes pkt's stamp, if it has one, on with the time it was read
// (at, taken as soon as the packet was).
func (s *sendTimeReader) packet(pkt *rtp.Packet, at int64) {
	if s == nil {
		return
	}
	if b := pkt.GetExtension(s.id); len(b) == sendTimeSize {
		s.seen(uint32(b[0])<<16|uint32(binary.BigEndian.Uint16(b[1:])), at)
	}
}

// readTime is the time a packet was read: Now's, if stamps are read.
func (s *sendTimeReader) readTime() int64 {
	if s == nil {
		return 0
	}
	return s.now()
}

// sendTime returns the send-time extension's id for our voice, 0 when
// the partner did not accept it (or before negotiation).
func (v *voiceTrack) sendTime() uint8 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.out == nil {
		return 0
	}
	return v.sendTimeID
}
