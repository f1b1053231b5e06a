package signal

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

const (
	// readLimit is the websocket library's own limit on a message. It is a
	// little above MaxMessageSize so that readLoop, not the library, finds
	// an oversize message and can reply ErrTooLarge before closing.
	readLimit = MaxMessageSize + 1<<10

	// sendQueue is how many messages may wait for a slow client before it
	// is dropped. A call needs a few dozen messages at most.
	sendQueue = 64

	// writeTimeout bounds one message write to a client.
	writeTimeout = 10 * time.Second

	reasonShutdown = "the rendezvous server is shutting down"
)

// ServerConfig configures a Server. The zero value is ready to use.
type ServerConfig struct {
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// RoomTTL is how long a host may wait for a guest: a room that has had
	// no guest for this long expires, and its host gets ErrRoomExpired and
	// is disconnected. The wait starts when the room is created and again
	// when a guest leaves. Zero or less means one hour.
	RoomTTL time.Duration
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Rand is the source of room codes; nil means crypto/rand.Reader.
	Rand io.Reader
	// Limits bound attempts per address and messages per socket.
	Limits Limits
	// ICEServers, if set, gives the STUN and TURN servers (with fresh
	// credentials) to hand a client, named by its remote address, with
	// created and joined.
	ICEServers func(remote string) []ICEServer
}

// Server is the rendezvous server, an http.Handler serving:
//
//	GET /ws       the signaling WebSocket (see the package doc)
//	GET /healthz  200 "ok"
//	GET /metrics  Prometheus figures: rooms, sockets, messages, rejections, relayed bytes
//
// and 404 for anything else. It is safe for concurrent use.
//
// Each socket has one reading goroutine (the HTTP handler's) and one
// writer goroutine, fed by a queue of a few dozen messages. Queuing never
// blocks, so a slow client cannot stall its partner or the server. Drop
// policy: when a client's queue is full (it stopped reading, or its network
// cannot keep up with traffic that is a few dozen small messages per call)
// the server drops that client: it closes the socket at once, discarding
// the queue, logs a warning, and tells the partner peer-left as for any
// participant who leaves. Single messages are never discarded, since a lost
// offer or candidate would leave a call half set up with no one knowing.
type Server struct {
	log  *slog.Logger
	ttl  time.Duration
	now  func() time.Time
	rand io.Reader

	done chan struct{}  // closed by Close; stops expireLoop
	wg   sync.WaitGroup // every goroutine the server runs or waits for

	limits     Limits
	iceServers func(remote string) []ICEServer
	metrics    *metrics

	mu        sync.Mutex
	closed    bool
	rooms     map[Code]*room
	peers     map[*peer]struct{}
	addresses map[string]*addressLimits // by IP
}

// NewServer returns a server configured by cfg. It starts a goroutine that
// expires idle rooms; call Close to stop it.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{
		log:        cfg.Logger,
		ttl:        cfg.RoomTTL,
		now:        cfg.Now,
		rand:       cfg.Rand,
		done:       make(chan struct{}),
		rooms:      make(map[Code]*room),
		peers:      make(map[*peer]struct{}),
		addresses:  make(map[string]*addressLimits),
		limits:     cfg.Limits.withDefaults(),
		iceServers: cfg.ICEServers,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.metrics = newMetrics(s)
	// Expire rooms within a tenth of the TTL, checking at most once a second.
	interval := min(max(s.ttl/10, time.Second), time.Minute)
	s.wg.Go(func() { s.expireLoop(interval) })
	return s
}

// Rooms returns the number of open rooms.
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// Close closes every socket with status 1001 (going away), deletes every
// room and waits for the server's goroutines to stop: at once for clients
// that answer the close handshake, within some 20 seconds for clients that
// have stopped reading. Later connections get 503. Close is idempotent and
// always returns nil.
//
// http.Server.Shutdown does not track WebSockets: call Close as well.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		for p := range s.peers {
			p.closeWith(websocket.StatusGoingAway, reasonShutdown)
		}
		clear(s.rooms)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// ServeHTTP serves /ws, /healthz and 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ws":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		s.serveWS(w, r)
	case "/metrics":
		s.metrics.handler().ServeHTTP(w, r)
	case "/healthz":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

// serveWS runs one socket: it reads in the handler's goroutine and starts
// the socket's writer, and returns when both are done.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, reasonShutdown, http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1) // so that Close waits for this handler
	s.mu.Unlock()
	defer s.wg.Done()

	// The default options check that a browser's Origin matches the host;
	// Duet's native clients send no Origin and are let in.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("signal: websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	conn.SetReadLimit(readLimit)

	// The peer's context is not r.Context(), which must not be used once the
	// connection is hijacked.
	p, ctx := newPeer(conn, r.RemoteAddr)
	p.messages = rate.NewLimiter(rate.Limit(s.limits.Messages), s.limits.MessageBurst)
	defer p.kill()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, reasonShutdown)
		return
	}
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	s.log.Debug("signal: socket opened", "remote", p.remote)

	s.wg.Go(func() { s.writeLoop(ctx, p) })
	code, reason := s.readLoop(ctx, p)

	s.mu.Lock()
	s.leaveLocked(p)
	delete(s.peers, p)
	s.mu.Unlock()
	p.closeWith(code, reason)
	<-p.writerDone
	s.log.Debug("signal: socket closed", "remote", p.remote)
}

// readLoop reads and handles p's messages until the socket ends or must be
// closed, and returns the status to close it with.
func (s *Server) readLoop(ctx context.Context, p *peer) (websocket.StatusCode, string) {
	for {
		typ, r, err := p.conn.Reader(ctx)
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", p.remote, "err", err)
			return websocket.StatusNormalClosure, ""
		}
		data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", p.remote, "err", err)
			return websocket.StatusNormalClosure, ""
		}
		if len(data) > MaxMessageSize {
			s.log.Info("signal: message too large", "remote", p.remote)
			s.sendError(p, errorf(ErrTooLarge,
				"the message is larger than the limit of %d bytes, so the rendezvous server hung up", MaxMessageSize))
			return websocket.StatusMessageTooBig, "message too big"
		}
		if !p.messages.AllowN(s.now(), 1) {
			s.log.Warn("signal: socket sends too fast; hanging up", "remote", p.remote)
			s.sendError(p, errorf(ErrRateLimited, "you sent more than %v messages a second, so the rendezvous server hung up", s.limits.Messages))
			return websocket.StatusPolicyViolation, "too many messages"
		}
		if typ != websocket.MessageText {
			s.sendError(p, errorf(ErrBadMessage, "messages must be JSON text, not binary"))
			continue
		}
		m, err := Decode(data)
		if err != nil {
			s.log.Debug("signal: bad message", "remote", p.remote, "err", err)
			e := ErrBadMessage
			errors.As(err, &e)
			s.sendError(p, e)
			continue
		}
		s.handle(p, m, data)
	}
}

// writeLoop is p's only writer. It sends queued messages until p is
// stopped (then it flushes the queue and closes the socket with p's close
// code) or killed.
func (s *Server) writeLoop(ctx context.Context, p *peer) {
	defer close(p.writerDone)
	write := func(b []byte) bool {
		ctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
			s.log.Debug("signal: write failed", "remote", p.remote, "err", err)
			p.kill()
			return false
		}
		return true
	}
	for {
		select {
		case b := <-p.out:
			if !write(b) {
				return
			}
		case <-p.stop:
			for range len(p.out) {
				if !write(<-p.out) {
					return
				}
			}
			p.conn.Close(p.code, p.reason)
			return
		case <-ctx.Done():
			p.conn.CloseNow()
			return
		}
	}
}

// send queues m for p without blocking; see the drop policy on Server.
func (s *Server) send(p *peer, m Message) {
	b, err := Encode(m)
	if err != nil {
		s.log.Error("signal: cannot encode a reply", "type", m.Type, "err", err)
		return
	}
	s.sendRaw(p, b)
}

// sendError queues an error message for p.
func (s *Server) sendError(p *peer, e *Error) {
	s.metrics.rejections.WithLabelValues(e.Code).Inc()
	s.send(p, Message{Type: TypeError, Error: e})
}

// sendRaw queues an encoded message for p without blocking; see the drop
// policy on Server.
func (s *Server) sendRaw(p *peer, b []byte) {
	select {
	case <-p.dead:
		return
	case <-p.stop:
		return // closing: the writer flushes only what was queued before
	default:
	}
	select {
	case p.out <- b:
	default:
		s.log.Warn("signal: dropping a client that does not read its messages",
			"remote", p.remote, "queued", len(p.out))
		p.kill()
	}
}

// handle acts on a valid message m from p; raw is m as received.
func (s *Server) handle(p *peer, m Message, raw []byte) {
	s.metrics.messages.WithLabelValues(string(m.Type)).Inc() // Decode admits known types only
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.Type {
	case TypeCreate, TypeJoin:
		if !s.allowLocked(ipOf(p.remote), m.Type == TypeJoin) {
			s.log.Warn("signal: too many attempts", "type", m.Type, "remote", p.remote)
			s.sendError(p, errorf(ErrRateLimited, "too many %s attempts from your address: wait a minute and try again", m.Type))
			return
		}
		if m.Type == TypeCreate {
			s.createLocked(p)
		} else {
			s.joinLocked(p, m.Room)
		}
	case TypeOffer, TypeAnswer, TypeCandidate:
		s.relayLocked(p, m.Type, raw)
	case TypeBye:
		if p.room == nil {
			s.sendError(p, errorf(ErrNotInRoom, "you are not in a room, so there is none to leave"))
			return
		}
		s.leaveLocked(p)
	default:
		s.sendError(p, errorf(ErrBadMessage, "%s messages come from the rendezvous server, not from apps", m.Type))
	}
}

func (s *Server) createLocked(p *peer) {
	if p.room != nil {
		s.sendError(p, errorf(ErrAlreadyInRoom,
			"you are already in room %s: leave it before creating another", p.room.code))
		return
	}
	var code Code
	for range 8 { // with 40 random bits, a second try is already rare
		c, err := NewCode(s.rand)
		if err != nil {
			s.log.Error("signal: cannot make a room code", "err", err)
			s.sendError(p, ErrInternal)
			return
		}
		if s.rooms[c] == nil {
			code = c
			break
		}
	}
	if code == "" {
		s.log.Error("signal: no free room code found; is Rand random?")
		s.sendError(p, ErrInternal)
		return
	}
	r := &room{code: code, host: p, since: s.now()}
	s.rooms[code] = r
	p.room = r
	s.log.Info("signal: room created", "room", code, "remote", p.remote)
	s.send(p, Message{Type: TypeCreated, Room: code.String(), ICEServers: s.iceServersFor(p)})
}

func (s *Server) joinLocked(p *peer, room string) {
	if p.room != nil {
		s.sendError(p, errorf(ErrAlreadyInRoom,
			"you are already in room %s: leave it before joining another", p.room.code))
		return
	}
	code, err := ParseCode(room)
	if err != nil { // Decode has checked it
		s.sendError(p, errorf(ErrBadMessage, "%s is not a room code", quote(room)))
		return
	}
	r := s.rooms[code]
	switch {
	case r == nil:
		s.sendError(p, errorf(ErrRoomNotFound, "room %s not found: check the code with the host", code))
	case r.expired(s.now(), s.ttl):
		s.expireLocked(r)
		s.sendError(p, errorf(ErrRoomExpired, "room %s has expired: ask the host for a new code", code))
	case r.guest != nil:
		s.sendError(p, errorf(ErrRoomFull, "room %s is full: a duet has two singers", code))
	default:
		r.guest = p
		p.room = r
		s.log.Info("signal: guest joined", "room", code, "remote", p.remote)
		s.send(p, Message{Type: TypeJoined, Room: code.String(), ICEServers: s.iceServersFor(p)})
		s.send(r.host, Message{Type: TypePeerJoined, Room: code.String()})
	}
}

// iceServersFor returns the ICE servers to hand p, if the server has any.
func (s *Server) iceServersFor(p *peer) []ICEServer {
	if s.iceServers == nil {
		return nil
	}
	return s.iceServers(p.remote)
}

func (s *Server) relayLocked(p *peer, t Type, raw []byte) {
	if p.room == nil {
		s.sendError(p, errorf(ErrNotInRoom, "you are not in a room yet: create or join one before sending %s", t))
		return
	}
	to := p.room.other(p)
	if to == nil {
		s.sendError(p, errorf(ErrNotInRoom,
			"there is no partner in room %s yet: wait for the other singer to join", p.room.code))
		return
	}
	s.metrics.relayed.Add(float64(len(raw)))
	s.sendRaw(to, raw)
}

// sockets returns the number of open sockets.
func (s *Server) sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// leaveLocked takes p out of its room, if any, and tells the other
// participant. A leaving host deletes the room; a leaving guest opens it
// for a new guest.
func (s *Server) leaveLocked(p *peer) {
	r := p.room
	if r == nil {
		return
	}
	p.room = nil
	left := Message{Type: TypePeerLeft, Room: r.code.String()}
	if p == r.host {
		delete(s.rooms, r.code)
		if g := r.guest; g != nil {
			g.room = nil
			s.send(g, left)
		}
		s.log.Info("signal: host left, room deleted", "room", r.code, "remote", p.remote)
		return
	}
	r.guest = nil
	r.since = s.now()
	s.send(r.host, left)
	s.log.Info("signal: guest left", "room", r.code, "remote", p.remote)
}

// expireLocked deletes r, whose host has waited too long, and disconnects
// the host.
func (s *Server) expireLocked(r *room) {
	delete(s.rooms, r.code)
	r.host.room = nil
	s.log.Info("signal: room expired", "room", r.code, "remote", r.host.remote)
	s.sendError(r.host, errorf(ErrRoomExpired,
		"room %s has expired because no one joined it: create a new room", r.code))
	r.host.closeWith(websocket.StatusNormalClosure, "room expired")
}

// expireLoop expires idle rooms every interval until Close.
func (s *Server) expireLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.expireIdle()
		case <-s.done:
			return
		}
	}
}

// expireIdle expires every room whose host has waited RoomTTL.
func (s *Server) expireIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, r := range s.rooms {
		if r.expired(now, s.ttl) {
			s.expireLocked(r)
		}
	}
	s.forgetIdleLocked()
}
