// Package relay is Duet's embedded STUN and TURN server (pion/turn v5), so
// that two singers behind NATs and firewalls always connect: directly when
// they can, through the relay when they cannot.
//
// Credentials are short-lived, in the TURN REST scheme (the user name is
// "expiry:id", expiry in Unix seconds, and the password an HMAC-SHA1 of the
// user name under a shared secret): the format of coturn's
// use-auth-secret, so a deployment can swap in coturn with the same
// secret. The rendezvous server hands them out when a singer creates or
// joins a room, and revokes them (Revoke) when the seat is given up.
//
// Every request of TURN (allocate, refresh, permission, channel bind) is
// authenticated, so an allocation outlives its credential by at most its
// own lifetime (10 minutes, the lifetime pion grants): a credential must
// last the whole duet (see DefaultCredentialLife).
//
// # Budget
//
// Each allocation holds one UDP socket (a file descriptor) on the relay's
// IP. Config.MaxAllocations caps them all and Config.AllocationsPerCredential
// those of one credential (a duet needs one or two per singer); beyond
// either the relay answers 486 (Allocation Quota Reached). The cap is the
// relay's descriptor budget, separate from the signalling server's caps on
// sockets: a flood of allocations cannot take the descriptors signalling
// needs. Only UDP relays are offered (no TCP allocations, RFC 6062).
//
// By default the relay refuses to forward to loopback, private, link-local
// and unspecified addresses, so it cannot be used to reach into the
// network it runs in; a LAN or a test allows them explicitly.
//
// A Server is safe for concurrent use.
package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // the TURN REST scheme (and coturn) use HMAC-SHA1
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/turn/v5"

	"github.com/duetapp/duet/net/pionlog"
)

// Defaults of Config's caps.
const (
	// DefaultMaxAllocations is the relay's descriptor budget: 1,000 duets
	// relayed at once.
	DefaultMaxAllocations = 2000
	// DefaultAllocationsPerCredential leaves room for a reconnect (a new
	// allocation while the old one times out) on top of the one a peer
	// connection uses.
	DefaultAllocationsPerCredential = 8
)

// DefaultCredentialLife is how long the credentials of a seat last. Every
// TURN request needs a credential that has not expired, refreshes
// included, so a relayed duet ends at most ten minutes after its
// credential does; Duet's peers do not fetch new ones mid-session, so the
// life covers a long rehearsal. A seat's credential is revoked when the
// seat is given up, so the life only bounds one whose release never comes
// (the server restarted, say), and the quota bounds what it can hold.
const DefaultCredentialLife = 4 * time.Hour

// ErrTCPRelay refuses TCP allocations (RFC 6062): Duet relays UDP only.
var ErrTCPRelay = errors.New("relay: TCP relays are not offered")

// Config describes a relay.
type Config struct {
	// Listen is the UDP address to serve STUN and TURN on, e.g. ":3478".
	// Relayed sockets are bound to its IP, or to PublicIP when it names
	// none; behind a NAT (PublicIP not on this machine) give the local
	// address the NAT forwards to.
	Listen string
	// PublicIP is the address clients reach the relay at; relayed traffic
	// is allocated on it.
	PublicIP net.IP
	// Secret is the shared secret of the credentials; empty means a random
	// one (credentials then last only as long as this process).
	Secret string
	// Realm names the relay in TURN's authentication; empty means "duet".
	Realm string
	// AllowPrivate lets the relay forward to private and loopback
	// addresses: a LAN, or tests.
	AllowPrivate bool
	// MaxAllocations caps the allocations open at once (each one UDP
	// socket); zero or less means DefaultMaxAllocations.
	MaxAllocations int
	// AllocationsPerCredential caps the allocations one credential holds
	// at once; zero or less means DefaultAllocationsPerCredential.
	AllocationsPerCredential int
	// Now tells the time, for credentials' expiry; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is a running relay.
type Server struct {
	turn     *turn.Server
	secret   string
	host     string // public IP:port
	now      func() time.Time
	log      *slog.Logger
	max, per int

	mu      sync.Mutex
	open    map[string]map[*relayConn]struct{} // credential's user name → its relayed sockets
	total   int
	revoked map[string]time.Time // user name → when it expires anyway
	sweepAt int                  // sweep expired entries of revoked when it grows to this
}

// ICEServer is one entry of a client's ICE configuration.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Listen starts a relay.
func Listen(cfg Config) (*Server, error) {
	if cfg.Realm == "" {
		cfg.Realm = "duet"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.AllocationsPerCredential <= 0 {
		cfg.AllocationsPerCredential = DefaultAllocationsPerCredential
	}
	if cfg.PublicIP == nil {
		return nil, fmt.Errorf("relay: no public IP: give the address clients reach this machine at")
	}
	if cfg.Secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("relay: secret: %w", err)
		}
		cfg.Secret = hex.EncodeToString(b)
	}
	bind, err := relayIP(cfg.Listen, cfg.PublicIP)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %s: %w", cfg.Listen, err)
	}
	s := &Server{
		secret: cfg.Secret, now: cfg.Now, log: cfg.Logger,
		max: cfg.MaxAllocations, per: cfg.AllocationsPerCredential,
		open: make(map[string]map[*relayConn]struct{}), revoked: make(map[string]time.Time), sweepAt: 64,
		host: net.JoinHostPort(cfg.PublicIP.String(), strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)),
	}
	logs := pionlog.Factory{Log: cfg.Logger}
	allow := func(_ net.Addr, peer net.IP) bool {
		return cfg.AllowPrivate || public(peer)
	}
	s.turn, err = turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authenticate,
		QuotaHandler:  func(user, _ string, _ net.Addr) bool { return s.mayAllocate(user) },
		LoggerFactory: logs,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &generator{s: s, static: turn.RelayAddressGeneratorStatic{
				RelayAddress: cfg.PublicIP, Address: bind.String(),
			}},
			PermissionHandler: allow,
		}},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	return s, nil
}

// relayIP is the local address relayed sockets bind to: listen's IP, or
// without one publicIP, which must then be an address of this machine.
func relayIP(listen string, publicIP net.IP) (net.IP, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return ip, nil
	}
	probe, err := net.ListenPacket("udp4", net.JoinHostPort(publicIP.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("relay: the public IP %s is not an address of this machine (behind a NAT?): listen on the local address relayed traffic should use: %w", publicIP, err)
	}
	probe.Close()
	return publicIP, nil
}

// public reports whether ip is an address on the public internet: not
// loopback, private, link-local, unspecified or multicast, nor "this
// network", carrier-grade NAT (also Tailscale's) or reserved.
func public(ip net.IP) bool {
	internal := [...]netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("240.0.0.0/4"),
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range internal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Credentials returns the ICE servers a client should use: STUN, and TURN
// with a credential of its own (a random id) that expires after ttl.
func (s *Server) Credentials(ttl time.Duration) (ICEServer, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return ICEServer{}, fmt.Errorf("relay: credentials: %w", err)
	}
	name := strconv.FormatInt(s.now().Add(ttl).Unix(), 10) + ":" + hex.EncodeToString(id)
	return ICEServer{
		URLs:       []string{"stun:" + s.host, "turn:" + s.host + "?transport=udp"},
		Username:   name,
		Credential: s.password(name),
	}, nil
}

// password is the TURN REST password of user name.
func (s *Server) password(name string) string {
	mac := hmac.New(sha1.New, []byte(s.secret))
	mac.Write([]byte(name))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// expiry is when the credential of user name expires.
func expiry(name string) (time.Time, bool) {
	stamp, _, _ := strings.Cut(name, ":")
	t, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(t, 0), true
}

// authenticate is the TURN AuthHandler: a credential that has not expired
// and is not revoked. Its user id is the whole user name, so quotas are
// per credential.
func (s *Server) authenticate(ra *turn.RequestAttributes) (string, []byte, bool) {
	until, ok := expiry(ra.Username)
	if !ok || !s.now().Before(until) {
		return "", nil, false
	}
	s.mu.Lock()
	_, revoked := s.revoked[ra.Username]
	s.mu.Unlock()
	if revoked {
		return "", nil, false
	}
	return ra.Username, turn.GenerateAuthKey(ra.Username, ra.Realm, s.password(ra.Username)), true
}

// mayAllocate reports whether credential user may open one more
// allocation.
func (s *Server) mayAllocate(user string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mayAllocateLocked(user)
}

func (s *Server) mayAllocateLocked(user string) bool {
	_, revoked := s.revoked[user]
	return !revoked && s.total < s.max && len(s.open[user]) < s.per
}

// Allocations returns the allocations open on the relay, and those of
// the credential of user name.
func (s *Server) Allocations(user string) (total, ofUser int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, len(s.open[user])
}

// Revoke refuses the credential of user name from now on and closes its
// allocations. The refusal is forgotten once the credential has expired
// anyway; a user name that carries no expiry is refused already.
func (s *Server) Revoke(user string) {
	until, ok := expiry(user)
	if !ok {
		return
	}
	s.mu.Lock()
	now := s.now()
	if len(s.revoked) >= s.sweepAt {
		for u, t := range s.revoked {
			if !now.Before(t) {
				delete(s.revoked, u)
			}
		}
		s.sweepAt = max(64, 2*len(s.revoked))
	}
	if now.Before(until) {
		s.revoked[user] = until
	}
	conns := s.open[user]
	delete(s.open, user)
	s.total -= len(conns)
	s.mu.Unlock()
	for c := range conns {
		c.close() // pion's relay loop then fails to read and deletes the allocation
	}
	if len(conns) > 0 {
		s.log.Debug("relay: closed a revoked credential's allocations", "allocations", len(conns))
	}
}

// Close stops the relay and every allocation on it.
func (s *Server) Close() error { return s.turn.Close() }

// generator makes the relayed sockets, on the relay's IP, counting them
// per credential; it enforces the caps too, in case a request passed
// the quota check before another took the last place.
type generator struct {
	s      *Server
	static turn.RelayAddressGeneratorStatic
}

func (g *generator) Validate() error { return g.static.Validate() }

func (g *generator) AllocatePacketConn(cfg turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	s := g.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mayAllocateLocked(cfg.UserID) {
		return nil, nil, fmt.Errorf("relay: allocation quota reached")
	}
	conn, addr, err := g.static.AllocatePacketConn(cfg)
	if err != nil {
		return nil, nil, err
	}
	c := &relayConn{PacketConn: conn, s: s, user: cfg.UserID}
	if s.open[c.user] == nil {
		s.open[c.user] = make(map[*relayConn]struct{})
	}
	s.open[c.user][c] = struct{}{}
	s.total++
	return c, addr, nil
}

func (g *generator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *generator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, ErrTCPRelay
}

// relayConn is a relayed socket that leaves the count when closed, by
// pion (the allocation ended) or by Revoke.
type relayConn struct {
	net.PacketConn
	s    *Server
	user string
	once sync.Once
}

// Close is called by pion when the allocation ends (and again after
// Revoke closed it: a second Close is no error).
func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		s := c.s
		s.mu.Lock()
		if set, ok := s.open[c.user]; ok {
			if _, ok := set[c]; ok {
				delete(set, c)
				s.total--
				if len(set) == 0 {
					delete(s.open, c.user)
				}
			}
		}
		s.mu.Unlock()
		err = c.PacketConn.Close()
	})
	return err
}

// close closes the socket of a connection Revoke has already uncounted.
func (c *relayConn) close() {
	c.once.Do(func() { c.PacketConn.Close() })
}
