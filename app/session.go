package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/rt"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/clock"
	"github.com/duetapp/duet/net/ntpcheck"
	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/signal"
)

// control is a message on the peer's control channel; which fields mean
// something depends on Type (see track.go for the track's messages).
type control struct {
	Type   string          `json:"type"`
	Text   string          `json:"text,omitempty"`
	Name   string          `json:"name,omitempty"`
	Size   int64           `json:"size,omitempty"`
	Digest string          `json:"digest,omitempty"`
	Offset int64           `json:"offset,omitempty"`
	Sched  *track.Schedule `json:"sched,omitempty"`
	Snap   *track.Snapshot `json:"snap,omitempty"`
	TS     uint32          `json:"ts,omitempty"`
	Pos    float64         `json:"pos,omitempty"`
}

const (
	controlBye   = "bye"
	controlHello = "hello" // my display name (Name)
)

// maxName bounds a partner's display name, in runes.
const maxName = 40

// Session is one singer's side of a duet. See the package doc.
type Session struct {
	cfg  Config
	log  *slog.Logger
	host bool
	sig  *signal.Conn // guarded by mu once Run runs: a reconnect replaces it
	code signal.Code
	pipe *pipeline

	controls chan controlMsg // from peers' control channels

	cmds        chan func() // run on Run's goroutine (do)
	feedback    chan feedbackMsg
	links       chan linkMsg
	adapt       *adapter // Run's goroutine
	hello       uint32   // Run's goroutine: the stream told our name
	redundancy  atomic.Int32
	runDone     chan struct{} // closed when Run returns
	fileDone    chan *incoming
	trackLoaded chan loaded
	trk         trackState // guarded by mu, except where it says

	// The session clock: nanoseconds since epoch on this machine's
	// monotonic clock. The guest estimates the host's against its own.
	epoch time.Time
	clock *clock.Estimator

	mu          sync.Mutex // guards peer, lastPeer and streams, read by Stats
	peer        *peer.Peer
	lastPeer    peer.Stats // of the last connection, once it is closed
	streams     uint32
	safety      string // the current connection's safety code
	state       State  // the latest emitted
	partnerName string
	ntp         NTPStatus

	dev           audio.Device // the current device; nil while it is lost
	deviceStarted bool
	closeOnce     sync.Once
	closeErr      error
}

type feedbackMsg struct {
	stream uint32
	fb     peer.Feedback
}

type controlMsg struct {
	stream uint32
	msg    control
}

// Host creates a room on the rendezvous server. The room's code is ready
// when Host returns; Run then waits for a guest.
func Host(ctx context.Context, cfg Config) (*Session, error) {
	s, err := newSession(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	s.code, err = s.sig.Create(ctx)
	if err != nil {
		s.sig.Close()
		s.pipe.close()
		return nil, fmt.Errorf("create a room: %w", err)
	}
	s.log = s.log.With("room", s.code.String())
	return s, nil
}

// Join joins the room with the given code.
func Join(ctx context.Context, cfg Config, code signal.Code) (*Session, error) {
	s, err := newSession(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	if err := s.sig.Join(ctx, code); err != nil {
		s.sig.Close()
		s.pipe.close()
		return nil, err // the server's words name the code
	}
	s.code = code
	s.log = s.log.With("room", code.String())
	return s, nil
}

func newSession(ctx context.Context, cfg Config, host bool) (*Session, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	epoch := time.Now()
	pipe, err := newPipeline(pipelineConfig{
		epoch:        epoch,
		roundTrip:    cfg.DeviceRoundTrip,
		frame:        cfg.Frame,
		bitrate:      cfg.Bitrate,
		codec:        firstCodec(cfg.Codec),
		jitterTarget: audio.Samples(cfg.JitterTarget),
		jitterBias:   cfg.JitterBias,
		speakers:     cfg.Speakers,
		monitor:      cfg.Monitor,
		maxBlock:     cfg.MaxBlock,
		seq:          uint16(rand.Uint32()),
		ts:           rand.Uint32(),
		realtime:     rt.New(rt.Priority, cfg.Logger),
	})
	if err != nil {
		return nil, err
	}
	sig, err := signal.Dial(ctx, cfg.Server)
	if err != nil {
		pipe.close()
		return nil, err
	}
	role := "guest"
	if host {
		role = "host"
	}
	if cfg.Track != nil {
		pipe.player.SetTrack(cfg.Track)
	}
	pipe.onArrival = cfg.OnArrival
	if host && cfg.StreamTrack {
		pipe.trackSend.SetGain(1)
	}
	s := &Session{
		cfg:   cfg,
		epoch: epoch,
		// Thirty seconds of pings at the steady rate (the first ten
		// seconds' fast pings would otherwise crowd the window to five).
		clock: clock.New(900),
		dev:   cfg.Device,
		log:   cfg.Logger.With("role", role),
		host:  host,
		sig:   sig,
		pipe:  pipe,
		// Room for the track's steady messages (syncs, voice positions)
		// while Run is busy for a moment.
		controls:    make(chan controlMsg, 64),
		cmds:        make(chan func()),
		feedback:    make(chan feedbackMsg, 1),
		links:       make(chan linkMsg, 1),
		adapt:       newAdapter(cfg.Bitrate),
		runDone:     make(chan struct{}),
		fileDone:    make(chan *incoming, 1),
		trackLoaded: make(chan loaded),
	}
	if cfg.Track != nil {
		s.trk.track = cfg.Track
		s.trk.size = int64(len(cfg.Track.File))
	}
	return s, nil
}

// Code returns the room code.
func (s *Session) Code() signal.Code { return s.code }

// Run sings until ctx is done, the device's input ends, or (for a guest)
// the host leaves; then it leaves the room cleanly, closes the device and
// returns. An interruption through ctx is a clean end, not an error.
func (s *Session) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	msgs := make(chan signal.Message)
	sigErr := make(chan connErr, 1)
	var readers sync.WaitGroup // the signaling reader, reconnects and rejoins
	read := func(c *signal.Conn) {
		readers.Go(func() {
			for {
				m, err := c.Recv(ctx)
				if err != nil {
					select {
					case sigErr <- connErr{c, err}:
					case <-ctx.Done():
					}
					return
				}
				select {
				case msgs <- m:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	read(s.signal())
	if s.cfg.NTPServer != "" {
		readers.Go(func() { s.checkNTP(ctx) })
	}
	var resumed chan resumeResult  // while reconnecting to the server
	var rejoined chan resumeResult // guest: while joining the room again
	defer func() {
		cancel()
		close(s.runDone)
		err = errors.Join(err, s.close())
		readers.Wait()
	}()

	if s.host {
		s.emit(StateWaiting, fmt.Sprintf("Room %s is open: read the code to your partner.", s.code))
	} else {
		s.emit(StateConnecting, "Joined the room; connecting to the host.")
	}
	defer func() {
		if err != nil {
			s.emit(StateEnded, "The duet stopped: "+err.Error())
		}
	}()

	// The current peer's channels; connected stays armed until onConnected
	// has handled that connection.
	var connected, ended <-chan struct{}
	handled := uint32(0)
	watch := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		connected, ended = nil, nil
		if s.peer != nil {
			ended = s.peer.Ended()
			if handled != s.streams {
				connected = s.peer.Connected()
			}
		}
	}
	var pings <-chan time.Time // the guest measures the clocks and follows the track
	var syncs <-chan time.Time // the host tells where its track is
	var fast *time.Ticker      // guest: pings while a connection is new
	var fastPings <-chan time.Time
	var fastUntil time.Time
	defer func() {
		if fast != nil {
			fast.Stop()
		}
	}()
	if !s.host {
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		pings = t.C
	} else {
		t := time.NewTicker(syncInterval)
		defer t.Stop()
		syncs = t.C
	}
	var retry *time.Ticker // while the device is lost
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	var sigLost error // the rendezvous server went away mid-duet
	for {
		if sigLost != nil && s.currentPeer() == nil {
			// Without the server nobody can join again.
			return fmt.Errorf("your partner left, and without the rendezvous server they cannot come back: %w", sigLost)
		}
		watch()
		var deviceDone <-chan struct{}
		if s.dev != nil {
			deviceDone = s.dev.Done()
		}
		select {
		case <-ctx.Done():
			s.emit(StateEnded, "You left the duet.")
			return nil
		case <-deviceDone:
			err := s.dev.Err()
			if err == nil {
				s.emit(StateEnded, "The input ended.")
				return nil
			}
			if s.cfg.Reopen == nil {
				return fmt.Errorf("audio device: %w", err)
			}
			// The duet goes on without this singer's audio until the
			// device comes back.
			s.emit(StateDeviceLost, fmt.Sprintf("Your audio device stopped (%v). The duet goes on: plug it back in and Duet carries on with it; if it does not come back, leave and start Duet again.", err))
			s.dev.Close()
			s.dev = nil
			retry = time.NewTicker(time.Second)
		case now := <-pings:
			if p := s.currentPeer(); p != nil {
				s.ping(p)
				s.steer(now)
				s.sayHello()
			}
			s.checkHowl()
		case now := <-fastPings:
			// The first seconds of a connection ping five times as often:
			// the estimate needs fast samples each way, and on a jittery
			// path they are rare.
			if p := s.currentPeer(); p != nil && now.Before(fastUntil) {
				s.ping(p)
			} else {
				fast.Stop()
				fastPings = nil
			}
		case <-syncs:
			s.sayHello()
			s.hostTick()
			s.checkHowl()
		case f := <-s.cmds:
			f()
		case f := <-s.feedback:
			if p := s.currentPeer(); p != nil && f.stream == s.currentStream() {
				rate, red := s.adapt.update(f.fb, lanPath(p.Stats()))
				s.pipe.bitrate.Store(int64(rate))
				s.sendCodec(s.adapt.codec(s.cfg.Codec, p.Accepts))
				p.SetRedundancy(red) // Opus's only
				s.redundancy.Store(int32(red))
			}
		case in := <-s.fileDone:
			s.loadTrack(in, true)
		case l := <-s.trackLoaded:
			s.trackReady(l)
		case <-retryC(retry):
			d, err := s.cfg.Reopen()
			if err == nil {
				if err = d.Start(s.pipe.process); err != nil {
					d.Close()
				}
			}
			if err != nil {
				s.log.Debug("audio device not back yet", "err", err)
				continue
			}
			retry.Stop()
			retry = nil
			s.dev = d
			if s.currentPeer() != nil {
				s.emit(StateConnected, "Your audio device is back.")
			} else {
				s.emit(StateWaiting, "Your audio device is back.")
			}
		case ce := <-sigErr:
			err := ce.err
			if ctx.Err() != nil || ce.conn != s.signal() || rejoined != nil {
				continue // Run is ending, or a connection replaced or being replaced
			}
			if seat, ok := s.signal().Seat(); ok && signal.Resumable(err) {
				// Media is peer to peer: the duet goes on while the seat
				// at the rendezvous server is taken back.
				s.log.Warn("lost the rendezvous server; reconnecting", "err", err)
				s.info("Lost the rendezvous server; reconnecting to it. Your duet goes on meanwhile.")
				resumed = make(chan resumeResult, 1)
				out := resumed
				readers.Go(func() {
					c, partner, err := signal.Reconnect(ctx, s.cfg.Server, seat, signal.Backoff{})
					out <- resumeResult{c, partner, err}
				})
				continue
			}
			if s.currentPeer() == nil {
				return fmt.Errorf("rendezvous server: %w", err)
			}
			s.log.Warn("lost the rendezvous server; the duet goes on", "err", err)
			sigLost = err
		case up := <-s.links:
			if up.stream != s.currentStream() {
				continue
			}
			if up.up {
				s.emit(StateConnected, "The connection to your partner is back.")
			} else {
				s.emit(StateReconnecting, "The connection to your partner dropped; reconnecting. Keep singing: the duet goes on when it is back.")
			}
		case r := <-rejoined:
			rejoined = nil
			if r.err != nil {
				return fmt.Errorf("%w, and could not get back into the room: %w", ErrConnectionLost, r.err)
			}
			s.mu.Lock()
			s.sig = r.conn
			s.mu.Unlock()
			read(r.conn)
			s.log.Info("back in the room; waiting for the host's offer")
		case r := <-resumed:
			resumed = nil
			if rejoined != nil {
				// The guest is joining the room afresh: that connection
				// takes over; this one would hold the seat against it.
				if r.conn != nil {
					r.conn.Close()
				}
				continue
			}
			if r.err != nil {
				if ctx.Err() != nil {
					continue
				}
				if s.currentPeer() == nil {
					return fmt.Errorf("rendezvous server: %w", r.err)
				}
				s.log.Warn("could not get back to the rendezvous server; the duet goes on", "err", r.err)
				sigLost = r.err
				continue
			}
			s.mu.Lock()
			old := s.sig
			s.sig = r.conn
			s.mu.Unlock()
			old.Close()
			read(r.conn)
			s.info("Back in touch with the rendezvous server.")
			if s.host && r.partner && s.currentPeer() == nil {
				// A guest joined while we were away.
				if _, err := s.handle(ctx, signal.Message{Type: signal.TypePeerJoined}); err != nil {
					return err
				}
			}
		case m := <-msgs:
			done, err := s.handle(ctx, m)
			if err != nil || done {
				return err
			}
		case <-connected:
			handled = s.currentStream()
			if err := s.onConnected(); err != nil {
				return err
			}
			if !s.host {
				if fast != nil {
					fast.Stop()
				}
				fast = time.NewTicker(fastPingInterval)
				fastPings, fastUntil = fast.C, time.Now().Add(fastPingFor)
			}
		case <-ended:
			if !s.currentPeer().Failed() {
				// Closed by the partner: they left.
				if !s.host {
					s.emit(StateEnded, "The host ended the duet.")
					return nil
				}
				s.dropPeer()
				s.emit(StatePartnerLeft, "Your guest left; the room stays open for them.")
				continue
			}
			s.dropPeer()
			if !s.host {
				// A fresh start through the rendezvous server: leave the
				// room and join it again, and the host offers anew.
				s.emit(StateReconnecting, "The connection to the host failed; joining the room again.")
				old := s.signal()
				old.Close()
				rejoined = make(chan resumeResult, 1)
				out := rejoined
				readers.Go(func() {
					c, err := s.rejoin(ctx)
					out <- resumeResult{conn: c, err: err}
				})
				continue
			}
			s.emit(StateReconnecting, "The connection to your guest failed; the room stays open for them to come back.")
		case c := <-s.controls:
			if c.stream != s.currentStream() {
				continue
			}
			if c.msg.Type == controlHello {
				s.mu.Lock()
				s.partnerName = cleanName(c.msg.Name)
				s.mu.Unlock()
				continue
			}
			if c.msg.Type != controlBye {
				s.onTrackControl(ctx, c.msg)
				continue
			}
			if !s.host {
				s.emit(StateEnded, "The host ended the duet.")
				return nil
			}
			s.dropPeer()
			s.emit(StatePartnerLeft, "Your guest left; the room stays open for them.")
		}
	}
}

// connErr is a signaling connection's end.
type connErr struct {
	conn *signal.Conn
	err  error
}

// linkMsg is a connection dropping or coming back.
type linkMsg struct {
	stream uint32
	up     bool
}

// rejoin joins the room again on a new signaling connection (guest), trying
// for a minute with backoff.
func (s *Session) rejoin(ctx context.Context) (*signal.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		c, err := signal.Dial(ctx, s.cfg.Server)
		if err == nil {
			if err = c.Join(ctx, s.code); err == nil {
				return c, nil
			}
			c.Close()
			if errors.Is(err, signal.ErrRoomNotFound) {
				return nil, err // the host has gone
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// sayHello tells the partner this singer's name, once per connection
// (retried on the tick: the control channel opens a little after the
// connection).
func (s *Session) sayHello() {
	p := s.currentPeer()
	if s.cfg.Name == "" || p == nil || s.hello == s.currentStream() {
		return
	}
	b, err := json.Marshal(control{Type: controlHello, Name: s.cfg.Name})
	if err == nil && p.SendControl(b) == nil {
		s.hello = s.currentStream()
	}
}

// cleanName keeps a display name printable and short.
func cleanName(n string) string { return cleanText(n, maxName) }

// cleanText keeps a partner's text printable and at most max runes.
func cleanText(n string, max int) string {
	var b strings.Builder
	count := 0
	for _, r := range n {
		if count == max {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			count++
		}
	}
	return strings.TrimSpace(b.String())
}

// checkNTP asks the NTP server once how far this machine's clock is off.
func (s *Session) checkNTP(ctx context.Context) {
	r, err := ntpcheck.Check(ctx, ntpcheck.Config{Server: s.cfg.NTPServer})
	st := NTPStatus{Server: s.cfg.NTPServer, Offset: r.Offset, RTT: r.RTT}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		st.Err = err.Error()
		s.log.Info("no NTP cross-check", "server", s.cfg.NTPServer, "err", err)
	} else {
		s.log.Info("NTP cross-check", "server", r.Server, "offset", r.Offset, "rtt", r.RTT, "stratum", r.Stratum)
	}
	s.mu.Lock()
	s.ntp = st
	s.mu.Unlock()
}

// resumeResult is how a reconnect to the rendezvous server ended.
type resumeResult struct {
	conn    *signal.Conn
	partner bool
	err     error
}

// signal returns the current connection to the rendezvous server.
func (s *Session) signal() *signal.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sig
}

// retryC is t's channel, or nil (never ready) when there is no ticker.
func retryC(t *time.Ticker) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// handle acts on one signaling message; done reports that the session is
// over.
func (s *Session) handle(ctx context.Context, m signal.Message) (done bool, err error) {
	switch m.Type {
	case signal.TypePeerJoined:
		if !s.host {
			return false, nil
		}
		p, err := s.newPeer(ctx)
		if err == nil {
			var offer string
			if offer, err = p.Offer(); err == nil {
				s.emit(StateConnecting, "A guest joined; connecting.")
				err = s.signal().Send(ctx, signal.Message{Type: signal.TypeOffer, SDP: offer})
			}
		}
		if err != nil {
			s.guestFailed(err)
		}
		return false, nil
	case signal.TypeOffer:
		if s.host {
			return false, nil
		}
		p, err := s.newPeer(ctx)
		if err != nil {
			return false, err
		}
		answer, err := p.Answer(m.SDP)
		if err != nil {
			return false, err
		}
		return false, s.signal().Send(ctx, signal.Message{Type: signal.TypeAnswer, SDP: answer})
	case signal.TypeAnswer:
		if p := s.currentPeer(); p != nil && s.host {
			if err := p.Accept(m.SDP); err != nil {
				s.guestFailed(err)
			}
		}
	case signal.TypeCandidate:
		if p := s.currentPeer(); p != nil && m.Candidate != nil {
			if err := p.AddCandidate(webrtc.ICECandidateInit(*m.Candidate)); err != nil {
				s.log.Warn("bad ICE candidate from partner", "err", err)
			}
		}
	case signal.TypePeerLeft:
		// The partner's rendezvous socket closed. If media still flows
		// between us, that was only their signaling (a network blip, a
		// proxy's timeout): the duet goes on, and their bye or a failed
		// connection says when it is really over.
		if p := s.currentPeer(); p != nil && isUp(p) {
			s.log.Info("partner lost the rendezvous server; media still flows")
			return false, nil
		}
		if !s.host {
			s.emit(StateEnded, "The host left the duet.")
			return true, nil
		}
		if s.currentPeer() != nil {
			s.dropPeer()
			s.emit(StatePartnerLeft, "Your guest left; the room stays open for them.")
		}
	case signal.TypeError:
		if errors.Is(m.Error, signal.ErrRoomExpired) {
			return true, m.Error
		}
		s.log.Warn("rendezvous server reported an error", "err", m.Error)
	}
	return false, nil
}

// isUp reports whether p has connected and not ended.
func isUp(p *peer.Peer) bool {
	select {
	case <-p.Ended():
		return false
	case <-p.Connected():
		return true
	default:
		return false
	}
}

// guestFailed drops a guest whose connection could not be set up (an
// incompatible client, a garbled answer); the room stays open.
func (s *Session) guestFailed(err error) {
	s.log.Warn("could not connect to the guest", "err", err)
	s.dropPeer()
	s.emit(StatePartnerLeft, "Could not connect to your guest ("+err.Error()+"); the room stays open for them.")
}

// newPeer replaces the current peer connection with a new one.
func (s *Session) newPeer(ctx context.Context) (*peer.Peer, error) {
	s.dropPeer()
	// A new partner, a new path: start from the configured bitrate.
	s.adapt = newAdapter(s.cfg.Bitrate)
	s.mu.Lock()
	s.partnerName = ""
	s.mu.Unlock()
	s.pipe.bitrate.Store(int64(s.cfg.Bitrate))
	s.sendCodec(firstCodec(s.cfg.Codec))
	s.redundancy.Store(0)
	s.mu.Lock()
	s.streams++
	stream := s.streams
	s.mu.Unlock()
	var servers []webrtc.ICEServer
	if len(s.cfg.ICEServers) > 0 {
		servers = []webrtc.ICEServer{{URLs: s.cfg.ICEServers}}
	}
	for _, is := range s.signal().ICEServers() { // the rendezvous server's relay
		servers = append(servers, webrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	p, err := peer.New(peer.Config{
		ICEServers: servers,
		Loopback:   s.cfg.Loopback,
		RelayOnly:  s.cfg.RelayOnly,
		WrapConn:   s.cfg.WrapConn,
		RealTime:   s.pipe.realtime,
		Logger:     s.cfg.Logger,
		OnPacket: func(seq uint16, ts uint32, kind codec.Kind, payload []byte) {
			s.pipe.receive(stream, seq, ts, kind, payload)
		},
		OnCandidate: func(c webrtc.ICECandidateInit) {
			sc := signal.Candidate(c)
			if err := s.signal().Send(ctx, signal.Message{Type: signal.TypeCandidate, Candidate: &sc}); err != nil {
				s.log.Debug("could not send ICE candidate", "err", err)
			}
		},
		OnClock: func(b []byte) {
			s.onClock(stream, b)
		},
		OnFile: func(b []byte) {
			s.onFile(stream, b)
		},
		OnRecovered: func(seq uint16, ts uint32, payload []byte) {
			s.pipe.recover(stream, seq, ts, payload)
		},
		OnLink: func(up bool) {
			for { // the latest state wins: drop an older one still queued
				select {
				case s.links <- linkMsg{stream, up}:
					return
				default:
				}
				select {
				case <-s.links:
				default:
				}
			}
		},
		OnFeedback: func(f peer.Feedback) {
			select {
			case s.feedback <- feedbackMsg{stream, f}:
			default: // Run is busy; the next report comes in a second
			}
		},
		OnControl: func(b []byte) {
			var c control
			if json.Unmarshal(b, &c) != nil {
				s.log.Debug("malformed control message from partner", "len", len(b))
				return
			}
			if c.Type == controlTrackSync || c.Type == controlVoicePos {
				select {
				case s.controls <- controlMsg{stream, c}:
				default: // Run is busy; another comes within a tick
				}
				return
			}
			select {
			case s.controls <- controlMsg{stream, c}:
			case <-s.runDone:
			}
		},
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.peer = p
	s.mu.Unlock()
	s.pipe.connect(p, stream)
	return p, nil
}

// sendCodec has the encoder send codec k from now on (if the partner took
// it; else Opus). Run's goroutine.
func (s *Session) sendCodec(k codec.Kind) {
	if old := codec.Kind(s.pipe.want.Swap(uint32(k))); old != k {
		s.log.Info("sending another codec", "codec", k.String(), "was", old.String())
	}
}

// now is the session clock: nanoseconds since the session began.
func (s *Session) now() int64 { return int64(time.Since(s.epoch)) }

// Epoch is when this session's clock reads zero.
func (s *Session) Epoch() time.Time { return s.epoch }

// pingInterval is how often the guest measures the clocks; for the first
// fastPingFor of a connection, every fastPingInterval.
const (
	pingInterval     = 100 * time.Millisecond
	fastPingInterval = 20 * time.Millisecond
	fastPingFor      = 10 * time.Second
)

// ping sends a clock ping (if the channel is not open yet, the next one
// goes).
func (s *Session) ping(p *peer.Peer) {
	p.SendClock(clock.AppendPing(make([]byte, 0, clock.PingSize), s.now()))
}

// onClock handles a clock message on the connection numbered stream: the
// host answers pings at once; the guest adds each pong to its estimate.
func (s *Session) onClock(stream uint32, b []byte) {
	if stream != s.currentStream() {
		return
	}
	if s.host {
		t2 := s.now()
		t1, err := clock.ParsePing(b)
		if err != nil {
			return
		}
		if p := s.currentPeer(); p != nil {
			p.SendClock(clock.AppendPong(make([]byte, 0, clock.PongSize), t1, t2, s.now()))
		}
		return
	}
	t4 := s.now()
	t1, t2, t3, err := clock.ParsePong(b)
	if err != nil {
		return
	}
	if err := s.clock.Add(clock.Sample{T1: t1, T2: t2, T3: t3, T4: t4}); err != nil {
		s.log.Debug("clock sample rejected", "err", err)
	}
}

func (s *Session) currentPeer() *peer.Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peer
}

func (s *Session) currentStream() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// dropPeer says goodbye to the current partner, if any, and closes the
// connection.
func (s *Session) dropPeer() {
	s.mu.Lock()
	p := s.peer
	s.peer = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	s.stopTransfer()
	s.closeIncoming()
	s.pipe.connect(nil, 0)
	last := p.Stats()
	s.mu.Lock()
	s.lastPeer = last
	s.mu.Unlock()
	if bye, err := json.Marshal(control{Type: controlBye}); err == nil {
		p.SendControl(bye) // best effort: the partner may be gone already
	}
	if err := p.Close(); err != nil {
		s.log.Debug("closing peer connection", "err", err)
	}
}

func (s *Session) onConnected() error {
	st := s.currentPeer().Stats()
	how := "directly"
	if st.Relayed {
		how = "through a relay"
	}
	if !s.deviceStarted {
		if err := s.dev.Start(s.pipe.process); err != nil {
			return fmt.Errorf("audio device: %w", err)
		}
		s.pipe.start()
		s.deviceStarted = true
	}
	safety := ""
	if code, err := s.currentPeer().SafetyCode(); err == nil {
		s.mu.Lock()
		s.safety = code
		s.mu.Unlock()
		safety = fmt.Sprintf(" Safety code %s: if your partner sees the same, nobody listens in.", code)
	}
	s.emit(StateConnected, fmt.Sprintf("Connected to your partner %s (%s candidate).%s", how, st.Candidate, safety))
	s.sayHello()
	if s.host {
		s.offerTrack()
		s.sendSync()
		s.mu.Lock()
		noFile := s.trk.track == nil || s.cfg.StreamTrack
		s.mu.Unlock()
		if noFile {
			s.autoStart() // nothing to wait for
		}
	}
	return nil
}

// info tells the singer something without changing the state.
func (s *Session) info(text string) {
	s.mu.Lock()
	state := s.state
	s.mu.Unlock()
	s.emit(state, text)
}

func (s *Session) emit(state State, text string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
	s.log.Info(text, "state", state.String())
	s.cfg.OnEvent(Event{State: state, Text: text})
}

// close leaves the room and releases everything; safe to call twice.
func (s *Session) close() error {
	s.closeOnce.Do(func() {
		s.dropPeer()
		s.stopTake()
		s.trk.loaders.Wait()
		errs := []error{s.signal().Close()}
		if s.dev != nil {
			if err := s.dev.Close(); err != nil {
				errs = append(errs, fmt.Errorf("audio device: %w", err))
			}
		}
		s.pipe.close()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Stats are a session's figures at one moment.
type Stats struct {
	Code signal.Code
	// Peer describes the connection, or the last one when none is open.
	Peer peer.Stats
	// Voice is the partner's voice as played out here.
	Voice jitter.PlayoutStats
	// DeviceRoundTrip is the device's calibrated round trip, if known.
	DeviceRoundTrip time.Duration
	// Clock is the guest's estimate of the host's session clock against
	// its own (zero on the host, and before the first pong).
	Clock clock.Estimate
	// SafetyCode is derived from both sides' DTLS certificates: the same
	// on both sides unless someone sits in the middle.
	SafetyCode string
	// Bitrate and Redundancy are what this side sends now: the codec's
	// bitrate and how many earlier frames ride along with each packet
	// (Opus only).
	Bitrate, Redundancy int
	// Codec names what this side sends, e.g. "Opus Custom 2.7 ms" (its
	// packet), "L24", "Opus 5 ms"; PartnerCodec what the partner's last
	// packet came in.
	Codec, PartnerCodec string
	// PartnerName is what the partner calls themself, once they said.
	PartnerName string
	// NTP is this machine's clock against the NTP server, if one was
	// asked.
	NTP NTPStatus
	// EchoLatency is what the echo canceller adds to what the partner
	// hears (on speakers; zero on headphones).
	EchoLatency time.Duration
	// CaptureOverruns counts samples the encoder was too slow to take;
	// PacketOverruns, packets the audio thread was too slow to take;
	// SendErrors, packets the connection refused; EncodeErrors, frames
	// the encoder refused.
	CaptureOverruns, PacketOverruns, SendErrors, EncodeErrors int64
}

// Stats returns the session's figures now. Safe from any goroutine.
func (s *Session) Stats() Stats {
	st := Stats{
		Code:            s.code,
		DeviceRoundTrip: s.cfg.DeviceRoundTrip,
		Voice:           s.pipe.playout.Stats(),
		CaptureOverruns: s.pipe.captureOverruns.Load(),
		PacketOverruns:  s.pipe.packetOverruns.Load(),
		SendErrors:      s.pipe.sendErrors.Load(),
		EncodeErrors:    s.pipe.encodeErrors.Load(),
	}
	if c := s.pipe.canceller; c != nil {
		st.EchoLatency = c.Latency()
	}
	if k, packet, rate, ok := s.pipe.sent(); ok {
		st.Codec, st.Bitrate = codecName(k, packet), rate
		if k == codec.Opus {
			st.Redundancy = int(s.redundancy.Load())
		}
	}
	if k, n, ok := s.pipe.dec.received(); ok {
		st.PartnerCodec = codecName(k, n)
	}
	if !s.host {
		st.Clock, _ = s.clock.Estimate()
	}
	s.mu.Lock()
	p := s.peer
	st.Peer = s.lastPeer
	st.SafetyCode = s.safety
	st.PartnerName = s.partnerName
	st.NTP = s.ntp
	s.mu.Unlock()
	if p != nil {
		st.Peer = p.Stats()
	}
	return st
}

// NTPStatus is the answer of the NTP cross-check.
type NTPStatus struct {
	Server string
	// Offset is the server's clock minus this machine's; RTT the query's
	// round trip.
	Offset, RTT time.Duration
	// Err says why there is no answer (unreachable is normal offline);
	// empty once answered or while asking.
	Err string
}

// Levels are the meters a singer sees, in dBFS.
type Levels struct {
	Mic     meter.Level // what the microphone hears
	Partner meter.Level // the partner's voice as played here
	Output  meter.Level // everything played: monitor, partner and track
	Track   meter.Level // the backing track as played here
}

// Levels measures what the audio thread handed over since the last call.
// Call it from one place (a UI's refresh); safe from any goroutine.
func (s *Session) Levels() Levels {
	return Levels{
		Mic:     s.pipe.micMeter.Level(),
		Partner: s.pipe.partnerMeter.Level(),
		Output:  s.pipe.outMeter.Level(),
		Track:   s.pipe.trackMeter.Level(),
	}
}

// SetMuted mutes (or unmutes) this singer's voice for the partner; they
// still hear themselves. Safe from any goroutine.
func (s *Session) SetMuted(m bool) { s.pipe.voice.SetMuted(m) }

// Muted reports whether this singer's voice is muted for the partner.
func (s *Session) Muted() bool { return s.pipe.voice.Muted() }

// SetMonitor sets the gain at which this singer hears themself (0 = off).
// On speakers it stays off: that would be the echo itself. Safe from any
// goroutine.
func (s *Session) SetMonitor(gain float32) {
	if !s.cfg.Speakers {
		s.pipe.monitor.SetGain(gain)
	}
}

// checkHowl tells the singer when the howl detector muted them.
func (s *Session) checkHowl() {
	if !s.pipe.howled.Swap(false) {
		return
	}
	hz, _ := s.pipe.howl.Howling()
	s.info(fmt.Sprintf("Duet muted your microphone: your speakers were feeding back into it (a howl at %.0f Hz). Turn them down or use headphones, then unmute.", hz))
}

// SetJitterBias leans the partner's playout from tight (−1) to safe (+1).
// Safe from any goroutine.
func (s *Session) SetJitterBias(b float64) { s.pipe.playout.SetBias(b) }

// SetPartnerGain sets how loud the partner is heard (1 = as sent).
func (s *Session) SetPartnerGain(gain float32) { s.pipe.partner.SetGain(gain) }

// Latency is the estimated mouth-to-ear delay from the partner to this
// singer, by stage.
type Latency struct {
	Codec   time.Duration // the partner's packet and its codec's look-ahead
	Network time.Duration // half the round trip
	Jitter  time.Duration // the playout's target
	Device  time.Duration // half the calibrated round trip (both devices are alike)
}

// Total is the sum of the stages.
func (l Latency) Total() time.Duration { return l.Codec + l.Network + l.Jitter + l.Device }

// Latency estimates the partner-to-me delay now from the session's figures.
func (s *Session) Latency() Latency {
	st := s.Stats()
	// Until the partner's first packet, guess they send what we do.
	k, n, ok := s.pipe.dec.received()
	if !ok {
		k, n, _, ok = s.pipe.sent()
	}
	if !ok {
		k, n = codec.Opus, s.pipe.opusFrame
	}
	return Latency{
		Codec:   audio.Duration(n) + codec.FormatOf(k).Lookahead(),
		Network: st.Peer.RTT / 2,
		Jitter:  st.Voice.TargetDelay,
		Device:  st.DeviceRoundTrip / 2,
	}
}
