package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/relay/relaytest"
)

// TestMain checks, once every test has passed, that the relays and peers
// the tests closed left no goroutine behind (goleak polls a moment for
// those that end just after Close).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRelayOnlyDuet connects two peers that may only use the relay, on
// loopback, with credentials the relay issued: the connection is relayed.
func TestRelayOnlyDuet(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{AllowPrivate: true})
	host, ok := connectRelayOnly(t, srv, 15*time.Second, nil)
	if !ok {
		t.Fatal("no relayed connection within 15 s")
	}
	if st := host.Stats(); !st.Relayed || st.Candidate != "relay" {
		t.Fatalf("host stats %+v, want a relayed connection", st)
	}
}

// connectRelayOnly tries to connect two relay-only peers through srv and
// reports whether they connected before the deadline. With refused (fed
// by a refusals log) it gives up as soon as the relay has refused both
// peers' permissions: no path is left between them; if that does not
// happen before the deadline either, the test fails.
func connectRelayOnly(t *testing.T, srv *Server, within time.Duration, refused <-chan string) (*peer.Peer, bool) {
	t.Helper()
	servers := func() []webrtc.ICEServer {
		c, err := srv.Credentials(time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return []webrtc.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}
	}
	toGuest, toHost := make(chan webrtc.ICECandidateInit, 100), make(chan webrtc.ICECandidateInit, 100)
	host, err := peer.New(peer.Config{Loopback: true, RelayOnly: true, ICEServers: servers(), OnCandidate: func(c webrtc.ICECandidateInit) { toGuest <- c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	guest, err := peer.New(peer.Config{Loopback: true, RelayOnly: true, ICEServers: servers(), OnCandidate: func(c webrtc.ICECandidateInit) { toHost <- c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { guest.Close() })
	offer, err := host.Offer()
	if err != nil {
		t.Fatal(err)
	}
	answer, err := guest.Answer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Accept(answer); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(within)
	clients := map[string]bool{}
	for {
		select {
		case c := <-toGuest:
			guest.AddCandidate(c)
		case c := <-toHost:
			host.AddCandidate(c)
		case <-host.Connected():
			return host, true
		case c := <-refused:
			if clients[c] = true; len(clients) == 2 {
				return host, false
			}
		case <-deadline:
			if refused != nil {
				t.Fatalf("neither connected nor refused within %v (refused %v)", within, clients)
			}
			return host, false
		}
	}
}

// refusals is a slog.Handler for a relay's Logger: it passes on the client
// address of each permission pion's TURN server refused, which it logs as
// "permission denied for client ADDR to peer IP".
type refusals chan string

func (r refusals) Enabled(context.Context, slog.Level) bool { return true }
func (r refusals) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r refusals) WithGroup(string) slog.Handler            { return r }
func (r refusals) Handle(_ context.Context, rec slog.Record) error {
	if rest, ok := strings.CutPrefix(rec.Message, "permission denied for client "); ok {
		client, _, _ := strings.Cut(rest, " ")
		select {
		case r <- client:
		default: // the test has what it needs
		}
	}
	return nil
}

// TestRefusesPrivatePeers: by default the relay will not forward into the
// network it runs in, so relay-only peers on loopback cannot meet: it
// refuses both peers a permission to the other's loopback address.
func TestRefusesPrivatePeers(t *testing.T) {
	t.Parallel()
	refused := make(refusals, 16)
	srv := listen(t, Config{Logger: slog.New(refused)})
	if _, ok := connectRelayOnly(t, srv, 15*time.Second, refused); ok {
		t.Fatal("the relay forwarded between loopback addresses without AllowPrivate")
	}
}

// listen starts a relay on loopback for a test. It closes after the
// peers a test starts later (cleanups run last first): a peer closing
// while its TURN permission request is unanswered waits for the request
// to time out, up to 8 s.
func listen(t *testing.T, cfg Config) *Server {
	t.Helper()
	cfg.Listen, cfg.PublicIP = "127.0.0.1:0", net.IPv4(127, 0, 0, 1)
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// flood opens up to limit allocations with one credential on srv and
// returns how many it holds and the TURN code that stopped it (0: none).
func flood(t *testing.T, c ICEServer, limit int) (*relaytest.Allocations, int) {
	t.Helper()
	a, err := relaytest.Flood(t.Context(), c.URLs[1], c.Username, c.Credential, "127.0.0.1:0", limit)
	t.Cleanup(func() { a.Close() })
	if err != nil && relaytest.Code(err) == 0 {
		t.Fatal(err)
	}
	return a, relaytest.Code(err)
}

func credentials(t *testing.T, srv *Server, ttl time.Duration) ICEServer {
	t.Helper()
	c, err := srv.Credentials(ttl)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URLs) != 2 || !strings.HasPrefix(c.URLs[1], "turn:") || c.Username == "" || c.Credential == "" {
		t.Fatalf("credentials %+v", c)
	}
	return c
}

// TestQuotaPerCredential: one credential opens allocations until the
// relay answers 486; another credential still gets one.
func TestQuotaPerCredential(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{})
	a, code := flood(t, credentials(t, srv, time.Hour), 100)
	if a.Len() != DefaultAllocationsPerCredential || code != 486 {
		t.Fatalf("one credential got %d allocations, then code %d; want %d, then 486", a.Len(), code, DefaultAllocationsPerCredential)
	}
	if b, code := flood(t, credentials(t, srv, time.Hour), 1); b.Len() != 1 {
		t.Fatalf("a second credential got no allocation (code %d)", code)
	}
}

// TestQuotaGlobal: the relay refuses with 486 beyond MaxAllocations in
// all, whoever asks.
func TestQuotaGlobal(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{MaxAllocations: 5})
	if a, code := flood(t, credentials(t, srv, time.Hour), 100); a.Len() != 5 || code != 486 {
		t.Fatalf("first credential: %d allocations, code %d; want 5, 486", a.Len(), code)
	}
	if b, code := flood(t, credentials(t, srv, time.Hour), 1); b.Len() != 0 || code != 486 {
		t.Fatalf("second credential: %d allocations, code %d; want 0, 486", b.Len(), code)
	}
	if total, _ := srv.Allocations(""); total != 5 {
		t.Fatalf("%d allocations counted, want 5", total)
	}
}

// TestRevoke: a revoked credential is refused (401) and its allocations'
// relayed sockets are closed; others are untouched.
func TestRevoke(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{})
	c, other := credentials(t, srv, time.Hour), credentials(t, srv, time.Hour)
	a, _ := flood(t, c, 3)
	flood(t, other, 1)
	if a.Len() != 3 {
		t.Fatalf("%d allocations before revoking, want 3", a.Len())
	}
	relayed := relayedAddrs(srv, c.Username)
	srv.Revoke(c.Username)
	if total, mine := srv.Allocations(c.Username); total != 1 || mine != 0 {
		t.Fatalf("after revoking: %d allocations in all, %d of the credential; want 1, 0", total, mine)
	}
	if b, code := flood(t, c, 1); b.Len() != 0 || code != 401 {
		t.Fatalf("the revoked credential got %d allocations, code %d; want 0, 401", b.Len(), code)
	}
	if len(relayed) != 3 {
		t.Fatalf("%d relayed sockets, want 3", len(relayed))
	}
	for _, addr := range relayed {
		if !portClosed(t, addr) {
			t.Fatalf("the relayed socket %s still takes packets", addr)
		}
	}
}

// relayedAddrs lists the local addresses of the relayed sockets of user.
func relayedAddrs(srv *Server, user string) []net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []net.Addr
	for c := range srv.open[user] {
		out = append(out, c.LocalAddr())
	}
	return out
}

// portClosed sends a datagram to addr on loopback and reports whether the
// kernel answers that no socket is bound there (ICMP port unreachable,
// read as "connection refused" on a connected socket).
func portClosed(t *testing.T, addr net.Addr) bool {
	t.Helper()
	conn, err := net.Dial("udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("x")); err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	_, err = conn.Read(make([]byte, 16))
	return errors.Is(err, syscall.ECONNREFUSED)
}

// TestRevokedForgotten: a revoked entry is dropped once its credential
// has expired anyway.
func TestRevokedForgotten(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).Unix())
	srv := listen(t, Config{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	for range 64 {
		srv.Revoke(credentials(t, srv, time.Minute).Username)
	}
	now.Add(120)
	srv.Revoke(credentials(t, srv, time.Minute).Username) // the 65th sweeps
	srv.mu.Lock()
	n := len(srv.revoked)
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d revoked entries kept, want 1 (the others expired)", n)
	}
}

// TestExpiry: an expired credential cannot allocate, nor keep an
// allocation alive (permissions, like refreshes, need a valid one).
func TestExpiry(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC).Unix())
	srv := listen(t, Config{Now: func() time.Time { return time.Unix(now.Load(), 0) }, AllowPrivate: true})
	c := credentials(t, srv, time.Minute)
	later := credentials(t, srv, 2*time.Hour)
	a, _ := flood(t, c, 1)
	if a.Len() != 1 {
		t.Fatal("no allocation with a fresh credential")
	}
	now.Add(61)
	if b, code := flood(t, c, 1); b.Len() != 0 || code != 401 {
		t.Fatalf("an expired credential got %d allocations, code %d; want 0, 401", b.Len(), code)
	}
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	if err := a.CreatePermission(0, peer); relaytest.Code(err) != 401 {
		t.Fatalf("a permission with an expired credential: %v, want a 401", err)
	}
	if b, _ := flood(t, later, 1); b.Len() != 1 {
		t.Fatal("a credential that has not expired was refused")
	}
}

// TestCoturnCredentials: a credential made by the TURN REST scheme with
// the relay's secret (as coturn's use-auth-secret clients do) is
// accepted; with another secret it is not.
func TestCoturnCredentials(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{Secret: "s3cret"})
	url := credentials(t, srv, time.Hour).URLs[1]
	for _, tc := range []struct {
		secret string
		want   int
	}{{"s3cret", 1}, {"other", 0}} {
		user, password, err := turn.GenerateLongTermTURNRESTCredentials(tc.secret, "ann", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if a, code := flood(t, ICEServer{URLs: []string{"", url}, Username: user, Credential: password}, 1); a.Len() != tc.want {
			t.Errorf("secret %q: %d allocations (code %d), want %d", tc.secret, a.Len(), code, tc.want)
		}
	}
}

func TestRelayIP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, public, want string
	}{
		{"127.0.0.1:3478", "203.0.113.7", "127.0.0.1"}, // behind a NAT: the listen address
		{":3478", "127.0.0.1", "127.0.0.1"},            // the public IP, an address of this machine
		{":3478", "203.0.113.7", ""},                   // not an address of this machine
		{"0.0.0.0:3478", "203.0.113.7", ""},
	} {
		got, err := relayIP(tc.listen, net.ParseIP(tc.public))
		if tc.want == "" {
			if err == nil {
				t.Errorf("relayIP(%q, %s) = %s, want an error", tc.listen, tc.public, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("relayIP(%q, %s) = %v, %v; want %s", tc.listen, tc.public, got, err, tc.want)
		}
	}
}

func TestPublic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"8.8.8.8", true}, {"2001:4860::8888", true},
		{"127.0.0.1", false}, {"10.1.2.3", false}, {"192.168.0.1", false}, {"172.16.5.4", false},
		{"169.254.1.1", false}, {"0.0.0.0", false}, {"0.1.2.3", false}, {"100.100.1.1", false},
		{"224.0.0.1", false}, {"250.1.1.1", false}, {"::1", false}, {"fe80::1", false}, {"fd00::1", false},
		{"::ffff:10.0.0.1", false},
	} {
		if got := public(net.ParseIP(tc.ip)); got != tc.want {
			t.Errorf("public(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}
