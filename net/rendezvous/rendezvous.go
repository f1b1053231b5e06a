// Package rendezvous runs Duet's rendezvous service as a command does: the
// signaling server (net/signal/server) on one TCP port and, when asked,
// the STUN/TURN relay (net/relay) on a UDP port, with the relay's
// short-lived credentials handed to every singer who creates or joins a
// room, and the guest page (net/guestpage) at /j/CODE, for a guest who
// joins from a web browser. Both "duet serve" and the pure-Go duet-server
// use it, with the same flags. What only a server binary offers comes in
// [Extras]: rooms shared with other instances through Redis (-redis) and
// Prometheus figures (/metrics); duet-server gives both, while "duet
// serve", in the desktop app's binary, keeps rooms in memory, serves no
// /metrics, and links neither.
//
// Budgets: the signaling server holds at most -max-sockets WebSockets and
// the relay at most -turn-allocations allocations, each one file
// descriptor; Run warns when the process's descriptor limit does not
// cover both.
package rendezvous

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/relay"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
	"github.com/duetapp/duet/net/signal/store"
)

// DefaultListen is the default address: port 3838 ("DUET" on a phone
// keypad) on every interface, since a server is there to be reached.
const DefaultListen = ":3838"

// Environment variables that FromEnv reads: secrets kept off the command
// line, where every user of the machine can read them (ps).
const (
	EnvTURNSecret   = "DUET_TURN_SECRET"
	EnvMetricsToken = "DUET_METRICS_TOKEN"
)

// Extras are the parts of the service that only a server binary links
// (cmd/duet-server). Without one, its flags are refused with an error that
// says so.
type Extras struct {
	// OpenRedis returns a store in the Redis at addr (host:port or a
	// redis:// URL), with its keys under prefix, checked to answer
	// (redisstore.Open): -redis.
	OpenRedis func(ctx context.Context, addr, prefix string) (store.Store, error)
	// Metrics counts what the server does and serves the figures
	// (prommetrics): /metrics, -metrics-listen, -metrics-token.
	Metrics Metrics
}

// Metrics are a server's figures: a server.Metrics that also serves them.
type Metrics interface {
	server.Metrics
	// Handler serves the figures of srv, asking for token as a bearer
	// token if it is set.
	Handler(srv *server.Server, token string) http.Handler
}

// onlyServer is the error of a flag that needs what o.Extras lacks.
func onlyServer(flag string) error {
	return fmt.Errorf("%s is duet-server's (go run ./cmd/duet-server): duet serve keeps rooms in this process and serves no /metrics", flag)
}

// Options are the service's settings, as flags.
type Options struct {
	// Extras are what the binary adds; set them before Register.
	Extras Extras

	Listen   string
	RoomTTL  time.Duration
	TURN     string
	PublicIP string
	// Secret is the TURN secret itself; SecretFile a file holding it (one
	// of the two, or neither for a random one).
	Secret, SecretFile string
	RelayPrivate       bool
	// TURNAllocations and TURNPerCredential cap the relay's allocations
	// (0: relay's defaults); CredentialLife is how long a seat's TURN
	// credential lasts (0: relay.DefaultCredentialLife).
	TURNAllocations, TURNPerCredential int
	CredentialLife                     time.Duration
	// TLSCert and TLSKey are PEM files: with them the server speaks
	// HTTPS and wss only.
	TLSCert, TLSKey string
	// Redis, if set, is the host:port (or redis:// URL) of a Redis that
	// several instances share rooms through; RedisPrefix starts its keys.
	// Without it, rooms are kept in this process's memory. It needs
	// Extras.OpenRedis.
	Redis, RedisPrefix string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (server.Config.TrustedProxies).
	TrustedProxies []netip.Prefix
	// MetricsListen, if set, is the address /metrics is served on (plain
	// HTTP), instead of on Listen. MetricsToken, if set, is the bearer
	// token /metrics asks for. Both need Extras.Metrics, without which
	// there is no /metrics.
	MetricsListen, MetricsToken string
	// Limits, if set, replaces the default per-address and per-socket
	// limits and caps (the lab's load test raises them; loopback is one
	// address). The -max-* flags set its caps.
	Limits server.Limits
}

// Register adds the options' flags to fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", DefaultListen, "`address` to listen on, host:port")
	fs.DurationVar(&o.RoomTTL, "room-ttl", time.Hour, "how long a host may wait for a guest before the room expires")
	fs.StringVar(&o.TURN, "turn", "", "also serve STUN and TURN on this UDP `address` (e.g. :3478), so singers behind NATs always connect; relayed traffic uses its IP, or -public-ip")
	fs.StringVar(&o.PublicIP, "public-ip", "", "the `IP` clients reach this machine at, for TURN (default: its first non-loopback IPv4 address)")
	fs.StringVar(&o.Secret, "turn-secret", "", "shared `secret` for TURN credentials (coturn use-auth-secret compatible; default: random); other users of this machine can read it (ps): prefer -turn-secret-file or $"+EnvTURNSecret)
	fs.StringVar(&o.SecretFile, "turn-secret-file", "", "read the TURN secret from this `file`")
	fs.BoolVar(&o.RelayPrivate, "relay-private", false, "let TURN relay to private and loopback addresses (a LAN, or testing)")
	fs.IntVar(&o.TURNAllocations, "turn-allocations", relay.DefaultMaxAllocations, "most TURN allocations at once, each a UDP socket: the relay's descriptor budget")
	fs.IntVar(&o.TURNPerCredential, "turn-allocations-per-credential", relay.DefaultAllocationsPerCredential, "most TURN allocations one singer's credential holds at once")
	fs.DurationVar(&o.CredentialLife, "turn-credential-life", relay.DefaultCredentialLife, "how long a singer's TURN credential lasts (revoked when the seat is given up); a relayed duet ends at most 10 minutes after it")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "certificate `file` (PEM): serve HTTPS and wss only")
	fs.StringVar(&o.TLSKey, "tls-key", "", "private key `file` (PEM) of -tls-cert")
	redis, metrics := "", ""
	if o.Extras.OpenRedis == nil {
		redis = " (duet-server only)"
	}
	if o.Extras.Metrics == nil {
		metrics = " (duet-server only)"
	}
	fs.StringVar(&o.Redis, "redis", "", "share rooms with other instances through the Redis at this `address` (host:port or redis://…); default: rooms in memory"+redis)
	fs.StringVar(&o.RedisPrefix, "redis-prefix", "duet:", "`prefix` of this deployment's Redis keys and channels"+redis)
	fs.Func("trusted-proxy", "believe X-Forwarded-For from this reverse proxy (an IP or a `CIDR`; repeatable), so limits go by each client's address", func(s string) error {
		p, err := parsePrefix(s)
		if err == nil {
			o.TrustedProxies = append(o.TrustedProxies, p)
		}
		return err
	})
	fs.StringVar(&o.MetricsListen, "metrics-listen", "", "serve /metrics on this `address` (plain HTTP; e.g. 127.0.0.1:9100) instead of on -listen"+metrics)
	fs.StringVar(&o.MetricsToken, "metrics-token", "", "the bearer `token` /metrics asks for (default: $"+EnvMetricsToken+"; none: anyone may read it)"+metrics)
	fs.IntVar(&o.Limits.Sockets, "max-sockets", 30_000, "most WebSockets open at once, each a file descriptor")
	fs.IntVar(&o.Limits.SocketsPerAddress, "max-sockets-per-address", 64, "most WebSockets open at once from one address (an IPv6 /64)")
	fs.IntVar(&o.Limits.Rooms, "max-rooms", 20_000, "most rooms open at once (with -redis, in all instances)")
	fs.IntVar(&o.Limits.RoomsPerAddress, "max-rooms-per-address", 3, "most rooms one address (an IPv6 /64) may hold; raise it behind a shared NAT")
}

// FromEnv takes the secrets not given by flags from the environment
// (getenv is os.Getenv): the TURN secret from $DUET_TURN_SECRET, the
// metrics token (with Extras.Metrics) from $DUET_METRICS_TOKEN.
func (o *Options) FromEnv(getenv func(string) string) {
	if o.Secret == "" && o.SecretFile == "" {
		o.Secret = getenv(EnvTURNSecret)
	}
	if o.MetricsToken == "" && o.Extras.Metrics != nil {
		o.MetricsToken = getenv(EnvMetricsToken)
	}
}

// parsePrefix parses a CIDR, or an IP as the prefix of that one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("not an IP or CIDR: %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP or CIDR: %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// turnSecret is the TURN secret of -turn-secret or -turn-secret-file.
func (o Options) turnSecret(log *slog.Logger) (string, error) {
	if o.SecretFile == "" {
		return o.Secret, nil
	}
	if o.Secret != "" {
		return "", errors.New("give -turn-secret or -turn-secret-file, not both")
	}
	b, err := os.ReadFile(o.SecretFile)
	if err != nil {
		return "", fmt.Errorf("-turn-secret-file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("-turn-secret-file %s is empty", o.SecretFile)
	}
	if fi, err := os.Stat(o.SecretFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the TURN secret file can be read by other users", "file", o.SecretFile, "mode", fi.Mode().Perm())
	}
	return secret, nil
}

// extras checks that o asks only for what o.Extras has.
func (o Options) extras() error {
	switch {
	case o.Redis != "" && o.Extras.OpenRedis == nil:
		return onlyServer("-redis")
	case o.MetricsListen != "" && o.Extras.Metrics == nil:
		return onlyServer("-metrics-listen")
	case o.MetricsToken != "" && o.Extras.Metrics == nil:
		return onlyServer("-metrics-token")
	}
	return nil
}

// Run serves until ctx is done. It prints the URL clients use on a line of
// its own to stdout once it listens.
func (o Options) Run(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
	if err := o.extras(); err != nil {
		return err
	}
	var tc *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	cfg := server.Config{
		Logger: log, RoomTTL: o.RoomTTL, Limits: o.Limits, TrustedProxies: o.TrustedProxies,
		Metrics: o.Extras.Metrics,
	}
	if o.Redis != "" {
		st, err := o.Extras.OpenRedis(ctx, o.Redis, o.RedisPrefix)
		if err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
		cfg.Store = st
		defer st.Close() // if the server never starts; closing twice is fine
	}
	allocations := 0
	if o.TURN != "" {
		r, err := o.relay(log)
		if err != nil {
			return err
		}
		defer r.Close()
		allocations = o.TURNAllocations
		if allocations <= 0 {
			allocations = relay.DefaultMaxAllocations
		}
		o.handOut(&cfg, r, log)
	}
	if o.Limits.Sockets > 0 {
		// Both caps, plus a margin for listeners, Redis and the log.
		checkDescriptors(log, o.Limits.Sockets+allocations+64)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
	}
	var mln net.Listener
	if o.MetricsListen != "" {
		if mln, err = net.Listen("tcp", o.MetricsListen); err != nil {
			ln.Close()
			return fmt.Errorf("cannot listen on %s for /metrics: %w", o.MetricsListen, err)
		}
	}
	srv := server.New(cfg)
	srv.Handle(guestpage.Prefix, guestpage.Handler()) // the guest in a browser: /j/CODE
	fmt.Fprintln(stdout, server.URL(ln.Addr(), tc != nil))
	if o.Extras.Metrics != nil {
		figures := o.Extras.Metrics.Handler(srv, o.MetricsToken)
		if mln != nil {
			return serveWithMetrics(ctx, ln, mln, srv, figures, tc, log)
		}
		srv.Handle("/metrics", figures)
	}
	if err := server.Serve(ctx, ln, srv, tc); err != nil {
		return fmt.Errorf("rendezvous server: %w", err)
	}
	return nil
}

// serveWithMetrics serves srv on ln as server.Serve does and figures at
// /metrics on mln, until ctx is done or either fails.
func serveWithMetrics(ctx context.Context, ln, mln net.Listener, srv *server.Server, figures http.Handler, tc *tls.Config, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle("/metrics", figures)
	ms := server.NewHTTPServer(mux)
	metricsDone := make(chan error, 1)
	go func() {
		err := ms.Serve(mln)
		cancel() // a failed metrics listener stops the service: its operator would be blind
		metricsDone <- err
	}()
	log.Info("serving /metrics", "addr", mln.Addr().String())
	err := server.Serve(ctx, ln, srv, tc)
	if err != nil {
		err = fmt.Errorf("rendezvous server: %w", err)
	}
	ms.Close() // scrapes are short; nothing to drain
	if merr := <-metricsDone; !errors.Is(merr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("metrics server: %w", merr))
	}
	return err
}

// handOut has the server hand out credentials of r, revoked when their
// seat is given up.
func (o Options) handOut(cfg *server.Config, r *relay.Server, log *slog.Logger) {
	life := o.CredentialLife
	if life <= 0 {
		life = relay.DefaultCredentialLife
	}
	cfg.ICEServers = func(string) []signal.ICEServer {
		c, err := r.Credentials(life)
		if err != nil {
			log.Error("cannot make TURN credentials", "err", err)
			return nil
		}
		return []signal.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}
	}
	cfg.ReleaseICE = func(servers []signal.ICEServer) {
		for _, s := range servers {
			r.Revoke(s.Username)
		}
	}
}

// relay starts the TURN relay of -turn.
func (o Options) relay(log *slog.Logger) (*relay.Server, error) {
	ip, err := publicIP(o.PublicIP)
	if err != nil {
		return nil, err
	}
	secret, err := o.turnSecret(log)
	if err != nil {
		return nil, err
	}
	r, err := relay.Listen(relay.Config{
		Listen: o.TURN, PublicIP: ip, Secret: secret, AllowPrivate: o.RelayPrivate,
		MaxAllocations: o.TURNAllocations, AllocationsPerCredential: o.TURNPerCredential, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("-turn %s: %w", o.TURN, err)
	}
	return r, nil
}

// publicIP parses ip, or without one picks this machine's first
// non-loopback IPv4 address.
func publicIP(ip string) (net.IP, error) {
	if ip != "" {
		p := net.ParseIP(ip)
		if p == nil {
			return nil, fmt.Errorf("-public-ip %q is not an IP address", ip)
		}
		return p, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("cannot list this machine's addresses: %w (give -public-ip)", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP, nil
		}
	}
	return nil, fmt.Errorf("this machine has no IPv4 address besides loopback: give -public-ip")
}
