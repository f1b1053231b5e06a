// Package lan is a duet on one local network with no server set up: the
// rendezvous server built into the app, announced on the network while a
// host's session uses it, and a guest's lookup of one.
//
// A host's app without a configured server starts a Server (the signaling
// server of net/signal/server, on DefaultListen: every interface, so the
// guest can reach it) on first use and keeps it until Close; Announce answers
// the network's DNS-SD queries for it (net/discover) until the returned
// Advertiser is closed, so that only a host that is hosting is found. A
// guest's app without one calls Look, which lists the servers that
// answered on the network, then this computer's own.
//
// No room code or name goes on the air, only that a Duet server listens on
// a port. Anyone on the network can announce one, so a guest who joins
// through an announced server should compare the safety code aloud
// (Candidate.Announced).
//
// A Server is safe for concurrent use. It serves on one goroutine of its
// own, which Close stops and waits for; if serving fails by itself, the
// next Start starts afresh. Errors are sentences for the singer.
package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/duetapp/duet/net/discover"
	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/signal/server"
)

// DefaultListen is the built-in server's address: every interface, on the
// port every Duet rendezvous server uses by default (3838, "DUET" on a
// phone keypad; net/rendezvous.DefaultListen).
const DefaultListen = ":3838"

// DefaultLook is how long Look listens for announcements when not told.
const DefaultLook = 1500 * time.Millisecond

// Config says where the built-in server listens and how it is announced
// and looked for.
type Config struct {
	// Listen is the built-in server's address (host:port; port 0 lets the
	// system choose); empty means DefaultListen. Look takes its port as
	// the one a host on this computer serves on.
	Listen string
	// Look is how long Look listens; 0 means DefaultLook.
	Look time.Duration
	// Discover says how to announce and where to look: the interface (nil:
	// every multicast one), the addresses announced (empty: this
	// computer's) and the instance's name. Its Port and Logger are set
	// from the server and from Logger.
	Discover discover.Config
	// Logger receives the server's and the lookup's log; nil discards it.
	Logger *slog.Logger
}

func (c Config) listen() string {
	if c.Listen == "" {
		return DefaultListen
	}
	return c.Listen
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Server is the rendezvous server built into a host's app. See the
// package doc.
type Server struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	stop context.CancelFunc // nil when not serving
	done chan struct{}      // closed when the serving goroutine has ended
	port int                // the port served on, valid while stop != nil
}

// NewServer returns a server that listens when first started.
func NewServer(cfg Config) *Server {
	return &Server{cfg: cfg, log: cfg.logger()}
}

// Start starts the server unless it is serving, and returns its URL on
// localhost, where the singer on this computer reaches it.
func (s *Server) Start() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop == nil {
		ln, err := net.Listen("tcp", s.cfg.listen())
		if err != nil {
			return "", fmt.Errorf("cannot start the built-in rendezvous server on %s (%v): set a server in the settings", s.cfg.listen(), err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		s.stop, s.done, s.port = stop, done, ln.Addr().(*net.TCPAddr).Port
		go s.serve(ctx, ln, done)
		s.log.Info("built-in rendezvous server started", "url", s.url())
	}
	return s.url(), nil
}

// serve runs the signaling server on ln until ctx ends or it fails.
func (s *Server) serve(ctx context.Context, ln net.Listener, done chan struct{}) {
	defer close(done)
	srv := server.New(server.Config{Logger: s.log})
	srv.Handle(guestpage.Prefix, guestpage.Handler()) // a partner without Duet joins from a browser
	err := server.Serve(ctx, ln, srv, nil)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("built-in rendezvous server stopped", "err", err)
	}
	s.mu.Lock()
	if s.done == done { // stopped by itself: start afresh next time
		s.stop()
		s.stop, s.done = nil, nil
	}
	s.mu.Unlock()
}

func (s *Server) url() string {
	return "http://" + net.JoinHostPort("localhost", strconv.Itoa(s.port))
}

// ErrNotServing reports an announcement of a server that is not serving.
var ErrNotServing = errors.New("the built-in rendezvous server is not running")

// Announce answers the local network's queries for the server, which must
// be serving, until the returned Advertiser is closed.
func (s *Server) Announce() (*discover.Advertiser, error) {
	s.mu.Lock()
	serving, port := s.stop != nil, s.port
	s.mu.Unlock()
	if !serving {
		return nil, ErrNotServing
	}
	d := s.cfg.Discover
	d.Port, d.Logger = port, s.log
	return discover.Advertise(d)
}

// Close stops the server and waits for it; safe to call more than once,
// and a later Start starts it afresh.
func (s *Server) Close() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// Candidate is a rendezvous server a guest may try.
type Candidate struct {
	// URL is its rendezvous URL, e.g. http://192.168.1.20:3838.
	URL string
	// Announced says it answered on the local network, where anyone can
	// announce one; false for this computer's own.
	Announced bool
}

// Look lists the rendezvous servers a guest without a configured one
// tries, in order: those announced on the local network within cfg.Look
// (or ctx's end, if sooner), then this computer's built-in one, on
// cfg.Listen's port, in case the host sings on this computer.
func Look(ctx context.Context, cfg Config) []Candidate {
	log := cfg.logger()
	wait := cfg.Look
	if wait <= 0 {
		wait = DefaultLook
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	d := cfg.Discover
	d.Logger = log
	found, err := discover.Browse(ctx, d)
	if err != nil {
		log.Info("no rendezvous server announced on the local network", "err", err)
	}
	var c []Candidate
	for _, f := range found {
		log.Info("found a rendezvous server on the local network", "name", f.Instance, "url", f.URL)
		c = append(c, Candidate{URL: f.URL, Announced: true})
	}
	if _, port, err := net.SplitHostPort(cfg.listen()); err == nil && port != "0" {
		c = append(c, Candidate{URL: "http://" + net.JoinHostPort("localhost", port)})
	}
	return c
}
