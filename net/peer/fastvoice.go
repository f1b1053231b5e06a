package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// fastVoice is the voice's way in that passes no goroutine: where Duet
// reads the sockets (see sockets: on Linux, the host candidates') they are
// read on a real-time thread (rtReader), and that thread decrypts the
// partner's voice packets itself and hands them on (voiceIn, then
// Config.OnPacket) before queueing the datagram for pion. Through pion a
// packet passes three goroutines, each woken by the one before, and an
// ordinary thread here wakes over half a millisecond late a few times a
// second (see audio/rt): the voice came late by it on a clean path.
//
// pion still gets every datagram: it answers ICE, runs DTLS, reads RTCP
// and reports on the voice (its interceptors see each packet as onTrack
// reads it). onTrack drops the packets the fast path took, one by one (a
// packet the fast path did not see, through a server-reflexive or relayed
// pair on pion's own sockets, or before the keys, goes pion's way).
//
// The keys: pion (webrtc v4.2.26) keeps its DTLS connection, and with it
// the SRTP keys, to itself. fastVoice reads the connection out of the
// DTLSTransport's unexported field by reflection, once, when DTLS comes
// up, and derives the partner's SRTP key as pion does (RFC 5764's
// exporter, dtls.State.ExportKeyingMaterial). If a pion upgrade moves the
// field the fast path stays off (logged) and the voice goes through pion
// as before; TestFastVoice fails.
type fastVoice struct {
	on       bool                         // Duet reads the sockets (rtReader)
	srtp     atomic.Pointer[srtp.Context] // the partner's keys, once DTLS is up
	stream   atomic.Pointer[fastStream]   // the partner's voice track, once known
	isClient atomic.Bool                  // our DTLS role, from the remote description
	// handed holds the packets the fast path handed on, by sequence
	// number modulo its length: handedKey of each.
	handed [handedRing]atomic.Uint64

	took   atomic.Int64 // packets the fast path handed on
	failed atomic.Int64 // voice packets it could not decrypt (pion judges them too)

	// The real-time thread's scratch.
	hdr   rtp.Header
	plain [maxDatagram]byte
}

// fastStream is the partner's voice track as the fast path knows it.
type fastStream struct {
	ssrc  uint32
	voice *voiceIn
}

// handedRing is how many packets the fast path remembers handing on: over
// a second at the shortest packets (1.33 ms), and pion's copy of each
// comes within milliseconds.
const handedRing = 1024

// maxDatagram is the largest datagram read: ICE, DTLS and RTP over UDP
// all stay under 1500 bytes; a longer one is cut and fails its check.
const maxDatagram = 1500

// handedKey is a packet's entry in handed: its RTP time and sequence
// number, and a bit so that no entry is 0.
func handedKey(ts uint32, seq uint16) uint64 { return uint64(ts)<<32 | 1<<16 | uint64(seq) }

// datagram looks at one datagram as it comes off the socket, on the
// socket's real-time thread: the partner's voice is decrypted and handed
// on; anything else is left to pion.
func (f *fastVoice) datagram(b []byte) {
	ctx, st := f.srtp.Load(), f.stream.Load()
	if ctx == nil || st == nil || !isRTP(b) || binary.BigEndian.Uint32(b[8:12]) != st.ssrc {
		return
	}
	at := st.voice.times.readTime()
	plain, err := ctx.DecryptRTP(f.plain[:0], b, &f.hdr)
	if err != nil {
		f.failed.Add(1)
		return
	}
	// Before pion can have it: the datagram is queued for pion after.
	f.handed[f.hdr.SequenceNumber%handedRing].Store(handedKey(f.hdr.Timestamp, f.hdr.SequenceNumber))
	f.took.Add(1)
	st.voice.handle(plain, at)
}

// isRTP tells an RTP packet from the others sharing the socket: STUN
// (first byte 0-3), DTLS (20-63) and RTCP (second byte 192-223, RFC 5761).
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223)
}

// taken reports whether the fast path handed on the RTP packet b (as
// pion's track reader got it).
func (f *fastVoice) taken(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	seq, ts := binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[4:8])
	return f.handed[seq%handedRing].Load() == handedKey(ts, seq)
}

// setupPattern finds a session description's DTLS role (RFC 5763).
var setupPattern = regexp.MustCompile(`(?m)^a=setup:(\w+)`)

// remote notes our DTLS role from the partner's description d as pion
// takes it (DTLSTransport.role): the opposite of a role the partner says;
// else the server if we offered (pion is then ICE's controlling agent),
// the client if we answer.
func (f *fastVoice) remote(d webrtc.SessionDescription) {
	setup := ""
	if m := setupPattern.FindStringSubmatch(d.SDP); m != nil {
		setup = m[1]
	}
	switch setup {
	case "active":
		f.isClient.Store(false)
	case "passive":
		f.isClient.Store(true)
	default:
		f.isClient.Store(d.Type == webrtc.SDPTypeOffer)
	}
}

// start derives the partner's SRTP key from t, which has just connected;
// from pion's goroutine that connected it (the one that set the field).
func (f *fastVoice) start(t *webrtc.DTLSTransport) error {
	conn, err := dtlsConn(t)
	if err != nil {
		return err
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return errors.New("peer: fast voice: DTLS has no state")
	}
	profile, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("peer: fast voice: no SRTP profile negotiated")
	}
	// dtls's and srtp's profile numbers are both RFC 5764's.
	cfg := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, f.isClient.Load()); err != nil {
		return fmt.Errorf("peer: fast voice: %w", err)
	}
	ctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile,
		srtp.SRTPReplayProtection(replayWindow),
		// Header extensions encrypted (RFC 9335) or not: pion negotiates
		// it per transceiver; either way the packet is authenticated.
		srtp.Cryptex(srtp.CryptexModeEnabled))
	if err != nil {
		return fmt.Errorf("peer: fast voice: %w", err)
	}
	f.srtp.Store(ctx)
	return nil
}

// replayWindow is how many packets back a replayed one is recognised:
// pion's default.
const replayWindow = 64

// dtlsConn is t's DTLS connection, read from its unexported field (see
// fastVoice).
func dtlsConn(t *webrtc.DTLSTransport) (*dtls.Conn, error) {
	f := reflect.ValueOf(t).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*dtls.Conn]() || f.IsNil() {
		return nil, errors.New("peer: fast voice: pion's DTLS transport has no conn field of type *dtls.Conn")
	}
	return (*dtls.Conn)(f.UnsafePointer()), nil
}

// voiceIn handles the partner's voice packets from whichever reader has
// them first (see fastVoice), one at a time.
type voiceIn struct {
	p     *Peer
	mu    sync.Mutex // the two readers overlap while the fast path starts
	in    *inbound
	times *sendTimeReader
	pkt   rtp.Packet
}

// handle takes one decrypted RTP packet, read at at (sendTimeReader's
// clock).
func (v *voiceIn) handle(b []byte, at int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p, pkt := v.p, &v.pkt
	if err := pkt.Unmarshal(b); err != nil {
		p.discarded.Add(1)
		return // SRTP authenticated it, so this is a sender bug; skip it
	}
	p.packetsReceived.Add(1)
	p.bytesReceived.Add(int64(len(pkt.Payload)))
	v.times.packet(pkt, at)
	if pkt.Padding && len(pkt.Payload) == 0 {
		v.in.padding(pkt.SequenceNumber) // a browser's probe: no frame
		p.paddingReceived.Add(1)
		return
	}
	res, err := v.in.packet(pkt.PayloadType, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload)
	if err != nil {
		p.discarded.Add(1) // a hot path: counted, not logged
		return
	}
	p.recovered.Add(int64(res.recovered))
	p.redSkipped.Add(int64(res.skipped))
}
