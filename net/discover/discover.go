// Package discover finds Duet's rendezvous server on the local network by
// DNS-SD over multicast DNS (RFC 6763 over RFC 6762), through
// github.com/hashicorp/mdns.
//
// The host's app, while it hosts on the rendezvous server built into it,
// advertises the service "_duet._tcp" with that server's port and this
// machine's addresses; a guest's app without a configured server browses
// for it, for as long as its context allows, and tries what it finds. No
// room code or name goes on the air: only that a Duet server listens on a
// port.
//
// An Advertiser answers queries from two goroutines of the library, which
// Close stops. Browse returns once its context's deadline (or
// DefaultBrowse) has passed.
package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/mdns"
)

// Service is the DNS-SD service type Duet's rendezvous server advertises.
const Service = "_duet._tcp"

// DefaultBrowse is how long Browse listens when its context has no
// deadline.
const DefaultBrowse = 2 * time.Second

// ErrNotFound reports that no Duet server answered on the local network.
var ErrNotFound = errors.New("found no Duet host on the local network: is your partner hosting on the same network? Otherwise, set the rendezvous server in the settings")

// Config says what to advertise and where.
type Config struct {
	// Port is the rendezvous server's TCP port.
	Port int
	// Instance names this server among others; empty means "Duet on"
	// and the host name.
	Instance string
	// Iface, if set, is the only interface to advertise and browse on;
	// nil means all multicast interfaces.
	Iface *net.Interface
	// IPs are the addresses to advertise; empty means the interface's
	// (or this machine's) non-loopback unicast addresses.
	IPs []net.IP
	// Logger receives the library's messages; nil discards them.
	Logger *slog.Logger
}

// Advertiser answers DNS-SD queries for a Duet server until Close.
type Advertiser struct {
	srv  *mdns.Server
	once sync.Once
}

// Advertise starts answering queries for "_duet._tcp" with cfg's port.
func Advertise(cfg Config) (*Advertiser, error) {
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("discover: port %d is not a port", cfg.Port)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "duet"
	}
	host = strings.TrimSuffix(strings.Split(host, ".")[0], ".")
	instance := cfg.Instance
	if instance == "" {
		instance = "Duet on " + host
	}
	ips := cfg.IPs
	if len(ips) == 0 {
		if ips, err = addresses(cfg.Iface); err != nil {
			return nil, err
		}
	}
	zone, err := mdns.NewMDNSService(instance, Service, "local.", host+".local.", cfg.Port, ips, []string{"v=1"})
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: zone, Iface: cfg.Iface, Logger: stdLogger(cfg.Logger)})
	if err != nil {
		return nil, fmt.Errorf("discover: cannot announce the session on the local network: %w", err)
	}
	return &Advertiser{srv: srv}, nil
}

// Close stops answering; safe to call more than once.
func (a *Advertiser) Close() error {
	var err error
	a.once.Do(func() { err = a.srv.Shutdown() })
	return err
}

// Found is a Duet server that answered.
type Found struct {
	// Instance is the name it advertises, e.g. "Duet on studio".
	Instance string
	// URL is its rendezvous URL, e.g. http://192.168.1.20:3838.
	URL string
}

// Browse asks the local network for Duet servers until ctx's deadline (or
// DefaultBrowse) and returns those that answered, each once; with none,
// it returns ErrNotFound.
func Browse(ctx context.Context, cfg Config) ([]Found, error) {
	timeout := DefaultBrowse
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, ErrNotFound
	}
	entries := make(chan *mdns.ServiceEntry, 64) // the library never blocks on it: it drops
	params := &mdns.QueryParam{
		Service:   Service,
		Domain:    "local",
		Timeout:   timeout,
		Interface: cfg.Iface,
		Entries:   entries,
		Logger:    stdLogger(cfg.Logger),
	}
	err := mdns.QueryContext(ctx, params)
	close(entries)
	var found []Found
	seen := map[string]bool{}
	for e := range entries {
		u := entryURL(e)
		if u == "" || seen[u] {
			continue
		}
		seen[u] = true
		found = append(found, Found{Instance: instanceName(e.Name), URL: u})
	}
	if len(found) > 0 {
		return found, nil
	}
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("discover: cannot ask the local network: %w", err)
	}
	return nil, ErrNotFound
}

// entryURL is the rendezvous URL of an answer, preferring IPv4.
func entryURL(e *mdns.ServiceEntry) string {
	port := strconv.Itoa(e.Port)
	switch {
	case e.Port == 0:
		return ""
	case e.AddrV4 != nil:
		return "http://" + net.JoinHostPort(e.AddrV4.String(), port)
	case e.AddrV6IPAddr != nil:
		return "http://" + net.JoinHostPort(e.AddrV6IPAddr.String(), port)
	}
	return ""
}

// instanceName is the instance part of "Duet on x._duet._tcp.local.",
// unescaped.
func instanceName(full string) string {
	name, _, _ := strings.Cut(full, "."+Service)
	return strings.ReplaceAll(name, `\ `, " ")
}

// addresses lists iface's (or, for nil, every up interface's) non-loopback
// unicast addresses, IPv4 first; loopback ones only if there are no
// others.
func addresses(iface *net.Interface) ([]net.IP, error) {
	ifaces := []net.Interface{}
	if iface != nil {
		ifaces = append(ifaces, *iface)
	} else {
		all, err := net.Interfaces()
		if err != nil {
			return nil, fmt.Errorf("discover: %w", err)
		}
		ifaces = all
	}
	var v4, v6, loop []net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsMulticast() {
				continue
			}
			switch {
			case ipn.IP.IsLoopback():
				loop = append(loop, ipn.IP)
			case ipn.IP.To4() != nil:
				v4 = append(v4, ipn.IP)
			default:
				v6 = append(v6, ipn.IP)
			}
		}
	}
	if ips := append(v4, v6...); len(ips) > 0 {
		return ips, nil
	}
	if len(loop) > 0 {
		return loop, nil
	}
	return nil, errors.New("discover: this computer has no network address to announce")
}

// stdLogger adapts l (nil: discard) to the library's *log.Logger, at
// debug level: its messages are about single packets.
func stdLogger(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(l.With("component", "mdns").Handler(), slog.LevelDebug)
}
