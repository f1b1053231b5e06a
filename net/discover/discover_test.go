package discover

import (
	"context"
	"errors"
	"net"
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

// TestAdvertiseAndBrowse advertises a server on this machine and finds it
// by browsing, on the first multicast interface.
func TestAdvertiseAndBrowse(t *testing.T) {
	ifc := multicastInterface(t)
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	a, err := Advertise(Config{Port: 43838, Instance: "Duet test", Iface: ifc, IPs: ips})
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
	want := Found{Instance: "Duet test", URL: "http://127.0.0.1:43838"}
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
	ifc := multicastInterface(t)
	a, err := Advertise(Config{Port: 43839, Instance: "Duet gone", Iface: ifc, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
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
	if _, err := Advertise(Config{}); err == nil {
		t.Fatal("advertised port 0")
	}
}

func TestInstanceName(t *testing.T) {
	if got := instanceName(`Duet\ on\ studio._duet._tcp.local.`); got != "Duet on studio" {
		t.Fatalf("got %q", got)
	}
}

// TestDefaultInterfaces is what the app does: advertise and browse with
// no interface named, announcing this machine's own addresses.
func TestDefaultInterfaces(t *testing.T) {
	multicastInterface(t)
	a, err := Advertise(Config{Port: 43840, Instance: "Duet default"})
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
		if f.Instance == "Duet default" && strings.HasSuffix(f.URL, ":43840") {
			return
		}
	}
	t.Fatalf("found %+v, not Duet default on port 43840", found)
}
