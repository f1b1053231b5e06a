// Package rendezvous runs Duet's rendezvous service as a command does: the
// signaling server (net/signal) on one TCP port and, when asked, the
// STUN/TURN relay (net/relay) on a UDP port, with the relay's short-lived
// credentials handed to every singer who creates or joins a room; with
// -redis, rooms are shared with other instances through Redis. Both
// "duet serve" and the pure-Go duet-server use it, with the same flags.
package rendezvous

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/relay"
	"github.com/duetapp/duet/net/signal"
)

// DefaultListen is the default address: port 3838 ("DUET" on a phone
// keypad) on every interface, since a server is there to be reached.
const DefaultListen = ":3838"

// Options are the service's settings, as flags.
type Options struct {
	Listen       string
	RoomTTL      time.Duration
	TURN         string
	PublicIP     string
	Secret       string
	RelayPrivate bool
	// TLSCert and TLSKey are PEM files: with them the server speaks
	// HTTPS and wss only.
	TLSCert, TLSKey string
	// Redis, if set, is the host:port (or redis:// URL) of a Redis that
	// several instances share rooms through; RedisPrefix starts its keys.
	// Without it, rooms are kept in this process's memory.
	Redis, RedisPrefix string
	// Limits, if set, replaces the default per-address and per-socket
	// limits (the lab's load test raises them; loopback is one address).
	Limits signal.Limits
}

// Register adds the options' flags to fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", DefaultListen, "`address` to listen on, host:port")
	fs.DurationVar(&o.RoomTTL, "room-ttl", time.Hour, "how long a host may wait for a guest before the room expires")
	fs.StringVar(&o.TURN, "turn", "", "also serve STUN and TURN on this UDP `address` (e.g. :3478), so singers behind NATs always connect")
	fs.StringVar(&o.PublicIP, "public-ip", "", "the `IP` clients reach this machine at, for TURN (default: its first non-loopback IPv4 address)")
	fs.StringVar(&o.Secret, "turn-secret", "", "shared `secret` for TURN credentials (coturn use-auth-secret compatible; default: random)")
	fs.BoolVar(&o.RelayPrivate, "relay-private", false, "let TURN relay to private and loopback addresses (a LAN, or testing)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "certificate `file` (PEM): serve HTTPS and wss only")
	fs.StringVar(&o.TLSKey, "tls-key", "", "private key `file` (PEM) of -tls-cert")
	fs.StringVar(&o.Redis, "redis", "", "share rooms with other instances through the Redis at this `address` (host:port or redis://…); default: rooms in memory")
	fs.StringVar(&o.RedisPrefix, "redis-prefix", "duet:", "`prefix` of this deployment's Redis keys and channels")
}

// store returns the Redis store of -redis, checked to answer, or nil for
// the default in memory.
func (o Options) store(ctx context.Context, log *slog.Logger) (signal.Store, error) {
	if o.Redis == "" {
		return nil, nil
	}
	var opt *redis.Options
	if strings.Contains(o.Redis, "://") {
		var err error
		if opt, err = redis.ParseURL(o.Redis); err != nil {
			return nil, fmt.Errorf("-redis %q: %w", o.Redis, err)
		}
	} else {
		opt = &redis.Options{Addr: o.Redis}
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %w", o.Redis, err)
	}
	return signal.NewRedisStore(rdb, o.RedisPrefix, log), nil
}

// Run serves until ctx is done. It prints the URL clients use on a line of
// its own to stdout once it listens.
func (o Options) Run(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
	var tc *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	cfg := signal.ServerConfig{Logger: log, RoomTTL: o.RoomTTL, Limits: o.Limits}
	store, err := o.store(ctx, log)
	if err != nil {
		return err
	}
	if store != nil {
		cfg.Store = store
		defer store.Close() // if the server never starts; closing twice is fine
	}
	if o.TURN != "" {
		ip, err := publicIP(o.PublicIP)
		if err != nil {
			return err
		}
		r, err := relay.Listen(relay.Config{Listen: o.TURN, PublicIP: ip, Secret: o.Secret, AllowPrivate: o.RelayPrivate, Logger: log})
		if err != nil {
			return err
		}
		defer r.Close()
		cfg.ICEServers = func(string) []signal.ICEServer {
			c, err := r.Credentials(relay.DefaultCredentialLife)
			if err != nil {
				log.Error("cannot make TURN credentials", "err", err)
				return nil
			}
			return []signal.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
	}
	fmt.Fprintln(stdout, signal.URL(ln.Addr(), tc != nil))
	if err := signal.Serve(ctx, ln, signal.NewServer(cfg), tc); err != nil {
		return fmt.Errorf("rendezvous server: %w", err)
	}
	return nil
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
