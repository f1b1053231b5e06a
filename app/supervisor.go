package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/signal"
)

// supervisor is the connection supervisor: it holds the rendezvous
// connection (rv, which takes the server back when it goes away and has
// the guest join the room afresh: rendezvous.go) and the peer connection
// to the partner, acts on the server's messages, numbers the
// connections, and adapts what is sent to the path (adapter). It turns what happens there
// into news for Run (an event for the singer, a connection up or closed)
// and hands what arrives on a connection for the other owners to them
// (routes).
//
// run's goroutine owns all of it (Host and Join before run); the peers'
// goroutines only hand messages to run. It publishes a connState for the
// others (Stats, and current: the current connection) after each change.
type supervisor struct {
	cfg    *Config // read only
	log    *slog.Logger
	host   bool
	pipe   *pipeline
	post   func(news) // to Run; never blocks
	routes peerRoutes

	// run's goroutine.
	rv        *rendezvous
	peer      *peer.Peer
	conn      uint32 // the current connection's number (connections made so far)
	handled   uint32 // the connection whose coming up was handled
	adapt     *adapter
	helloSaid uint32 // the connection told our name

	// From the peers' goroutines to run.
	words    *partnerWords // hellos and byes
	feedback chan feedbackMsg
	ice      chan iceChange

	state    atomic.Pointer[connState]
	closeErr error // how closing went; read after run returns
}

// connState is what the supervisor publishes; a new one replaces it at
// each change.
type connState struct {
	signaling   *signal.Conn // the current rendezvous connection
	conn        uint32       // the latest connection's number; 0 before the first
	peer        *peer.Peer   // the open connection; nil between partners
	last        peer.Stats   // of the last connection, once it is closed
	safety      string       // the latest connection's safety code
	partnerName string
	redundancy  int // RED depth sent now (Opus only)
}

// peerRoutes are where what arrives on a connection goes besides the
// supervisor's own messages; each runs on the peer's goroutine.
type peerRoutes struct {
	control func(conn uint32, c control) // the track's messages
	file    func(conn uint32, b []byte)
	clock   func(conn uint32, b []byte)
	voice   func(conn uint32, stamp uint32, at int64) // the partner's voice's send times
}

type feedbackMsg struct {
	conn   uint32
	report peer.Feedback
	alarm  bool          // not a report: our voice's standing queue, between reports
	queue  time.Duration // the alarm's
}

// partnerWords holds the partner's hellos and byes for run, from the
// peers' goroutines, which must never block (closing a peer waits for
// them) and a flood of which must not crowd out a bye: of the hellos only
// the latest name matters, of the byes only the newest connection's.
type partnerWords struct {
	mu    sync.Mutex // guards the fields below; held for a store or a take
	hello uint32     // the connection of the latest hello (0: none new)
	name  string
	bye   uint32        // the newest connection that said bye (0: none new)
	ready chan struct{} // something new to take
}

func newPartnerWords() *partnerWords { return &partnerWords{ready: make(chan struct{}, 1)} }

// said keeps a hello or a bye on connection conn; any goroutine.
func (w *partnerWords) said(conn uint32, m control) {
	w.mu.Lock()
	switch {
	case m.Type == controlBye:
		w.bye = max(w.bye, conn)
	case conn >= w.hello:
		w.hello, w.name = conn, m.Name
	}
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default: // run is already due to look
	}
}

// take returns what is new since the last take: the latest hello's
// connection (0 if none) and name, and the newest connection's bye.
func (w *partnerWords) take() (hello uint32, name string, bye uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hello, name, bye = w.hello, w.name, w.bye
	w.hello, w.name, w.bye = 0, "", 0
	return hello, name, bye
}

// iceChange is a connection's path (ICE) dropping or coming back.
type iceChange struct {
	conn uint32
	up   bool
}

// signalEnd is a signaling connection's end.
type signalEnd struct {
	conn *signal.Conn
	err  error
}

// resumeResult is how a reconnect to the rendezvous server ended.
type resumeResult struct {
	conn    *signal.Conn
	partner bool
	err     error
}

// newSupervisor takes over sig, in the room code, for cfg (which it
// only reads).
func newSupervisor(cfg *Config, host bool, sig *signal.Conn, code signal.Code, pipe *pipeline, post func(news), log *slog.Logger) *supervisor {
	c := &supervisor{
		cfg:      cfg,
		log:      log,
		host:     host,
		pipe:     pipe,
		post:     post,
		adapt:    newAdapter(cfg.Bitrate, audio.Samples(cfg.Frame), firstCodec(cfg.Codec)),
		words:    newPartnerWords(),
		feedback: make(chan feedbackMsg, 1),
		ice:      make(chan iceChange, 1),
	}
	c.rv = newRendezvous(cfg.Server, code, sig, post, func(sig *signal.Conn) {
		c.update(func(st *connState) { st.signaling = sig })
	}, log)
	c.state.Store(&connState{signaling: sig})
	return c
}

// update publishes the state f makes of the current one; run's
// goroutine.
func (c *supervisor) update(f func(*connState)) {
	old := c.state.Load()
	st := *old
	f(&st)
	c.state.Store(&st)
}

// snapshot returns the latest published state. Safe from any goroutine.
func (c *supervisor) snapshot() *connState { return c.state.Load() }

// run supervises the connections until ctx is done, or the duet is over
// (done: nil, after news of why) or cannot go on (an error); then it says
// goodbye to the partner and leaves the room.
func (c *supervisor) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.closeErr = c.close()
	}()
	c.rv.read(ctx, c.rv.conn)
	// The hello is retried on a tick until it is said, once per
	// connection; the ticker runs only meanwhile.
	hello := time.NewTicker(tickInterval(c.host))
	defer hello.Stop()
	hello.Stop()
	helloTicking := false
	for {
		if c.rv.lost != nil && c.peer == nil {
			// Without the server nobody can join again.
			return fmt.Errorf("your partner left, and without the rendezvous server they cannot come back: %w", c.rv.lost)
		}
		// The current peer's channels; connected stays armed until
		// onConnected has handled that connection.
		var connected, ended <-chan struct{}
		if c.peer != nil {
			ended = c.peer.Ended()
			if c.handled != c.conn {
				connected = c.peer.Connected()
			}
		}
		var helloC <-chan time.Time
		if due := c.cfg.Name != "" && c.peer != nil && c.helloSaid != c.conn; due != helloTicking {
			if due {
				hello.Reset(tickInterval(c.host))
			} else {
				hello.Stop()
			}
			helloTicking = due
		}
		if helloTicking {
			helloC = hello.C
		}
		var done bool
		var err error
		select {
		case <-ctx.Done():
			return nil
		case m := <-c.rv.messages:
			done, err = c.handle(ctx, m)
		case ce := <-c.rv.ends:
			err = c.rv.ended(ctx, ce, c.peer != nil)
		case r := <-c.rv.resumed:
			var partner bool
			if partner, err = c.rv.resumeDone(ctx, r, c.peer != nil); partner && c.host && c.peer == nil {
				c.guestJoined(ctx) // a guest joined while we were away
			}
		case r := <-c.rv.rejoined:
			err = c.rv.rejoinDone(ctx, r)
		case <-connected:
			c.onConnected()
		case <-ended:
			done = c.peerEnded(ctx)
		case <-c.words.ready:
			done = c.onWords()
		case f := <-c.feedback:
			c.adaptTo(f)
		case l := <-c.ice:
			if l.conn != c.conn {
				break
			}
			if l.up {
				c.post(event(StateConnected, "The connection to your partner is back."))
			} else {
				c.post(event(StateReconnecting, "The connection to your partner dropped; reconnecting. Keep singing: the duet goes on when it is back."))
			}
		case <-helloC:
			c.sayHello()
		}
		if err != nil || done {
			return err
		}
	}
}

// tickInterval is how often the steady work of a session comes round:
// the guest's pings and the host's syncs set it.
func tickInterval(host bool) time.Duration {
	if host {
		return syncInterval
	}
	return pingInterval
}

// peerEnded handles the peer connection's end: the partner left, or it
// failed; done reports that the session is over.
func (c *supervisor) peerEnded(ctx context.Context) (done bool) {
	if !c.peer.Failed() {
		// Closed by the partner: they left.
		return c.partnerLeft()
	}
	c.dropPeer()
	if c.host {
		c.post(event(StateReconnecting, "The connection to your guest failed; the room stays open for them to come back."))
		return false
	}
	// A fresh start through the rendezvous server: leave the room and
	// join it again, and the host offers anew.
	c.post(event(StateReconnecting, "The connection to the host failed; joining the room again."))
	c.rv.rejoin(ctx)
	return false
}

// partnerLeft handles the partner's leaving (a bye, or their closing the
// connection): the guest's duet is over; the host's room stays open.
func (c *supervisor) partnerLeft() (done bool) {
	if !c.host {
		c.post(event(StateEnded, "The host ended the duet."))
		return true
	}
	c.dropPeer()
	c.post(event(StatePartnerLeft, "Your guest left; the room stays open for them."))
	return false
}

// onWords handles the partner's hello and bye on the current
// connection; done reports that the session is over.
func (c *supervisor) onWords() (done bool) {
	hello, name, bye := c.words.take()
	if hello != 0 && hello == c.conn {
		name := cleanName(name)
		c.update(func(st *connState) { st.partnerName = name })
		c.log.Debug("the partner's name", "name", name)
	}
	if bye != 0 && bye == c.conn {
		return c.partnerLeft()
	}
	return false
}

// adaptTo takes a reception report: the bitrate, codec and redundancy
// follow the path.
func (c *supervisor) adaptTo(f feedbackMsg) {
	p := c.peer
	if p == nil || f.conn != c.conn || !p.Accepts(codec.Opus) {
		// Not negotiated yet, or the sender stopped as the connection
		// ends: the partner accepts nothing to choose among, and a
		// last report would turn the codec to plain Opus.
		return
	}
	budget, lan := c.adapt.budget, lanPath(p.Stats())
	var rate, red int
	if f.alarm {
		var changed bool
		if rate, red, changed = c.adapt.alarm(f.report.At, f.queue); !changed {
			return
		}
	} else {
		rate, red = c.adapt.update(f.report, lan)
	}
	if c.adapt.budget != budget {
		c.log.Info("sending budget", "bps", c.adapt.budget, "was", budget, "congested", c.adapt.jammed,
			"rate", rate, "frame", c.adapt.frame, "alarm", f.alarm, "queue", f.queue, "lost", f.report.FractionLost, "rtt", f.report.RTT,
			"sent", f.report.SentRate, "received", f.report.ReceivedRate)
	}
	c.pipe.setBitrate(rate)
	c.pipe.setOpusFrame(c.adapt.frame)
	c.sendCodec(c.adapt.codec(c.cfg.Codec, p.Accepts), "lost", f.report.FractionLost, "rtt", f.report.RTT,
		"lan", lan, "budget", c.adapt.budget, "congested", c.adapt.jammed)
	p.SetRedundancy(red) // Opus's only
	if red != c.state.Load().redundancy {
		c.update(func(st *connState) { st.redundancy = red })
	}
}

// sendCodec has the encoder send codec k from now on (if the partner
// took it; else Opus); a change is logged with why (slog's key-value
// pairs).
func (c *supervisor) sendCodec(k codec.Kind, why ...any) {
	if old := c.pipe.setCodec(k); old != k {
		c.log.Info("sending another codec", append([]any{"codec", k.String(), "was", old.String()}, why...)...)
	}
}

// onConnected publishes the new connection's safety code and tells Run
// it is up.
func (c *supervisor) onConnected() {
	c.handled = c.conn
	st := c.peer.Stats()
	how := "directly"
	if st.Relayed {
		how = "through a relay"
	}
	safety := ""
	if code, err := c.peer.SafetyCode(); err == nil {
		c.update(func(st *connState) { st.safety = code })
		safety = fmt.Sprintf(" Safety code %s: if your partner sees the same, nobody listens in.", code)
	}
	c.post(news{kind: newsUp, conn: c.conn, text: fmt.Sprintf("Connected to your partner %s (%s candidate).%s", how, st.Candidate, safety)})
	lan, rtt := lanPath(st), c.peer.PathRTT()
	c.adapt.connected(lan, rtt)
	c.sendCodec(c.adapt.codec(c.cfg.Codec, c.peer.Accepts), "lan", lan, "ice_rtt", rtt)
	c.sayHello()
}

// sayHello tells the partner this singer's name, once per connection
// (retried on the tick: the control channel opens a little after the
// connection).
func (c *supervisor) sayHello() {
	if c.cfg.Name == "" || c.peer == nil || c.helloSaid == c.conn {
		return
	}
	b, err := json.Marshal(control{Type: controlHello, Name: c.cfg.Name})
	if err == nil && c.peer.SendControl(b) == nil {
		c.helloSaid = c.conn
	}
}

// newPeer replaces the current peer connection with a new one.
func (c *supervisor) newPeer(ctx context.Context) (*peer.Peer, error) {
	c.dropPeer()
	// A new partner, a new path: start from the configured bitrate.
	c.adapt = newAdapter(c.cfg.Bitrate, audio.Samples(c.cfg.Frame), firstCodec(c.cfg.Codec))
	c.pipe.setBitrate(c.cfg.Bitrate)
	c.pipe.setOpusFrame(0)
	c.sendCodec(firstCodec(c.cfg.Codec))
	c.conn++
	p, err := peer.New(c.peerConfig(ctx, c.conn))
	c.update(func(st *connState) {
		st.conn, st.partnerName, st.redundancy = c.conn, "", 0
		if err == nil {
			st.peer = p
		}
	})
	if err != nil {
		return nil, err
	}
	c.peer = p
	c.pipe.connect(p, c.conn)
	return p, nil
}

// peerConfig is the configuration of connection number conn: what
// arrives on it goes to its owner, tagged with conn.
func (c *supervisor) peerConfig(ctx context.Context, conn uint32) peer.Config {
	var servers []webrtc.ICEServer
	if len(c.cfg.ICEServers) > 0 {
		servers = []webrtc.ICEServer{{URLs: c.cfg.ICEServers}}
	}
	for _, is := range c.rv.conn.ICEServers() { // the rendezvous server's relay
		servers = append(servers, webrtc.ICEServer{URLs: is.URLs, Username: is.Username, Credential: is.Credential})
	}
	return peer.Config{
		ICEServers: servers,
		Loopback:   c.cfg.Loopback,
		RelayOnly:  c.cfg.RelayOnly,
		WrapConn:   c.cfg.WrapConn,
		Logger:     c.cfg.Logger,
		OnPacket: func(seq uint16, ts uint32, kind codec.Kind, payload []byte) {
			c.pipe.receive(conn, seq, ts, kind, payload)
		},
		OnRecovered: func(seq uint16, ts uint32, payload []byte) {
			c.pipe.recover(conn, seq, ts, payload)
		},
		OnCandidate: func(ci webrtc.ICECandidateInit) {
			sc := signal.Candidate(ci)
			// The peer's goroutine: the published connection, which a
			// reconnect may have replaced.
			if err := c.snapshot().signaling.Send(ctx, signal.Message{Type: signal.TypeCandidate, Candidate: &sc}); err != nil {
				c.log.Debug("could not send ICE candidate", "err", err)
			}
		},
		OnClock: func(b []byte) { c.routes.clock(conn, b) },
		Now:     func() int64 { return int64(c.pipe.now()) },
		OnSendTime: func(stamp uint32, at int64) {
			c.routes.voice(conn, stamp, at)
		},
		OnFile: func(b []byte) { c.routes.file(conn, b) },
		OnLink: func(up bool) {
			for { // the latest state wins: drop an older one still queued
				select {
				case c.ice <- iceChange{conn, up}:
					return
				default:
				}
				select {
				case <-c.ice:
				default:
				}
			}
		},
		OnFeedback: func(f peer.Feedback) {
			msg := feedbackMsg{conn: conn, report: f}
			select {
			case c.feedback <- msg:
			default:
				// Run is busy: the report takes the place of what
				// waits (a queue's alarm, or an older report).
				select {
				case <-c.feedback:
				default:
				}
				select {
				case c.feedback <- msg:
				default: // run took it meanwhile; the next comes in a second
				}
			}
		},
		OnControl: func(b []byte) { c.onControlMessage(conn, b) },
	}
}

// onControlMessage takes a control message on connection conn, on the
// peer's goroutine: hello and bye are run's, the rest the track's.
func (c *supervisor) onControlMessage(conn uint32, b []byte) {
	var m control
	if json.Unmarshal(b, &m) != nil {
		c.log.Debug("malformed control message from partner", "len", len(b))
		return
	}
	if m.Type != controlHello && m.Type != controlBye {
		c.routes.control(conn, m)
		return
	}
	c.words.said(conn, m)
}

// dropPeer says goodbye to the current partner, if any, and closes the
// connection.
func (c *supervisor) dropPeer() {
	p := c.peer
	if p == nil {
		return
	}
	c.peer = nil
	c.pipe.connect(nil, 0)
	last := p.Stats()
	c.update(func(st *connState) { st.peer, st.last = nil, last })
	c.post(news{kind: newsDown, conn: c.conn})
	if bye, err := json.Marshal(control{Type: controlBye}); err == nil {
		p.SendControl(bye) // best effort: the partner may be gone already
	}
	if err := p.Close(); err != nil {
		c.log.Debug("closing peer connection", "err", err)
	}
}

// close says goodbye to the partner and leaves the room; run's end.
func (c *supervisor) close() error {
	c.dropPeer()
	return c.rv.close()
}

// currentConn is the other owners' view of the supervisor's current connection,
// read from its published state: safe from any goroutine.
type currentConn struct {
	state    *atomic.Pointer[connState]
	feedback chan feedbackMsg
	log      *slog.Logger
}

func (c *supervisor) current() currentConn { return currentConn{&c.state, c.feedback, c.log} }

func (l currentConn) connID() uint32 { return l.state.Load().conn }

func (l currentConn) present() bool { return l.state.Load().peer != nil }

func (l currentConn) send(c control) {
	p := l.state.Load().peer
	if p == nil {
		return
	}
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	if err := p.SendControl(b); err != nil {
		l.log.Debug("control message not sent", "type", c.Type, "err", err)
	}
}

func (l currentConn) sendClock(b []byte) {
	if p := l.state.Load().peer; p != nil {
		p.SendClock(b)
	}
}

// ourQueue takes our voice's standing queue on connection conn, as the
// partner's latest report shows it (congestion.OneWay), for the
// adapter's alarm; never blocks.
func (l currentConn) ourQueue(conn uint32, q time.Duration, at time.Time) {
	select {
	case l.feedback <- feedbackMsg{conn: conn, report: peer.Feedback{At: at}, queue: q, alarm: true}:
	default: // run is busy; a report waits, or the next comes in 250 ms
	}
}

// errConnectionGone reports a file message for a connection that closed.
var errConnectionGone = errors.New("the connection closed")

func (l currentConn) sendFile(ctx context.Context, conn uint32, msg []byte) error {
	st := l.state.Load()
	if st.peer == nil || st.conn != conn {
		return errConnectionGone
	}
	return st.peer.SendFile(ctx, msg)
}
