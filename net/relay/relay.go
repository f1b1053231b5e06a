// Package relay is Duet's embedded STUN and TURN server (pion/turn v5), so
// that two singers behind NATs and firewalls always connect: directly when
// they can, through the relay when they cannot.
//
// Credentials are short-lived, in the TURN REST scheme (the password is an
// HMAC of the expiry and a user name under a shared secret): the format of
// coturn's use-auth-secret, so a deployment can swap in coturn with the same
// secret. The rendezvous server hands them out when a singer creates or
// joins a room.
//
// By default the relay refuses to forward to loopback, private, link-local
// and unspecified addresses, so it cannot be used to reach into the
// network it runs in; a LAN or a test allows them explicitly.
package relay

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pion/turn/v5"

	"github.com/duetapp/duet/net/pionlog"
)

// Config describes a relay.
type Config struct {
	// Listen is the UDP address to serve STUN and TURN on, e.g. ":3478".
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
	Logger       *slog.Logger
}

// Server is a running relay.
type Server struct {
	turn   *turn.Server
	secret string
	host   string // public IP:port
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
	conn, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("relay: listen on %s: %w", cfg.Listen, err)
	}
	logs := pionlog.Factory{Log: cfg.Logger}
	allow := func(_ net.Addr, peer net.IP) bool {
		return cfg.AllowPrivate || public(peer)
	}
	t, err := turn.NewServer(turn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(cfg.Secret, logs.NewLogger("turn-auth")),
		LoggerFactory: logs,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            conn,
			RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{RelayAddress: cfg.PublicIP, Address: "0.0.0.0"},
			PermissionHandler:     allow,
		}},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	return &Server{turn: t, secret: cfg.Secret, host: net.JoinHostPort(cfg.PublicIP.String(), strconv.Itoa(port))}, nil
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
// with a credential for user that expires after ttl.
func (s *Server) Credentials(user string, ttl time.Duration) (ICEServer, error) {
	name, password, err := turn.GenerateLongTermTURNRESTCredentials(s.secret, user, ttl)
	if err != nil {
		return ICEServer{}, fmt.Errorf("relay: credentials: %w", err)
	}
	return ICEServer{
		URLs:       []string{"stun:" + s.host, "turn:" + s.host + "?transport=udp"},
		Username:   name,
		Credential: password,
	}, nil
}

// Close stops the relay and every allocation on it.
func (s *Server) Close() error { return s.turn.Close() }
