package signal

import (
	"bytes"
	"container/list"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
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

	// maxQueueBytes bounds the bytes queued for one client, whatever
	// their number: a call's offer, answer and a hundred candidates are
	// some 30 kB, the largest messages 64 kB.
	maxQueueBytes = 1 << 20

	// queueSlack is what the queue holds beyond two message bursts: the
	// server's own messages (peer-joined, peer-left, an expiry).
	queueSlack = 16

	// writeTimeout bounds one message write to a client: expireIdle drops
	// a socket whose write takes longer.
	writeTimeout = 10 * time.Second

	reasonShutdown = "the rendezvous server is shutting down"

	// StatusReplaced closes a socket whose seat another socket resumed.
	StatusReplaced websocket.StatusCode = 4001

	// storeTimeout bounds one operation of the Store.
	storeTimeout = 5 * time.Second
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
	// ResumeGrace is how long the seat of a participant whose socket
	// dropped (without bye or a close handshake) is kept for it to resume
	// while its partner is there; after that the partner is told
	// peer-left. Zero or less means one minute.
	ResumeGrace time.Duration
	// Store keeps the rooms; nil means one in memory (NewMemoryStore).
	// With a Redis store (NewRedisStore) several servers share rooms. The
	// server closes it.
	Store Store
	// ICEServers, if set, gives the STUN and TURN servers (with fresh
	// credentials) to hand a client, named by its remote address, once it
	// has a partner: a guest with joined, a host with peer-joined (each
	// new guest, a new set), either with resumed when its partner is there
	// (the set it had, if this server handed it out).
	ICEServers func(remote string) []ICEServer
	// ReleaseICE, if set, is called with a set ICEServers returned when it
	// is done with: its seat was given up for good (bye, a closed socket,
	// the room's expiry or deletion, or a dropped socket's grace over),
	// or the host was handed a new set for a new guest. A relay revokes
	// the credentials there. A seat that resumes on another server (with
	// a Redis store) is handed a new set there; the old one is left to
	// expire.
	ReleaseICE func([]ICEServer)
	// PingTimeout is how long a socket may stay silent: one from which
	// nothing (a message, a ping, a pong) has come for half of it is
	// pinged, and dropped if it does not answer within the other half,
	// keeping its seat for a resume. Zero or less means one minute.
	// Duet's clients ping every 25 s, so they are never pinged.
	PingTimeout time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the
	// server believes. A request that comes directly from one of them is
	// taken to come from the right-most address of X-Forwarded-For that is
	// not itself a trusted proxy; from anyone else the header is ignored,
	// since a client can write what it likes there. Limits, caps and the
	// ICE servers' credentials go by that address.
	TrustedProxies []netip.Prefix
	// MetricsToken, if set, is the bearer token /metrics wants
	// (Authorization: Bearer TOKEN); without it, 401.
	MetricsToken string
	// NoPublicMetrics takes /metrics off the server's handler (404), to
	// serve Metrics on a listener of its own (loopback, say).
	NoPublicMetrics bool
}

// Server is the rendezvous server, an http.Handler serving:
//
//	GET /ws       the signaling WebSocket (see the package doc)
//	GET /healthz  200 "ok"
//	GET /metrics  Prometheus figures (see Metrics; ServerConfig.MetricsToken, NoPublicMetrics)
//
// and 404 for anything else. It is safe for concurrent use.
//
// Its log names room codes and client addresses at Debug only (a code in
// a log lets its reader join the room); abuse (rate limits, caps) is
// counted in the metrics, not logged above Debug, so that it cannot flood
// the log.
//
// Each socket has one reading goroutine (the HTTP handler's) and one
// writer goroutine, fed by a queue. Queuing never blocks, so a slow client
// cannot stall its partner or the server. The queue holds more than can
// be sent to a client that keeps reading: its partner's whole message
// burst (Limits.MessageBurst) relayed, a reply to each message of its own
// burst, and a few of the server's own: 2×MessageBurst+16 messages, and
// at most 1 MiB. Drop policy: when a client's queue is full all the same
// (it stopped reading, or its network cannot keep up) the server drops
// that client: it closes the socket at once, discarding the queue, and
// logs a warning. The seat is kept for a resume, as for any socket that
// drops: the partner is told peer-left only if it does not come back
// within ResumeGrace. Single messages are never discarded, since a lost
// offer or candidate would leave a call half set up with no one knowing.
type Server struct {
	log   *slog.Logger
	ttl   time.Duration
	now   func() time.Time
	rand  io.Reader
	grace time.Duration
	store Store

	done chan struct{}  // closed by Close; stops expireLoop
	wg   sync.WaitGroup // every goroutine the server runs or waits for

	limits         Limits
	iceServers     func(remote string) []ICEServer
	releaseICEFunc func([]ICEServer)
	metrics        *metrics
	pingTimeout    time.Duration
	trusted        []netip.Prefix
	// metricsToken and publicMetrics are ServerConfig's MetricsToken and
	// !NoPublicMetrics.
	metricsToken  string
	publicMetrics bool
	epoch         time.Time // of the monotonic times in peer.heard

	closed2  chan struct{} // closed when Close is done
	closeErr error         // of the store; read after closed2

	scratch sync.Pool // of *bytes.Buffer, for readMessage

	mu        sync.Mutex
	closed    bool
	seats     map[seatKey]*peer // the seats whose sockets this server holds
	peers     map[*peer]struct{}
	addresses map[string]*list.Element // of lru, by IP (ipOf)
	lru       *list.List               // of *addressLimits, most recently used first
	ice       map[seatKey]iceGrant     // the ICE servers handed out, by seat
	open      int                      // sockets open or being opened
	openBy    map[string]int           // open, by IP (ipOf)
}

// NewServer returns a server configured by cfg. It starts a goroutine that
// expires idle rooms; call Close to stop it.
func NewServer(cfg ServerConfig) *Server {
	s := &Server{
		log:            cfg.Logger,
		ttl:            cfg.RoomTTL,
		now:            cfg.Now,
		rand:           cfg.Rand,
		done:           make(chan struct{}),
		closed2:        make(chan struct{}),
		grace:          cfg.ResumeGrace,
		store:          cfg.Store,
		seats:          make(map[seatKey]*peer),
		peers:          make(map[*peer]struct{}),
		addresses:      make(map[string]*list.Element),
		lru:            list.New(),
		limits:         cfg.Limits.withDefaults(),
		iceServers:     cfg.ICEServers,
		releaseICEFunc: cfg.ReleaseICE,
		ice:            make(map[seatKey]iceGrant),
		pingTimeout:    cfg.PingTimeout,
		trusted:        cfg.TrustedProxies,
		metricsToken:   cfg.MetricsToken,
		publicMetrics:  !cfg.NoPublicMetrics,
		epoch:          time.Now(),
		openBy:         make(map[string]int),
	}
	if s.pingTimeout <= 0 {
		s.pingTimeout = time.Minute
	}
	s.scratch.New = func() any { return new(bytes.Buffer) }
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
	if s.grace <= 0 {
		s.grace = time.Minute
	}
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	// Expire rooms within a tenth of the TTL and mark seats seen four
	// times per grace, checking at most once a second.
	interval := min(max(min(s.ttl/10, s.grace/4), time.Second), time.Minute)
	s.store.Bind(StoreConfig{TTL: s.ttl, Grace: s.grace, Abandon: s.grace + interval,
		Rooms: s.limits.Rooms, RoomsPerAddress: s.limits.RoomsPerAddress}, s.deliver)
	s.metrics = newMetrics(s)
	s.wg.Go(func() { s.expireLoop(interval) })
	return s
}

// seatKey names a seat in Server.seats.
type seatKey struct {
	role Role
	room Code
}

// Rooms returns the number of open rooms (of every server sharing the
// store; with Redis, a count up to two seconds old plus the rooms created
// here since), or -1 if the store fails.
func (s *Server) Rooms() int {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	n, err := s.store.Rooms(ctx)
	if err != nil {
		s.log.Error("signal: cannot count rooms", "err", err)
		return -1
	}
	return n
}

// storeCtx returns the context of one store operation.
func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// Close closes every socket with status 1001 (going away), waits for the
// server's goroutines to stop (at once for clients that answer the close
// handshake, within some 20 seconds for clients that have stopped reading)
// and closes the store. Seats are kept, not given up: in a Redis store the
// rooms live on for their participants to resume on another instance, or
// on this one restarted; the memory store forgets them. Later connections
// get 503. Close is idempotent and returns the store's error.
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
		s.mu.Unlock()
		s.wg.Wait()
		s.closeErr = s.store.Close()
		close(s.closed2)
		return s.closeErr
	}
	s.mu.Unlock()
	<-s.closed2
	return s.closeErr
}

// ServeHTTP serves /ws, /healthz, /metrics and 404. A request with a
// body gets 413 and its connection is closed: no endpoint takes one, and
// one that dribbles in would hold the connection.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 { // -1: chunked, of unknown length
		// net/http would read up to 256 kB of the body after the reply,
		// to keep the connection: a read deadline now makes it give up.
		http.NewResponseController(w).SetReadDeadline(time.Now())
		w.Header().Set("Connection", "close")
		http.Error(w, "the rendezvous server takes no request bodies", http.StatusRequestEntityTooLarge)
		return
	}
	switch r.URL.Path {
	case "/ws":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		s.serveWS(w, r)
	case "/metrics":
		if !s.publicMetrics {
			http.NotFound(w, r)
			return
		}
		s.Metrics().ServeHTTP(w, r)
	case "/healthz":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Health(ctx); err != nil {
			s.log.Warn("signal: store unhealthy", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "store unavailable")
			return
		}
		io.WriteString(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

// Metrics returns the handler of the server's Prometheus figures (rooms,
// sockets, messages, rejections, refusals, relayed bytes), whatever the
// path, asking for ServerConfig.MetricsToken if set. It names no room
// code or address.
func (s *Server) Metrics() http.Handler {
	h := s.metrics.handler()
	if s.metricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.metricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="duet metrics"`)
			http.Error(w, "the metrics need a bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveWS runs one socket: it reads in the handler's goroutine and starts
// the socket's writer, and returns when both are done.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	remote := s.clientAddr(r)
	ip := ipOf(remote)
	s.mu.Lock()
	var refused, reason string
	status := http.StatusServiceUnavailable
	switch {
	case s.closed:
		refused = reasonShutdown
	case s.open >= s.limits.Sockets:
		refused, reason = "the rendezvous server has too many connections: try again in a minute", "server-full"
	case s.openBy[ip] >= s.limits.SocketsPerAddress:
		refused, reason = "too many connections from your address: close some, or try again in a minute", "address-full"
		status = http.StatusTooManyRequests
	}
	if refused != "" {
		s.mu.Unlock()
		if reason != "" {
			s.metrics.refused.WithLabelValues(reason).Inc()
			s.log.Debug("signal: socket refused", "reason", reason, "remote", remote)
		}
		w.Header().Set("Retry-After", "60")
		http.Error(w, refused, status)
		return
	}
	s.open++
	s.openBy[ip]++
	s.wg.Add(1) // so that Close waits for this handler
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		if s.openBy[ip]--; s.openBy[ip] <= 0 {
			delete(s.openBy, ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()

	// Anything from the client shows that it is there: see pingTimeout.
	// The callbacks run in p's reads, which start once p is set.
	var p *peer
	// The default options check that a browser's Origin matches the host;
	// Duet's native clients send no Origin and are let in.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OnPingReceived: func(context.Context, []byte) bool { s.hear(p); return true },
		OnPongReceived: func(context.Context, []byte) { s.hear(p) },
	})
	if err != nil {
		s.log.Debug("signal: websocket upgrade failed", "remote", remote, "err", err)
		return
	}
	conn.SetReadLimit(readLimit)

	// The peer's context is not r.Context(), which must not be used once the
	// connection is hijacked.
	p, ctx := newPeer(conn, remote, s.queueLimit())
	s.hear(p)
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
	code, reason, leave := s.readLoop(p)

	s.mu.Lock()
	// A socket that drops keeps its seat for a resume, and so does one
	// the server dropped for not reading (its network may be slow: it
	// may come back); one that the client closed, or the server hung up
	// on, gives it up. Shutting down keeps every seat.
	leave = leave && !s.closed
	delete(s.peers, p)
	s.mu.Unlock()
	if leave {
		s.leave(p)
	} else if seat := s.release(p, nil); seat != nil {
		s.awayICE(*seat, false)
		// Its room may now be abandoned, and make room for another.
		ctx, cancel := storeCtx()
		if err := s.store.Away(ctx, *seat, s.now()); err != nil {
			s.log.Error("signal: cannot mark a seat away", "err", err)
		}
		cancel()
	}
	p.closeWith(code, reason)
	<-p.writerDone
	s.log.Debug("signal: socket closed", "remote", p.remote)
}

// readLoop reads and handles p's messages until the socket ends or must be
// closed, and returns the status to close it with and whether p gives up
// its seat: when the client closed the socket with a handshake (1000 or
// 1001) or the server hangs up on it, not when the socket just drops.
func (s *Server) readLoop(p *peer) (websocket.StatusCode, string, bool) {
	for {
		// No context of its own either: kill closes the connection.
		typ, r, err := p.conn.Reader(context.Background())
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", p.remote, "err", err)
			st := websocket.CloseStatus(err)
			return websocket.StatusNormalClosure, "", st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway
		}
		env, err := s.readMessage(r)
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", p.remote, "err", err)
			return websocket.StatusNormalClosure, "", false
		}
		data := env[1:]
		s.hear(p)
		if len(data) > MaxMessageSize {
			s.log.Debug("signal: message too large", "remote", p.remote)
			s.sendError(p, errorf(ErrTooLarge,
				"the message is larger than the limit of %d bytes, so the rendezvous server hung up", MaxMessageSize))
			return websocket.StatusMessageTooBig, "message too big", true
		}
		if !p.messages.AllowN(s.now(), 1) {
			s.log.Debug("signal: socket sends too fast; hanging up", "remote", p.remote)
			s.sendError(p, errorf(ErrRateLimited, "you sent more than %v messages a second, so the rendezvous server hung up", s.limits.Messages))
			return websocket.StatusPolicyViolation, "too many messages", true
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
		s.handle(p, m, env)
	}
}

// readMessage reads a message of up to MaxMessageSize+1 bytes from r into
// a slice of its size after one spare byte, for its envelope when it is
// relayed: one allocation, not the several of io.ReadAll nor a copy to
// envelope it.
func (s *Server) readMessage(r io.Reader) ([]byte, error) {
	buf := s.scratch.Get().(*bytes.Buffer)
	defer s.scratch.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, MaxMessageSize+1)); err != nil {
		return nil, err
	}
	env := make([]byte, 1+buf.Len())
	copy(env[1:], buf.Bytes())
	return env, nil
}

// writeLoop is p's only writer. It sends queued messages until p is
// stopped (then it flushes the queue and closes the socket with p's close
// code) or killed. Whichever way it ends, the connection is closed when it
// returns: a write that fails on a killed context (before the library
// takes its lock) leaves the connection open otherwise, and its descriptor
// with it.
func (s *Server) writeLoop(ctx context.Context, p *peer) {
	defer close(p.writerDone)
	defer p.conn.CloseNow() // after Close, a no-op
	write := func(b []byte) bool {
		// No deadline of its own (it costs a timer and a callback per
		// message): expireIdle drops a socket whose write is stuck, and
		// kill closes the connection under it.
		p.writing.Store(int64(time.Since(s.epoch)))
		err := p.conn.Write(context.Background(), websocket.MessageText, b)
		p.writing.Store(0)
		if err != nil {
			s.log.Debug("signal: write failed", "remote", p.remote, "err", err)
			p.kill()
			return false
		}
		return true
	}
	flush := func() bool {
		for b := p.pop(); b != nil; b = p.pop() {
			if !write(b) {
				return false
			}
		}
		return true
	}
	// A socket silent for half the ping timeout is pinged, and dropped if
	// no pong comes in the other half.
	half := s.pingTimeout / 2
	ping := time.NewTimer(half)
	defer ping.Stop()
	for {
		select {
		case <-ping.C:
			if quiet := time.Since(s.epoch) - time.Duration(p.heard.Load()); quiet < half {
				ping.Reset(half - quiet)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, half)
			err := p.conn.Ping(pctx)
			cancel()
			if err != nil {
				s.log.Debug("signal: no answer to a ping; dropping the socket", "remote", p.remote, "err", err)
				s.metrics.pingTimeouts.Inc()
				p.kill()
				return
			}
			ping.Reset(half)
		case <-p.wake:
			if !flush() {
				return
			}
		case <-p.stop:
			if flush() {
				p.conn.Close(p.code, p.reason)
			}
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
	if !p.push(b) {
		s.log.Warn("signal: dropping a client that does not read its messages", "queued", p.queueLen())
		p.kill()
	}
}

// queueLimit is the most messages queued for one client before it is
// dropped: more than can be sent to it before its writer runs again
// without it misbehaving, namely its partner's whole message burst and a
// reply to each message of its own burst, and a few of the server's own.
func (s *Server) queueLimit() int {
	return 2*s.limits.MessageBurst + queueSlack
}

// handle acts on a valid message m from p; env is m as received after a
// spare byte (see readMessage). Store operations run without Server.mu
// held: they may cross the network.
func (s *Server) handle(p *peer, m Message, env []byte) {
	s.metrics.messages.WithLabelValues(string(m.Type)).Inc() // Decode admits known types only
	switch m.Type {
	case TypeCreate, TypeJoin, TypeResume:
		// A resume is a guess at a token as a join is at a code.
		s.mu.Lock()
		ok := s.allowLocked(ipOf(p.remote), m.Type != TypeCreate)
		s.mu.Unlock()
		if !ok {
			s.log.Debug("signal: too many attempts", "type", m.Type, "remote", p.remote)
			s.sendError(p, errorf(ErrRateLimited, "too many %s attempts from your address: wait a minute and try again", m.Type))
			return
		}
		if seat := s.seatOf(p); seat != nil {
			s.sendError(p, errorf(ErrAlreadyInRoom,
				"you are already in room %s: leave it before you %s another", seat.Room, m.Type))
			return
		}
		switch m.Type {
		case TypeCreate:
			s.create(p)
		case TypeJoin:
			s.join(p, m.Room)
		default:
			s.resume(p, m.Room, m.Token)
		}
	case TypeOffer, TypeAnswer, TypeCandidate:
		s.relay(p, m.Type, env)
	case TypeBye:
		if !s.leave(p) {
			s.sendError(p, errorf(ErrNotInRoom, "you are not in a room, so there is none to leave"))
		}
	default:
		s.sendError(p, errorf(ErrBadMessage, "%s messages come from the rendezvous server, not from apps", m.Type))
	}
}

// Envelopes of what servers publish to a seat through the Store: one byte
// of kind, then an encoded message (or, for kick, the new socket's id).
const (
	envRelay   = 'm' // an offer, answer or candidate: send as is
	envJoined  = 'j' // peer-joined, to the host
	envLeft    = 'l' // peer-left: to a host its guest left, to a guest its room is gone
	envExpired = 'x' // to a host: its room expired; the socket is closed
	envKick    = 'k' // another socket resumed this seat: close the old one
)

func envelope(kind byte, b []byte) []byte {
	return append([]byte{kind}, b...)
}

// publish hands m to room's seat wherever its socket is, and reports
// whether it arrived.
func (s *Server) publish(kind byte, to Role, room Code, m Message) bool {
	b, err := Encode(m)
	if err != nil {
		s.log.Error("signal: cannot encode a message", "type", m.Type, "err", err)
		return false
	}
	ctx, cancel := storeCtx()
	defer cancel()
	ok, err := s.store.Publish(ctx, to, room, envelope(kind, b))
	if err != nil {
		s.log.Error("signal: cannot publish", "type", m.Type, "err", err)
	}
	return ok
}

// deliver hands what was published to a seat to this server's socket
// holding it, if any. The Store calls it.
func (s *Server) deliver(role Role, room Code, msg []byte) bool {
	if len(msg) == 0 {
		return false
	}
	s.mu.Lock()
	p := s.seats[seatKey{role, room}]
	if p == nil {
		s.mu.Unlock()
		return false
	}
	body := msg[1:]
	var seat Seat
	if p.seat != nil {
		seat = *p.seat
	}
	switch msg[0] {
	case envJoined:
		p.partner = true
	case envLeft:
		p.partner = false
	case envKick:
		if p.id == string(body) {
			s.mu.Unlock()
			return true // the socket that resumed
		}
	}
	s.mu.Unlock()

	switch msg[0] {
	case envRelay:
		s.sendRaw(p, body)
	case envJoined:
		// The host's ICE servers come now that it has a partner.
		s.send(p, Message{Type: TypePeerJoined, Room: room.String(), ICEServers: s.grantICE(p, seat)})
	case envLeft:
		if role == Guest { // the host left: the room is gone
			if s.release(p, nil) != nil {
				s.releaseICE(seat)
			}
		}
		s.sendRaw(p, body)
	case envExpired:
		if s.release(p, nil) != nil {
			s.releaseICE(seat)
		}
		s.sendRaw(p, body)
		p.closeWith(websocket.StatusNormalClosure, "room expired")
	case envKick:
		if s.release(p, nil) != nil {
			s.awayICE(seat, true)
		}
		p.closeWith(StatusReplaced, "the seat was resumed on another connection")
	default:
		return false
	}
	return true
}

// seatOf returns a copy of p's seat, or nil.
func (s *Server) seatOf(p *peer) *Seat {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.seat == nil {
		return nil
	}
	seat := *p.seat
	return &seat
}

// take gives p the seat and starts delivering its messages here. A socket
// of this server that held the seat before is closed.
func (s *Server) take(p *peer, seat Seat, partner bool) error {
	s.mu.Lock()
	key := seatKey{seat.Role, seat.Room}
	old := s.seats[key]
	if old != nil && old != p {
		old.seat = nil
	}
	s.seats[key] = p
	p.seat, p.partner = &seat, partner
	if g, ok := s.ice[key]; ok && g.token == seat.Token {
		g.here = true
		s.ice[key] = g
	}
	s.mu.Unlock()
	if old != nil && old != p {
		old.closeWith(StatusReplaced, "the seat was resumed on another connection")
		return nil // still attached
	}
	ctx, cancel := storeCtx()
	defer cancel()
	return s.store.Attach(ctx, seat.Role, seat.Room)
}

// release takes p out of its seat here, if it still holds want (nil: any),
// without giving the seat up in the store, and returns the seat.
func (s *Server) release(p *peer, want *Seat) *Seat {
	s.mu.Lock()
	seat := p.seat
	if seat == nil || (want != nil && *seat != *want) {
		s.mu.Unlock()
		return nil
	}
	p.seat, p.partner = nil, false
	key := seatKey{seat.Role, seat.Room}
	if s.seats[key] == p {
		delete(s.seats, key)
	}
	s.mu.Unlock()
	ctx, cancel := storeCtx()
	defer cancel()
	if err := s.store.Detach(ctx, seat.Role, seat.Room); err != nil {
		s.log.Error("signal: cannot detach a seat", "err", err)
	}
	return seat
}

// create makes p a room. Where rooms run short (Limits.Rooms,
// RoomsPerAddress), the store makes room by deleting an abandoned one.
func (s *Server) create(p *peer) {
	token := newToken()
	var code Code
	for range 8 { // with 40 random bits, a second try is already rare
		c, err := NewCode(s.rand)
		if err != nil {
			s.log.Error("signal: cannot make a room code", "err", err)
			s.sendError(p, ErrInternal)
			return
		}
		ctx, cancel := storeCtx()
		ok, evicted, err := s.store.Create(ctx, c, token, ipOf(p.remote), s.now())
		cancel()
		switch {
		case errors.Is(err, ErrServerFull):
			s.log.Debug("signal: room cap reached, none abandoned; refusing a room")
			s.sendError(p, errorf(ErrServerFull,
				"the rendezvous server has its most rooms (%d) open: try again in a few minutes", s.limits.Rooms))
			return
		case errors.Is(err, ErrTooManyRooms):
			s.log.Debug("signal: an address's room cap reached; refusing a room", "remote", p.remote)
			s.sendError(p, errorf(ErrTooManyRooms,
				"your address already has %d rooms open, the most one may: leave one before you create another", s.limits.RoomsPerAddress))
			return
		case err != nil:
			s.log.Error("signal: cannot create a room", "err", err)
			s.sendError(p, ErrInternal)
			return
		}
		if evicted {
			s.metrics.evicted.Inc()
		}
		if ok {
			code = c
			break
		}
	}
	if code == "" {
		s.log.Error("signal: no free room code found; is Rand random?")
		s.sendError(p, ErrInternal)
		return
	}
	if err := s.take(p, Seat{Room: code, Role: Host, Token: token}, false); err != nil {
		s.log.Error("signal: cannot attach a seat", "err", err)
	}
	s.log.Debug("signal: room created", "room", code, "remote", p.remote)
	s.send(p, Message{Type: TypeCreated, Room: code.String(), Token: token})
}

func (s *Server) join(p *peer, room string) {
	code, err := ParseCode(room)
	if err != nil { // Decode has checked it
		s.sendError(p, errorf(ErrBadMessage, "%s is not a room code", quote(room)))
		return
	}
	token := newToken()
	ctx, cancel := storeCtx()
	err = s.store.Join(ctx, code, token, s.now())
	cancel()
	switch {
	case errors.Is(err, ErrRoomNotFound):
		s.sendError(p, errorf(ErrRoomNotFound, "room %s not found: check the code with the host", code))
	case errors.Is(err, ErrRoomExpired):
		s.log.Debug("signal: room expired", "room", code)
		s.publish(envExpired, Host, code, Message{Type: TypeError, Error: errorf(ErrRoomExpired,
			"room %s has expired because no one joined it: create a new room", code)})
		s.sendError(p, errorf(ErrRoomExpired, "room %s has expired: ask the host for a new code", code))
	case errors.Is(err, ErrRoomFull):
		s.sendError(p, errorf(ErrRoomFull, "room %s is full: a duet has two singers", code))
	case err != nil:
		s.log.Error("signal: cannot join a room", "err", err)
		s.sendError(p, ErrInternal)
	default:
		seat := Seat{Room: code, Role: Guest, Token: token}
		if err := s.take(p, seat, true); err != nil {
			s.log.Error("signal: cannot attach a seat", "err", err)
		}
		s.log.Debug("signal: guest joined", "room", code, "remote", p.remote)
		s.send(p, Message{Type: TypeJoined, Room: code.String(), Token: token, ICEServers: s.grantICE(p, seat)})
		s.publish(envJoined, Host, code, Message{Type: TypePeerJoined, Room: code.String()})
	}
}

// resume gives p back the seat that token holds in room.
func (s *Server) resume(p *peer, room, token string) {
	code, err := ParseCode(room)
	if err != nil { // Decode has checked it
		s.sendError(p, errorf(ErrBadMessage, "%s is not a room code", quote(room)))
		return
	}
	ctx, cancel := storeCtx()
	role, partner, err := s.store.Resume(ctx, code, token, s.now())
	cancel()
	switch {
	case errors.Is(err, ErrRoomNotFound):
		s.sendError(p, errorf(ErrRoomNotFound,
			"room %s has no seat for you any more: it expired or your seat was given up", code))
		return
	case err != nil:
		s.log.Error("signal: cannot resume a seat", "err", err)
		s.sendError(p, ErrInternal)
		return
	}
	seat := Seat{Room: code, Role: role, Token: token}
	if err := s.take(p, seat, partner); err != nil {
		s.log.Error("signal: cannot attach a seat", "err", err)
	}
	// A socket of another server that still holds the seat lets go.
	ctx, cancel = storeCtx()
	s.store.Publish(ctx, role, code, envelope(envKick, []byte(p.id)))
	cancel()
	s.log.Debug("signal: seat resumed", "room", code, "role", role, "remote", p.remote)
	var ice []ICEServer
	if partner {
		ice = s.resumeICE(p, seat)
	}
	s.send(p, Message{Type: TypeResumed, Room: code.String(), Token: token, Role: role.String(), Partner: partner,
		ICEServers: ice})
}

// hear notes that something came from p's client now.
func (s *Server) hear(p *peer) { p.heard.Store(int64(time.Since(s.epoch))) }

// clientAddr returns the address of r's client: its remote address or,
// when that is a trusted proxy, the right-most address of X-Forwarded-For
// that is not (see ServerConfig.TrustedProxies).
func (s *Server) clientAddr(r *http.Request) string {
	if len(s.trusted) == 0 {
		return r.RemoteAddr
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !s.isTrusted(peer.Addr()) {
		return r.RemoteAddr
	}
	client := r.RemoteAddr
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // not written by a proxy we trust: keep the last good hop
		}
		client = ip.Unmap().String()
		if !s.isTrusted(ip) {
			break
		}
	}
	return client
}

func (s *Server) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range s.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// relay hands env (a message after a spare byte) to p's partner.
func (s *Server) relay(p *peer, t Type, env []byte) {
	s.mu.Lock()
	var seat Seat
	in, partner := p.seat != nil, p.partner
	if in {
		seat = *p.seat
	}
	s.mu.Unlock()
	switch {
	case !in:
		s.sendError(p, errorf(ErrNotInRoom, "you are not in a room yet: create or join one before sending %s", t))
		return
	case !partner:
		s.sendError(p, errorf(ErrNotInRoom,
			"there is no partner in room %s yet: wait for the other singer to join", seat.Room))
		return
	}
	// No deadline of its own on this path, which every offer, answer and
	// candidate takes (a timer each): the memory store does not wait, and
	// the Redis client's own timeouts bound a publish.
	env[0] = envRelay
	ok, err := s.store.Publish(context.Background(), seat.Role.other(), seat.Room, env)
	switch {
	case err != nil:
		s.log.Error("signal: cannot relay", "err", err)
		s.sendError(p, ErrInternal)
	case !ok:
		s.sendError(p, errorf(ErrPeerAway,
			"your partner in room %s is reconnecting to the rendezvous server: the %s was not delivered", seat.Room, t))
	default:
		s.metrics.relayed.Add(float64(len(env) - 1))
	}
}

// sockets returns the number of open sockets.
func (s *Server) sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// leave gives up p's seat, if it has one, and tells the partner: a leaving
// host deletes the room, a leaving guest opens it for a new guest. It
// reports whether p had a seat.
func (s *Server) leave(p *peer) bool {
	seat := s.release(p, nil)
	if seat == nil {
		return false
	}
	ctx, cancel := storeCtx()
	err := s.store.Leave(ctx, *seat, s.now())
	cancel()
	if err != nil {
		s.log.Error("signal: cannot leave a room", "err", err)
	}
	s.releaseICE(*seat)
	s.publish(envLeft, seat.Role.other(), seat.Room, Message{Type: TypePeerLeft, Room: seat.Room.String()})
	if seat.Role == Host {
		s.log.Debug("signal: host left, room deleted", "room", seat.Room, "remote", p.remote)
	} else {
		s.log.Debug("signal: guest left", "room", seat.Room, "remote", p.remote)
	}
	return true
}

// expireLoop runs expireIdle every interval until Close.
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

// expireIdle marks the seats of this server's sockets seen, and acts on
// what the store found: rooms whose host waited RoomTTL expire, partners
// away longer than ResumeGrace have left.
func (s *Server) expireIdle() {
	// The time before the list: a seat whose socket drops after it is
	// marked away after it, which Tick leaves alone.
	now := s.now()
	s.mu.Lock()
	var peers []*peer
	var seats []Seat
	for _, p := range s.seats {
		peers = append(peers, p)
		seats = append(seats, *p.seat)
	}
	s.forgetIdleLocked()
	since := time.Since(s.epoch)
	for p := range s.peers {
		if w := p.writing.Load(); w != 0 && since-time.Duration(w) > writeTimeout {
			s.log.Debug("signal: a write is stuck; dropping the socket", "remote", p.remote)
			p.kill()
		}
	}
	s.mu.Unlock()

	ctx, cancel := storeCtx()
	st, err := s.store.Tick(ctx, seats, now)
	cancel()
	if err != nil {
		s.log.Error("signal: cannot mark seats seen", "err", err)
		return
	}
	for i, p := range peers {
		seat := &seats[i]
		left := Message{Type: TypePeerLeft, Room: seat.Room.String()}
		switch st[i] {
		case StatusExpired:
			if s.release(p, seat) == nil {
				continue
			}
			s.releaseICE(*seat)
			s.log.Debug("signal: room expired", "room", seat.Room, "remote", p.remote)
			s.sendError(p, errorf(ErrRoomExpired,
				"room %s has expired because no one joined it: create a new room", seat.Room))
			p.closeWith(websocket.StatusNormalClosure, "room expired")
		case StatusPartnerLeft:
			s.log.Debug("signal: partner did not come back", "room", seat.Room, "remote", p.remote)
			if seat.Role == Guest {
				if s.release(p, seat) == nil {
					continue
				}
				s.releaseICE(*seat)
			} else {
				s.mu.Lock()
				p.partner = false
				s.mu.Unlock()
			}
			s.send(p, left)
		case StatusGone:
			if s.release(p, seat) != nil {
				s.releaseICE(*seat)
				s.send(p, left)
			}
		}
	}
	// The partners of the seats above whose grace is over, and seats
	// that expired with no one there, had their sockets elsewhere.
	s.releaseAwayICE()
}
