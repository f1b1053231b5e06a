// Package server is Duet's rendezvous server: the service of the protocol
// in net/signal, through which two singers find each other and set up
// their duet. It keeps rooms in a store (net/signal/store: in memory by
// default; net/signal/store/redisstore to share them between instances)
// and counts what it does through [Metrics] (net/signal/server/prommetrics
// for Prometheus), so that a binary links Redis and Prometheus only if it
// offers them.
//
// # Rooms and seats
//
// A server relays offer, answer and candidate messages from one
// participant of a room to the other byte for byte. A server with a relay
// hands each singer its ICE servers ([Config].ICEServers) once there is a
// partner, and releases them when the seat is given up
// ([Config].ReleaseICE). A room whose host has waited [Config].RoomTTL
// without a guest expires. A socket that drops without bye and without a
// close handshake keeps its seat: while the partner is there, for
// [Config].ResumeGrace, after which the partner is told peer-left; a host
// alone in its room, for the grace too, after which the room is deleted;
// when both have dropped, as long as the room lives (RoomTTL since anyone
// was last seen). On shutdown, sockets are closed with 1001 (going away)
// and seats are kept: with a Redis store the rooms survive a restart (or
// move to another instance), in memory they do not.
//
// # Limits
//
// A server holds at most [Limits].Rooms rooms, and
// [Limits].RoomsPerAddress from one address; past either, a create takes
// the place of an abandoned room (no socket in either seat: see
// store.Store), and gets ErrServerFull or ErrTooManyRooms only if there is
// none. It queues at most 2×[Limits].MessageBurst+16 messages (1 MiB) for
// each client and drops a client that does not keep up, keeping its seat
// for a resume (see [Server]). It holds at most [Limits].Sockets sockets,
// [Limits].SocketsPerAddress from one address (refusing more before the
// upgrade with 503 and 429), and drops a socket that answers no ping for
// [Config].PingTimeout (a minute), keeping its seat. Behind a reverse
// proxy, list it in [Config].TrustedProxies so that limits go by each
// client's address. Serve the handler with [NewHTTPServer] (as [Serve]
// does) for HTTP timeouts.
//
// # Concurrency
//
// A [Server] is an [http.Handler] safe for concurrent use; it runs one
// reading and one writing goroutine per socket and one expiry goroutine,
// all stopped by [Server.Close].
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store"
)

const (
	// readLimit is the websocket library's own limit on a message. It is a
	// little above MaxMessageSize so that readLoop, not the library, finds
	// an oversize message and can reply ErrTooLarge before closing.
	readLimit = signal.MaxMessageSize + 1<<10

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

	// storeTimeout bounds one operation of the Store.
	storeTimeout = 5 * time.Second
)

// Config configures a Server. The zero value is ready to use.
type Config struct {
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
	// Store keeps the rooms; nil means one in memory (store.NewMemory).
	// With a Redis store (redisstore) several servers share rooms. The
	// server closes it.
	Store store.Store
	// ICEServers, if set, gives the STUN and TURN servers (with fresh
	// credentials) to hand a client, named by its remote address, once it
	// has a partner: a guest with joined, a host with peer-joined (each
	// new guest, a new set), either with resumed when its partner is there
	// (the set it had, if this server handed it out).
	ICEServers func(remote string) []signal.ICEServer
	// ReleaseICE, if set, is called with a set ICEServers returned when it
	// is done with: its seat was given up for good (bye, a closed socket,
	// the room's expiry or deletion, or a dropped socket's grace over),
	// or the host was handed a new set for a new guest. A relay revokes
	// the credentials there. A seat that resumes on another server (with
	// a Redis store) is handed a new set there; the old one is left to
	// expire.
	ReleaseICE func([]signal.ICEServer)
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
	// Metrics, if set, counts what the server does (prommetrics for
	// Prometheus); nil counts nothing.
	Metrics Metrics
}

// Server is the rendezvous server, an http.Handler serving:
//
//	GET /ws       the signaling WebSocket (see package signal)
//	GET /healthz  200 "ok", or 503 when the store fails
//
// what Handle adds (duet-server's /metrics), and 404 for anything else.
// It is safe for concurrent use.
//
// Its log names room codes and client addresses at Debug only (a code in
// a log lets its reader join the room); abuse (rate limits, caps) is
// counted in the Metrics, not logged above Debug, so that it cannot flood
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
	store store.Store

	done chan struct{}  // closed by Close; stops the expiry goroutine
	wg   sync.WaitGroup // every goroutine the server runs or waits for

	limits      Limits
	attempts    *attempts  // joins and creates per address
	ice         *iceLedger // the ICE servers handed out
	metrics     Metrics    // never nil
	pingTimeout time.Duration
	trusted     []netip.Prefix
	maxQueue    int            // messages queued for a client before it is dropped
	epoch       time.Time      // of the monotonic times in client.heard
	routes      *http.ServeMux // what Handle adds

	closed2  chan struct{} // closed when Close is done
	closeErr error         // of the store; read after closed2

	scratch sync.Pool // of *bytes.Buffer, for readMessage

	mu      sync.Mutex
	closed  bool
	seats   map[seatKey]*client // the seats whose sockets this server holds
	clients map[*client]struct{}
	open    int            // sockets open or being opened
	openBy  map[string]int // open, by IP (ipOf)
}

// New returns a server configured by cfg. It starts a goroutine that
// expires idle rooms; call Close to stop it.
func New(cfg Config) *Server {
	s := &Server{
		log:         cfg.Logger,
		ttl:         cfg.RoomTTL,
		now:         cfg.Now,
		rand:        cfg.Rand,
		done:        make(chan struct{}),
		closed2:     make(chan struct{}),
		grace:       cfg.ResumeGrace,
		store:       cfg.Store,
		seats:       make(map[seatKey]*client),
		clients:     make(map[*client]struct{}),
		limits:      cfg.Limits.withDefaults(),
		ice:         newICELedger(cfg.ICEServers, cfg.ReleaseICE),
		metrics:     cfg.Metrics,
		pingTimeout: cfg.PingTimeout,
		trusted:     cfg.TrustedProxies,
		epoch:       time.Now(),
		routes:      http.NewServeMux(),
		openBy:      make(map[string]int),
	}
	s.attempts = newAttempts(s.limits)
	s.maxQueue = 2*s.limits.MessageBurst + queueSlack
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
		s.store = store.NewMemory()
	}
	if s.metrics == nil {
		s.metrics = noMetrics{}
	}
	// Expire rooms within a tenth of the TTL and mark seats seen four
	// times per grace, checking at most once a second.
	interval := min(max(min(s.ttl/10, s.grace/4), time.Second), time.Minute)
	s.store.Bind(store.Config{TTL: s.ttl, Grace: s.grace, Abandon: s.grace + interval,
		Rooms: s.limits.Rooms, RoomsPerAddress: s.limits.RoomsPerAddress}, s.deliver)
	s.wg.Go(func() { every(interval, s.done, s.expireIdle) })
	return s
}

// seatKey names a seat in Server.seats.
type seatKey struct {
	role signal.Role
	room signal.Code
}

func keyOf(seat signal.Seat) seatKey { return seatKey{seat.Role, seat.Room} }

// newToken returns a resume token: 128 bits from crypto/rand, whatever
// Config.Rand is, in 26 symbols of base32.
func newToken() string { return rand.Text() }

// Rooms returns the number of open rooms (of every server sharing the
// store; with Redis, a count up to two seconds old plus the rooms created
// here since), or -1 if the store fails.
func (s *Server) Rooms() int {
	ctx, cancel := storeCtx()
	defer cancel()
	n, err := s.store.Rooms(ctx)
	if err != nil {
		s.log.Error("signal: cannot count rooms", "err", err)
		return -1
	}
	return n
}

// Sockets returns the number of open sockets: admitted and not yet let
// go, as the caps count them (a socket leaves its room a moment before its
// handler returns; counting the rooms' clients, TestSocketCaps once saw a
// place free that the caps did not).
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
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
		for c := range s.clients {
			c.closeWith(websocket.StatusGoingAway, reasonShutdown)
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

// Handle serves h at pattern (as http.ServeMux.Handle does) beside /ws and
// /healthz, behind the same refusal of request bodies: duet-server's
// /metrics. It is safe to call while the server serves.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.routes.Handle(pattern, h)
}

// ServeHTTP serves /ws, /healthz, what Handle added, and 404. A request
// with a body gets 413 and its connection is closed: no endpoint takes
// one, and one that dribbles in would hold the connection.
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
		s.routes.ServeHTTP(w, r)
	}
}
