package ntpcheck

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestLocalServer asks the real NTP server CI runs on loopback (chrony,
// started by .ci/run, address in DUET_NTP). It serves this very machine's
// clock, so the offset must be near zero.
func TestLocalServer(t *testing.T) {
	server := os.Getenv("DUET_NTP")
	if server == "" {
		t.Skip("DUET_NTP is unset: no local NTP server to ask (.ci/run starts chrony on 127.0.0.1:11123 and sets it)")
	}
	res, err := Check(t.Context(), Config{Server: server, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("Check(%s): %v", server, err)
	}
	t.Logf("%s: offset %v, RTT %v, stratum %d, root distance %v", server, res.Offset, res.RTT, res.Stratum, res.RootDistance)
	if res.Offset.Abs() > 5*time.Millisecond {
		t.Errorf("offset %v to a server on this machine, want |offset| ≤ 5 ms", res.Offset)
	}
	if res.RTT < 0 || res.RTT > 50*time.Millisecond {
		t.Errorf("RTT %v over loopback, want 0–50 ms", res.RTT)
	}
	if res.Stratum < 1 || res.Stratum > 15 {
		t.Errorf("stratum %d, want 1–15", res.Stratum)
	}
	if d := time.Until(res.Time).Abs(); d > time.Second {
		t.Errorf("server time %v is %v from now", res.Time, d)
	}
	if res.Server != server {
		t.Errorf("Server = %q, want %q", res.Server, server)
	}
}

// closedPort returns a loopback UDP address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

// silentServer returns the address of a UDP socket that never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

func TestUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		server  string
		timeout time.Duration
		within  time.Duration // how soon Check must give up
	}{
		// The kernel answers a closed port with ICMP "port unreachable": no
		// need to wait for the timeout.
		{"closed port", closedPort(t), 5 * time.Second, time.Second},
		{"no answer", silentServer(t), 200 * time.Millisecond, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := Check(t.Context(), Config{Server: tc.server, Timeout: tc.timeout})
			took := time.Since(start)
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Check(%s) = %+v, %v; want ErrUnreachable", tc.server, res, err)
			}
			t.Logf("%v after %v", err, took)
			if took > tc.within {
				t.Errorf("gave up after %v, want ≤ %v", took, tc.within)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := Check(ctx, Config{Server: silentServer(t), Timeout: 5 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Check: %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancelled Check returned after %v", took)
	}
}

func TestOff(t *testing.T) {
	if _, err := Check(t.Context(), Config{Server: Off}); !errors.Is(err, ErrOff) {
		t.Fatalf("Check(off) = %v, want ErrOff", err)
	}
}
