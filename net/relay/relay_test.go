package relay

import (
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/net/peer"
)

// TestRelayOnlyDuet connects two peers that may only use the relay, on
// loopback, with credentials the relay issued: the connection is relayed.
func TestRelayOnlyDuet(t *testing.T) {
	srv, err := Listen(Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	host, ok := connectRelayOnly(t, srv, 15*time.Second)
	if !ok {
		t.Fatal("no relayed connection within 15 s")
	}
	if st := host.Stats(); !st.Relayed || st.Candidate != "relay" {
		t.Fatalf("host stats %+v, want a relayed connection", st)
	}
}

// connectRelayOnly tries to connect two relay-only peers through srv and
// reports whether they connected before the deadline.
func connectRelayOnly(t *testing.T, srv *Server, within time.Duration) (*peer.Peer, bool) {
	t.Helper()
	servers := func(user string) []webrtc.ICEServer {
		c, err := srv.Credentials(user, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return []webrtc.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}
	}
	toGuest, toHost := make(chan webrtc.ICECandidateInit, 100), make(chan webrtc.ICECandidateInit, 100)
	host, err := peer.New(peer.Config{Loopback: true, RelayOnly: true, ICEServers: servers("host"), OnCandidate: func(c webrtc.ICECandidateInit) { toGuest <- c }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	guest, err := peer.New(peer.Config{Loopback: true, RelayOnly: true, ICEServers: servers("guest"), OnCandidate: func(c webrtc.ICECandidateInit) { toHost <- c }})
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
	for {
		select {
		case c := <-toGuest:
			guest.AddCandidate(c)
		case c := <-toHost:
			host.AddCandidate(c)
		case <-host.Connected():
			return host, true
		case <-deadline:
			return host, false
		}
	}
}

// TestRefusesPrivatePeers: by default the relay will not forward into the
// network it runs in, so relay-only peers on loopback cannot meet.
func TestRefusesPrivatePeers(t *testing.T) {
	srv, err := Listen(Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, ok := connectRelayOnly(t, srv, 5*time.Second); ok {
		t.Fatal("the relay forwarded between loopback addresses without AllowPrivate")
	}
}

func TestCredentials(t *testing.T) {
	srv, err := Listen(Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := srv.Credentials("ann", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URLs) != 2 || c.Username == "" || c.Credential == "" {
		t.Fatalf("credentials %+v", c)
	}
	// The same secret, user and expiry give the same password (coturn's
	// use-auth-secret scheme), and another secret does not.
	other, err := Listen(Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), Secret: "other"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	o, _ := other.Credentials("ann", time.Minute)
	if o.Username == c.Username && o.Credential == c.Credential {
		t.Fatal("two secrets gave the same credential")
	}
}

func TestPublic(t *testing.T) {
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
