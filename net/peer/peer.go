// Package peer is Duet's WebRTC connection between host and guest, on
// pion/webrtc v4: one audio track each way (the guest's voice to the host,
// the host's mix to the guest) and one reliable data channel for control
// messages (text messages: JSON, which a browser reads as strings). Media
// is DTLS-SRTP end to end.
//
// A second data channel, unordered and never retransmitted, carries clock
// pings (package clock); a third, reliable, carries files (the backing
// track) with flow control, so a song never queues up in memory.
//
// The host makes the offer, the guest answers; candidates trickle through
// whatever signaling the caller uses (the package knows none). Voice packets
// go out as RTP with the caller's own sequence numbers and timestamps (48 kHz
// ticks, which the caller derives from capture positions) and come in
// through Config.OnPacket, called from the peer's reader goroutine.
//
// Codecs (package codec): each side offers RED over Opus at 63 and Opus
// at 111, as Chrome does, then Opus Custom ("X-DUET-OPUS-CUSTOM/48000/1",
// fmtp frame=64), L24 and L16 PCM (all three at dynamic payload types,
// Duet peers only); Config.Codecs narrows and orders Duet's own. A peer
// that knows only Opus (a browser) negotiates Opus and RED and no error,
// and sends what the offer lists first that it knows (see register). Each
// description asks for 10 ms packets ("a=ptime:10", Config.Ptime), which
// browsers honour (they send 20 ms unless asked). The sender chooses the codec per packet among those the partner
// accepted (WriteVoice's kind, Accepts); the receiver learns each packet's
// codec from its payload type. Every codec pion negotiated is checked with
// codec.ParseFormat before it is used, and a packet of a codec not
// negotiated, or PCM of a wrong length, is dropped and counted
// (Stats.PacketsDiscarded), never passed on.
//
// Browsers also send padding-only packets (bandwidth probes) among their
// voice's: they are skipped and counted (Stats.PaddingReceived), and the
// sequence numbers OnPacket and OnRecovered give leave them out, so the
// frames come numbered without gaps (see inbound).
//
// Loss: Opus in CELT mode has no in-band FEC, so each side also offers RFC
// 2198 redundancy ("audio/red" with fmtp "111/111"). With SetRedundancy(n)
// an Opus packet carries the previous n Opus frames (package red), sent
// with the RED payload type the partner accepted; the receiver passes the
// primary frame to OnPacket and frames whose own packet never came to
// OnRecovered, numbered from their timestamp offsets on the assumption
// that frames are equally long (see inbound). Redundancy is for Opus only:
// Opus Custom and PCM packets go out alone. pion's TrackLocalStaticRTP
// labels every packet with the one codec it was bound to, so the voice
// track is our own TrackLocal (track.go) that keeps every negotiated
// payload type.
//
// Feedback for bitrate and redundancy comes from the partner's RTCP
// receiver reports (loss over the last second, RTT), through
// Config.OnFeedback and Peer.Feedback; see Feedback for why not GCC.
//
// Methods are safe for concurrent use. Close stops every goroutine the
// peer started.
package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/pionlog"
	"github.com/duetapp/duet/net/red"
)

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("peer: closed")

// Config describes a peer.
type Config struct {
	// ICEServers are STUN/TURN URLs ("stun:host:port"); none is fine on a LAN.
	ICEServers []webrtc.ICEServer
	// RelayOnly sends media only through a TURN relay: it hides each
	// singer's address from the other (and tests the relay).
	RelayOnly bool
	// Loopback restricts ICE to the loopback interface: tests and the demo.
	Loopback bool
	// WrapConn, with Loopback, wraps the one UDP socket all media goes
	// through (the lab impairs or watches the network there); nil is the
	// plain loopback.
	WrapConn func(net.PacketConn) net.PacketConn
	// Codecs are the voice codecs this side offers and takes, best first;
	// nil means DefaultCodecs. Opus is always among them (last, unless
	// listed), since every WebRTC peer has it; RED over Opus is offered
	// whenever Opus is.
	Codecs []codec.Kind
	// OnPacket receives every incoming voice packet (the primary frame of
	// a RED packet) with its codec, from one goroutine; payload is only
	// valid during the call. Only codecs both sides negotiated arrive,
	// and PCM only in whole samples. seq is the packet's RTP sequence
	// number less the padding-only packets before it (none from a Duet
	// peer): one apart from frame to frame.
	OnPacket func(seq uint16, timestamp uint32, kind codec.Kind, payload []byte)
	// OnRecovered receives Opus frames recovered from RED redundancy whose own
	// packet has not arrived (yet), with the sequence number and timestamp
	// they were first sent with; from OnPacket's goroutine, payload only
	// valid during the call. For jitter.Playout.InsertRecovered.
	OnRecovered func(seq uint16, timestamp uint32, payload []byte)
	// OnCandidate receives local ICE candidates to send to the other side.
	OnCandidate func(webrtc.ICECandidateInit)
	// OnControl receives messages from the other side's control channel.
	OnControl func([]byte)
	// OnClock receives messages from the clock channel (unordered, never
	// retransmitted: a late clock ping is worse than a lost one).
	OnClock func([]byte)
	// OnFile receives messages from the file channel (reliable, ordered),
	// from one goroutine; the slice is only valid during the call.
	OnFile func([]byte)
	// OnFeedback receives the partner's view of our voice's path each
	// time a reception report comes (about once a second), from the
	// peer's RTCP goroutine; see Feedback. It must not block for long.
	OnFeedback func(Feedback)
	// Ptime is the packet length this side asks the partner to send, with
	// "a=ptime" in its session descriptions; 0 means 10 ms, the shortest
	// browsers send (they send 20 ms unless asked); at most 20 ms, the
	// longest frame the jitter buffer decodes. Duet peers choose their own
	// packets and ignore it.
	Ptime time.Duration
	// Now, if set, is the clock this side stamps its voice packets with
	// (nanoseconds, the session clock) and reads its partner's by, for
	// OnSendTime: see timing.go.
	Now func() int64
	// OnSendTime receives, for each incoming voice packet stamped with the
	// partner's send time, the stamp (clock.Stamp of the partner's Now)
	// and this side's Now when the packet was read; from OnPacket's
	// goroutine, before OnPacket. It must not block.
	OnSendTime func(stamp uint32, at int64)
	// OnLink is told when the connection drops (false: no traffic for a
	// few seconds; ICE keeps trying) and when it comes back (true), from
	// pion's goroutine; it must not block.
	OnLink func(up bool)
	Logger *slog.Logger
}

// Peer is one side of a duet's connection. See the package doc.
type Peer struct {
	mux   *ice.UDPMuxDefault // the wrapped loopback socket, if any
	cfg   Config
	log   *slog.Logger
	pc    *webrtc.PeerConnection
	track *voiceTrack

	// sendMu orders WriteVoice's packets with its redundancy state; held
	// across the write (the encoder's goroutine, not the audio callback).
	sendMu sync.Mutex
	hist   history
	stamps stamper

	connected chan struct{}
	ended     chan struct{}
	endOnce   sync.Once
	connOnce  sync.Once

	mu        sync.Mutex
	closed    bool
	remoteSet bool
	pending   []webrtc.ICECandidateInit
	control   *webrtc.DataChannel
	clock     *webrtc.DataChannel
	file      *webrtc.DataChannel
	fileLow   chan struct{}  // signalled when the file channel's buffer drains
	wg        sync.WaitGroup // reader goroutines

	packetsSent     atomic.Int64
	bytesSent       atomic.Int64
	packetsReceived atomic.Int64
	bytesReceived   atomic.Int64
	redSent         atomic.Int64
	redReceived     atomic.Int64
	paddingReceived atomic.Int64
	recovered       atomic.Int64
	redSkipped      atomic.Int64
	discarded       atomic.Int64
	failed          atomic.Bool
	dropped         atomic.Bool // disconnected, not yet back
	fb              feedbackState

	// The selected candidate pair, guarded by mu.
	candidate string
	relayed   bool
	address   string
	closeErr  error
	closeOnce sync.Once
}

// New creates a peer connection with its outgoing voice track.
func New(cfg Config) (*Peer, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pc, mux, err := newConnection(cfg, log)
	if err != nil {
		return nil, err
	}
	p := &Peer{
		mux:       mux,
		cfg:       cfg,
		log:       log,
		pc:        pc,
		connected: make(chan struct{}),
		ended:     make(chan struct{}),
		fileLow:   make(chan struct{}, 1),
	}
	p.track = &voiceTrack{pay: negotiate(nil)}
	p.fb.sent = func() (int64, int64) { return p.packetsSent.Load(), p.bytesSent.Load() }
	p.fb.path = func() (uint64, uint64, bool) { return pathSent(pc) }
	sender, err := pc.AddTrack(p.track)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("peer: add track: %w", err)
	}
	p.wg.Go(func() { p.readRTCP(sender) })
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(p.onPair)
	pc.OnTrack(p.onTrack)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil && cfg.OnCandidate != nil {
			cfg.OnCandidate(c.ToJSON())
		}
	})
	pc.OnConnectionStateChange(p.onState)
	pc.OnDataChannel(p.useChannel)
	return p, nil
}

// newConnection makes the pion peer connection cfg describes, with its
// wrapped loopback socket, if any.
func newConnection(cfg Config, log *slog.Logger) (*webrtc.PeerConnection, *ice.UDPMuxDefault, error) {
	var mux *ice.UDPMuxDefault
	if cfg.WrapConn != nil {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, nil, fmt.Errorf("peer: loopback socket: %w", err)
		}
		mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: cfg.WrapConn(conn), Logger: pionlog.Factory{Log: log}.NewLogger("mux")})
	}
	fail := func(err error) (*webrtc.PeerConnection, *ice.UDPMuxDefault, error) {
		if mux != nil {
			mux.Close()
		}
		return nil, nil, err
	}
	api, err := newAPI(cfg, log, mux)
	if err != nil {
		return fail(err)
	}
	conf := webrtc.Configuration{ICEServers: cfg.ICEServers}
	if cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(conf)
	if err != nil {
		return fail(fmt.Errorf("peer: new connection: %w", err))
	}
	return pc, mux, nil
}

// readRTCP keeps reading RTCP from the sender until the connection closes,
// or pion's interceptors stall; the receiver reports in it say how much of
// our voice the partner lost.
func (p *Peer) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			var reports []rtcp.ReceptionReport
			switch r := pkt.(type) {
			case *rtcp.ReceiverReport:
				reports = r.Reports
			case *rtcp.SenderReport: // browsers put their reports in
				reports = r.Reports
			}
			if p.fb.onReports(reports, p.track.ssrcNow(), time.Now()) && p.cfg.OnFeedback != nil {
				p.cfg.OnFeedback(p.Feedback())
			}
		}
	}
}

// onPair notes the candidate pair ICE selected.
func (p *Peer) onPair(pair *webrtc.ICECandidatePair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.candidate = pair.Local.Typ.String()
	p.relayed = pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay
	p.address = net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port)))
}

// onState follows the connection's state: connected (again), dropped,
// failed or closed.
func (p *Peer) onState(s webrtc.PeerConnectionState) {
	p.log.Debug("peer connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		if p.dropped.Swap(false) && p.cfg.OnLink != nil {
			p.cfg.OnLink(true)
		}
		p.connOnce.Do(func() { close(p.connected) })
	case webrtc.PeerConnectionStateDisconnected:
		p.dropped.Store(true)
		if p.cfg.OnLink != nil {
			p.cfg.OnLink(false)
		}
	case webrtc.PeerConnectionStateFailed:
		p.failed.Store(true)
		p.endOnce.Do(func() { close(p.ended) })
	case webrtc.PeerConnectionStateClosed:
		p.endOnce.Do(func() { close(p.ended) })
	}
}

// offered returns the codecs to register, best first: cfg.Codecs (or
// DefaultCodecs) once each, Opus last unless listed.
func offered(kinds []codec.Kind) []codec.Kind {
	if kinds == nil {
		kinds = DefaultCodecs()
	}
	var out []codec.Kind
	for _, k := range append(slices.Clip(kinds), codec.Opus) {
		if codec.FormatOf(k).MimeType() != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func newAPI(cfg Config, log *slog.Logger, mux *ice.UDPMuxDefault) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := register(m, offered(cfg.Codecs)); err != nil {
		return nil, err
	}
	if cfg.Now != nil {
		if err := registerSendTime(m); err != nil {
			return nil, fmt.Errorf("peer: send-time extension: %w", err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, reg, webrtc.WithReportReceiverOptions(report.ReceiverInterval(ReportInterval))); err != nil {
		return nil, fmt.Errorf("peer: interceptors: %w", err)
	}
	s := webrtc.SettingEngine{LoggerFactory: pionlog.Factory{Log: log}}
	// A dropout shows after 3 s of silence (three missed keepalives: the
	// singers see "reconnecting" while ICE keeps trying), and a vanished
	// partner is given up after 18 s rather than pion's 30: with nobody
	// singing back a duet is over sooner than a video call, but a first
	// connection through a relay on a loaded machine needs the time.
	s.SetICETimeouts(3*time.Second, 15*time.Second, time.Second)
	if cfg.Loopback {
		s.SetIncludeLoopbackCandidate(true)
		s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	// The voice's reader starts before its first packet: pion otherwise
	// reads one to learn the codec, and gives the track up for good if
	// it is of a payload type not negotiated (onTrack drops such
	// packets, counted, and reads on).
	s.SetFireOnTrackBeforeFirstRTP(true)
	if mux != nil {
		s.SetICEUDPMux(mux)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s)), nil
}

func (p *Peer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	// Read the receiver's RTCP too: the partner's sender reports reach
	// pion's report interceptor only when read, and without them our
	// receiver reports carry no LSR, so the partner never learns its RTT.
	p.wg.Go(func() {
		for {
			if _, _, err := r.ReadRTCP(); err != nil {
				return
			}
		}
	})
	p.mu.Unlock()
	defer p.wg.Done()
	in := &inbound{pay: negotiate(r.GetParameters().Codecs), onPacket: p.cfg.OnPacket, onRecovered: p.cfg.OnRecovered, reds: &p.redReceived}
	p.log.Debug("incoming track", "codec", t.Codec().MimeType, "ssrc", t.SSRC(),
		"opus", in.pay.pt[codec.Opus], "red", in.pay.red, "custom", in.pay.pt[codec.OpusCustom],
		"l24", in.pay.pt[codec.L24], "l16", in.pay.pt[codec.L16])
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	times := newSendTimeReader(&p.cfg, r)
	for {
		n, _, err := t.Read(buf)
		at := times.readTime()
		if errors.Is(err, webrtc.ErrCodecNotFound) {
			// A payload type nobody negotiated: pion says so but the
			// stream goes on.
			p.discarded.Add(1)
			continue
		}
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			p.discarded.Add(1)
			continue // SRTP authenticated it, so this is a sender bug; skip it
		}
		p.packetsReceived.Add(1)
		p.bytesReceived.Add(int64(len(pkt.Payload)))
		times.packet(&pkt, at)
		if pkt.Padding && len(pkt.Payload) == 0 {
			in.padding(pkt.SequenceNumber) // a browser's probe: no frame
			p.paddingReceived.Add(1)
			continue
		}
		res, err := in.packet(pkt.PayloadType, pkt.SequenceNumber, pkt.Timestamp, pkt.Payload)
		if err != nil {
			p.discarded.Add(1) // a hot path: counted, not logged
			continue
		}
		p.recovered.Add(int64(res.recovered))
		p.redSkipped.Add(int64(res.skipped))
	}
}

// fileBuffered is how much the file channel may hold unsent: enough to keep
// a link busy, little enough to leave room for voice.
const fileBuffered = 256 << 10

// useChannel makes dc the peer's control, clock or file channel, by its
// label, and hands its messages to the Config's handler (if set); other
// labels are ignored.
func (p *Peer) useChannel(dc *webrtc.DataChannel) {
	var slot **webrtc.DataChannel
	var on func([]byte)
	switch dc.Label() {
	case "control":
		slot, on = &p.control, p.cfg.OnControl
	case "clock":
		slot, on = &p.clock, p.cfg.OnClock
	case "file":
		slot, on = &p.file, p.cfg.OnFile
		dc.SetBufferedAmountLowThreshold(fileBuffered / 2)
		dc.OnBufferedAmountLow(func() {
			select {
			case p.fileLow <- struct{}{}:
			default:
			}
		})
	default:
		return
	}
	p.mu.Lock()
	*slot = dc
	p.mu.Unlock()
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if on != nil {
			on(m.Data)
		}
	})
}

// MaxFileMessage is the largest message SendFile takes.
const MaxFileMessage = 16 << 10

// SendFile sends a message on the file channel, waiting while the channel
// holds more than it should unsent, until ctx is done or the peer ends.
func (p *Peer) SendFile(ctx context.Context, msg []byte) error {
	if len(msg) > MaxFileMessage {
		return fmt.Errorf("peer: file message of %d bytes", len(msg))
	}
	p.mu.Lock()
	dc := p.file
	p.mu.Unlock()
	if dc == nil {
		return errors.New("peer: file channel not open")
	}
	for dc.BufferedAmount() > fileBuffered {
		select {
		case <-p.fileLow:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ended:
			return ErrClosed
		}
	}
	return send(dc, "file", msg, false)
}

// Offer makes the host's offer, with the control and clock channels, and
// returns its SDP.
func (p *Peer) Offer() (string, error) {
	dc, err := p.pc.CreateDataChannel("control", nil)
	if err != nil {
		return "", fmt.Errorf("peer: control channel: %w", err)
	}
	p.useChannel(dc)
	ordered, retransmits := false, uint16(0)
	clock, err := p.pc.CreateDataChannel("clock", &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &retransmits})
	if err != nil {
		return "", fmt.Errorf("peer: clock channel: %w", err)
	}
	p.useChannel(clock)
	file, err := p.pc.CreateDataChannel("file", nil)
	if err != nil {
		return "", fmt.Errorf("peer: file channel: %w", err)
	}
	p.useChannel(file)
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return "", fmt.Errorf("peer: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return "", fmt.Errorf("peer: set offer: %w", err)
	}
	return withPtime(offer.SDP, p.ptime()), nil
}

// Answer takes the host's offer and returns the guest's answer SDP.
func (p *Peer) Answer(offerSDP string) (string, error) {
	if err := p.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", err
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("peer: create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("peer: set answer: %w", err)
	}
	return withPtime(answer.SDP, p.ptime()), nil
}

// ptime returns the a=ptime to ask for, in ms.
func (p *Peer) ptime() int {
	if p.cfg.Ptime <= 0 {
		return defaultPtime
	}
	return int(min(p.cfg.Ptime, 20*time.Millisecond).Milliseconds())
}

// Accept takes the guest's answer.
func (p *Peer) Accept(answerSDP string) error {
	return p.setRemote(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP})
}

func (p *Peer) setRemote(d webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(d); err != nil {
		return fmt.Errorf("peer: remote %s: %w", d.Type, err)
	}
	p.mu.Lock()
	p.remoteSet = true
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, c := range pending {
		if err := p.pc.AddICECandidate(c); err != nil {
			return fmt.Errorf("peer: remote candidate: %w", err)
		}
	}
	return nil
}

// AddCandidate adds a remote ICE candidate; ones that arrive before the
// remote description wait for it.
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	if !p.remoteSet {
		p.pending = append(p.pending, c)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("peer: remote candidate: %w", err)
	}
	return nil
}

// Connected is closed once media can flow.
func (p *Peer) Connected() <-chan struct{} { return p.connected }

// Ended is closed when the connection has failed or closed.
func (p *Peer) Ended() <-chan struct{} { return p.ended }

// Failed reports whether the connection ended by failing (the network
// dropped) rather than by being closed by either side.
func (p *Peer) Failed() bool { return p.failed.Load() }

// ErrNotNegotiated is returned by WriteVoice for a codec the partner did
// not accept.
var ErrNotNegotiated = errors.New("peer: codec not negotiated")

// WriteVoice sends one voice packet of codec kind with the given RTP
// sequence number and timestamp (48 kHz ticks), under the payload type the
// partner accepted for kind (ErrNotNegotiated if none: see Accepts).
// An Opus frame, with redundancy on (SetRedundancy) and RED negotiated,
// goes out as a RED packet carrying the previous Opus frames too, as long
// as they were sent with the sequence numbers just before seq and are
// equally long; anything else as a plain packet. Before the connection is
// negotiated packets are dropped without error. Calls must come in sending
// order (one goroutine: the encoder's).
func (p *Peer) WriteVoice(kind codec.Kind, seq uint16, timestamp uint32, payload []byte) error {
	pt, redPT, bound := p.track.payloadTypes(kind)
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if kind == codec.Opus {
		// Only Opus frames ride in RED; another codec's packet in
		// between breaks the run of sequence numbers history.blocks needs.
		defer p.hist.push(seq, timestamp, payload)
	}
	if !bound {
		return nil
	}
	if pt < 0 {
		return fmt.Errorf("%w: %v", ErrNotNegotiated, kind)
	}
	h := rtp.Header{Version: 2, PayloadType: uint8(pt), SequenceNumber: seq, Timestamp: timestamp}
	p.stamps.stamp(&h, p.cfg.Now, p.track.sendTime())
	body := payload
	var older []red.Block
	if kind == codec.Opus && redPT >= 0 && p.hist.n > 0 {
		older = p.hist.blocks(uint8(pt), seq, timestamp)
	}
	if len(older) > 0 {
		buf, err := red.Encode(p.hist.buf[:0], uint8(pt), timestamp, payload, older)
		if err != nil {
			return fmt.Errorf("peer: write voice: %w", err)
		}
		p.hist.buf = buf
		h.PayloadType, body = uint8(redPT), buf
	}
	sent, err := p.track.write(&h, body)
	if err != nil {
		return fmt.Errorf("peer: write voice: %w", err)
	}
	if sent {
		p.packetsSent.Add(1)
		p.bytesSent.Add(int64(len(body)))
		p.fb.sentPacket(seq, h.MarshalSize()+len(body))
		if len(older) > 0 {
			p.redSent.Add(1)
		}
	}
	return nil
}

// Accepts reports whether the partner accepted codec kind for our voice,
// so WriteVoice takes it; false before negotiation. Safe to call from any
// goroutine, cheaply (the encoder's, per packet).
func (p *Peer) Accepts(kind codec.Kind) bool { return p.track.accepts(kind) }

// SetRedundancy sets how many previous Opus frames each Opus packet carries
// (RFC 2198 RED): 0 turns redundancy off, 1 or 2 cover that many packets
// lost in a row at the cost of as many frames' bytes; values are clamped
// to 0…MaxRedundancy. It takes effect with the next WriteVoice, and only
// if the partner accepted RED (Stats.RED). Safe to call from any goroutine.
func (p *Peer) SetRedundancy(n int) {
	p.sendMu.Lock()
	p.hist.n = min(max(n, 0), MaxRedundancy)
	p.sendMu.Unlock()
}

// SendControl sends a message on the control channel, if it is open, as
// a text message: control messages are JSON (UTF-8), and a browser reads
// a text message as a string (a binary one as bytes it must decode).
func (p *Peer) SendControl(msg []byte) error {
	p.mu.Lock()
	dc := p.control
	p.mu.Unlock()
	return send(dc, "control", msg, true)
}

// SendClock sends a message on the clock channel, if it is open.
func (p *Peer) SendClock(msg []byte) error {
	p.mu.Lock()
	dc := p.clock
	p.mu.Unlock()
	return send(dc, "clock", msg, false)
}

// send sends msg on dc, the channel called name, as a text message or a
// binary one.
func send(dc *webrtc.DataChannel, name string, msg []byte, text bool) error {
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return fmt.Errorf("peer: %s channel not open", name)
	}
	var err error
	if text {
		err = dc.SendText(string(msg))
	} else {
		err = dc.Send(msg)
	}
	if err != nil {
		return fmt.Errorf("peer: %s: %w", name, err)
	}
	return nil
}

// Stats describe the connection.
type Stats struct {
	// Candidate is the local candidate type in use ("host", "srflx",
	// "prflx", "relay"); empty until connected.
	Candidate string
	// Relayed reports whether media goes through a TURN relay.
	Relayed bool
	// Address is the remote address media flows to.
	Address string
	// RTT is the latest round-trip time from RTCP reports; 0 until the
	// first (about a second after media starts).
	RTT time.Duration
	// PacketsSent and BytesSent count outgoing voice packets and payload.
	PacketsSent, BytesSent int64
	// PacketsReceived and BytesReceived count incoming voice packets and
	// their payload (RED packets whole).
	PacketsReceived, BytesReceived int64
	// PaddingReceived counts the packets among them that were padding
	// only (a browser's bandwidth probes): skipped, no frame is missing
	// for them.
	PaddingReceived int64
	// RED reports whether the partner accepted RED for our voice, so
	// SetRedundancy has an effect.
	RED bool
	// REDPacketsSent and REDPacketsReceived count voice packets that
	// carried redundancy (they are in PacketsSent/Received too; BytesSent
	// counts the whole RED payload).
	REDPacketsSent, REDPacketsReceived int64
	// FramesRecovered counts frames passed to Config.OnRecovered: taken
	// from redundancy because their own packet had not come (it may still
	// come late). REDBlocksSkipped counts redundant blocks that could not
	// be numbered (see OnRecovered), PacketsDiscarded incoming packets
	// dropped unplayed: of a codec not negotiated, PCM of a wrong length,
	// garbage RED.
	FramesRecovered, REDBlocksSkipped, PacketsDiscarded int64
	// RemotePacketsLost is the other side's count of our packets it lost,
	// from RTCP receiver reports.
	RemotePacketsLost int64
}

// Stats returns the connection's figures now.
func (p *Peer) Stats() Stats {
	s := Stats{
		PacketsSent:        p.packetsSent.Load(),
		BytesSent:          p.bytesSent.Load(),
		PacketsReceived:    p.packetsReceived.Load(),
		BytesReceived:      p.bytesReceived.Load(),
		PaddingReceived:    p.paddingReceived.Load(),
		REDPacketsSent:     p.redSent.Load(),
		REDPacketsReceived: p.redReceived.Load(),
		FramesRecovered:    p.recovered.Load(),
		REDBlocksSkipped:   p.redSkipped.Load(),
		PacketsDiscarded:   p.discarded.Load(),
		RemotePacketsLost:  p.fb.lost.Load(),
		RTT:                time.Duration(p.fb.rtt.Load()),
	}
	_, redPT, _ := p.track.payloadTypes(codec.Opus)
	s.RED = redPT >= 0
	p.mu.Lock()
	s.Candidate, s.Relayed, s.Address = p.candidate, p.relayed, p.address
	p.mu.Unlock()
	return s
}

// PathRTT returns ICE's latest round trip on the selected candidate
// pair, from its connectivity checks: known as soon as the peers are
// connected, before RTCP's (Stats.RTT); 0 if not measured. Ask it once
// connected: before, it races with the ICE transport's start in pion
// v4.2. (Not from PeerConnection.GetStats, whose receiver statistics read
// a track's codec unguarded while its first packet or a codec switch
// writes it: the race detector caught that in CI.)
func (p *Peer) PathRTT() time.Duration {
	st, ok := selectedPair(p.pc)
	if !ok || st.CurrentRoundTripTime <= 0 {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}

// pathSent returns the packets and bytes pc sent so far on its selected
// candidate pair (ICE's count: everything but its own checks), ok false
// before there is one.
func pathSent(pc *webrtc.PeerConnection) (packets, bytes uint64, ok bool) {
	st, ok := selectedPair(pc)
	return uint64(st.PacketsSent), st.BytesSent, ok
}

// selectedPair returns the statistics of pc's selected candidate pair, ok
// false before there is one.
func selectedPair(pc *webrtc.PeerConnection) (webrtc.ICECandidatePairStats, bool) {
	sctp := pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return webrtc.ICECandidatePairStats{}, false
	}
	return sctp.Transport().ICETransport().GetSelectedCandidatePairStats()
}

// Feedback returns the latest of what OnFeedback is given.
func (p *Peer) Feedback() Feedback { return p.fb.feedback() }

// Close ends the connection and waits for the peer's goroutines.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		if err := p.pc.Close(); err != nil {
			p.closeErr = fmt.Errorf("peer: close: %w", err)
		}
		p.endOnce.Do(func() { close(p.ended) })
		p.wg.Wait()
		if p.mux != nil {
			p.closeErr = errors.Join(p.closeErr, p.mux.Close())
		}
	})
	return p.closeErr
}
