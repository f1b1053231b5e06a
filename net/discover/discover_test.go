package discover

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// multicastInterface returns an up interface that can carry multicast, or
// skips: mDNS needs one, and a loopback without the MULTICAST flag (as in
// many containers) is not.
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
	t.Skip("no up interface with the MULTICAST flag here: mDNS cannot be tried (loopback has none unless `ip link set lo multicast on`)")
	return nil
}

// serverPort stands for the rendezvous server the tests announce: a TCP
// port the system chose, held open for the test, so what is announced is
// a port only this test uses.
func serverPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// TestAdvertiseAndBrowse advertises a server on this machine and finds it
// by browsing, on the first multicast interface.
func TestAdvertiseAndBrowse(t *testing.T) {
	t.Parallel()
	ifc := multicastInterface(t)
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	port := serverPort(t)
	a, err := Advertise(Config{Port: port, Instance: "Duet test", Iface: ifc, IPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	found, err := Browse(ctx, Config{Iface: ifc})
	if err != nil {
		t.Fatalf("browsing on %s: %v", ifc.Name, err)
	}
	want := Found{Instance: "Duet test", URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	for _, f := range found {
		if f == want {
			return
		}
	}
	t.Fatalf("found %+v, want %+v among them", found, want)
}

// TestBrowseFindsNothing: with nobody advertising (once Close has run),
// Browse says so in a sentence.
func TestBrowseFindsNothing(t *testing.T) {
	t.Parallel()
	ifc := multicastInterface(t)
	a, err := Advertise(Config{Port: serverPort(t), Instance: "Duet gone", Iface: ifc, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close() // twice is fine
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	found, err := Browse(ctx, Config{Iface: ifc})
	for _, f := range found {
		if f.Instance == "Duet gone" {
			t.Fatalf("found %+v after Close", f)
		}
	}
	if len(found) == 0 && !errors.Is(err, ErrNotFound) {
		t.Fatalf("Browse = %v, want ErrNotFound", err)
	}
}

func TestAdvertiseRefusesNoPort(t *testing.T) {
	t.Parallel()
	if _, err := Advertise(Config{}); err == nil {
		t.Fatal("advertised port 0")
	}
}

func TestInstanceName(t *testing.T) {
	t.Parallel()
	if got := instanceName(`Duet\ on\ studio._duet._tcp.local.`); got != "Duet on studio" {
		t.Fatalf("got %q", got)
	}
}

// TestDefaultInterfaces is what the app does: advertise and browse with
// no interface named, announcing this machine's own addresses.
func TestDefaultInterfaces(t *testing.T) {
	t.Parallel()
	multicastInterface(t)
	port := serverPort(t)
	a, err := Advertise(Config{Port: port, Instance: "Duet default"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	found, err := Browse(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if f.Instance == "Duet default" && strings.HasSuffix(f.URL, ":"+strconv.Itoa(port)) {
			return
		}
	}
	t.Fatalf("found %+v, not Duet default on port %d", found, port)
}
