package lan

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/discover"
	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/signal"
)

// meet has two singers meet through the rendezvous server at url: one
// creates a room, the other joins it.
func meet(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	host, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	guest, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	if err := guest.Join(ctx, code); err != nil {
		t.Fatalf("joining %s at %s: %v", code, url, err)
	}
}

// refused reports whether nothing accepts connections at url any more.
func refused(url string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// TestServer starts the built-in server on a port the system chooses:
// singers meet through it, a second Start returns the same URL, Close
// stops it (twice is fine) and a later Start serves again.
func TestServer(t *testing.T) {
	s := NewServer(Config{Listen: "127.0.0.1:0"})
	defer s.Close()
	url, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://localhost:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("URL %q, want http://localhost and the chosen port", url)
	}
	meet(t, url)
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %s", resp.Status)
	}
	// A partner without Duet joins from a browser: the guest page is here.
	resp, err = http.Get(url + "/j/K7QM-3XRT")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("the guest page: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if again, err := s.Start(); err != nil || again != url {
		t.Fatalf("second Start = %q, %v; want %q", again, err, url)
	}
	s.Close()
	s.Close()
	if !refused(url) {
		t.Fatalf("%s still accepts connections after Close", url)
	}
	url, err = s.Start()
	if err != nil {
		t.Fatal(err)
	}
	meet(t, url)
}

// TestPortTaken says what to do when the port is taken, and names it.
func TestPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := NewServer(Config{Listen: ln.Addr().String()})
	defer s.Close()
	_, err = s.Start()
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) || !strings.Contains(err.Error(), "set a server in the settings") {
		t.Fatalf("Start on a taken port = %v, want an error naming it and what to do", err)
	}
	if _, err := s.Announce(); !errors.Is(err, ErrNotServing) {
		t.Fatalf("Announce without a server = %v, want ErrNotServing", err)
	}
}

// TestDefaultListen: the built-in server is where a guest's app and duet
// join look by default, the rendezvous server's default port.
func TestDefaultListen(t *testing.T) {
	if DefaultListen != rendezvous.DefaultListen {
		t.Fatalf("DefaultListen %q, rendezvous.DefaultListen %q", DefaultListen, rendezvous.DefaultListen)
	}
}

// multicastInterface returns an up interface that can carry multicast, or
// skips: mDNS needs one (a container's loopback has none).
func multicastInterface(t *testing.T) *net.Interface {
	t.Helper()
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagMulticast != 0 {
			return &ifc
		}
	}
	t.Skip("no up interface with the MULTICAST flag: mDNS cannot be tried")
	return nil
}

// TestAnnounceAndLook is a duet on the local network: the host's built-in
// server, announced; the guest looks, finds it first and this computer's
// last, and the two meet through what was found. Once the announcement is
// closed, a second look no longer finds it.
func TestAnnounceAndLook(t *testing.T) {
	ifc := multicastInterface(t)
	// Announced as reachable on loopback, so the test needs no route
	// beyond this computer; the name tells it from other tests' servers.
	name := "Duet test " + strconv.Itoa(time.Now().Nanosecond())
	cfg := Config{
		Listen:   "127.0.0.1:0",
		Discover: discover.Config{Instance: name, Iface: ifc, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}},
	}
	s := NewServer(cfg)
	defer s.Close()
	local, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	ad, err := s.Announce()
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	want := Candidate{URL: "http://127.0.0.1:" + local[strings.LastIndex(local, ":")+1:], Announced: true}

	look := Config{Listen: DefaultListen, Discover: discover.Config{Iface: ifc}}
	found := Look(t.Context(), look)
	if !slices.Contains(found, want) {
		t.Fatalf("Look found %+v, not %+v", found, want)
	}
	if last := found[len(found)-1]; last != (Candidate{URL: "http://localhost:3838"}) {
		t.Errorf("Look's last candidate %+v, want this computer's server on the default port, not announced", last)
	}
	meet(t, want.URL)

	ad.Close()
	look.Look = 500 * time.Millisecond
	if found := Look(t.Context(), look); slices.Contains(found, want) {
		t.Errorf("Look still found %+v after the announcement closed", want)
	}
}

// TestLookEndsWithContext: Look returns when ctx ends, before its own
// time is up, with at least this computer's server to try.
func TestLookEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan []Candidate, 1)
	go func() { done <- Look(ctx, Config{Look: time.Minute}) }()
	select {
	case found := <-done:
		if len(found) == 0 || found[len(found)-1] != (Candidate{URL: "http://localhost:3838"}) {
			t.Fatalf("Look = %+v, want this computer's server last", found)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Look did not end with its context")
	}
}
