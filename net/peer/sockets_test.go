package peer

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/duetapp/duet/audio/codec"
)

// TestHostSockets: off loopback too Duet reads the host candidates'
// sockets itself, and the voice comes in through the fast path. In a
// network namespace of its own (unshare -n; needs root and ip(8)) with a
// veth pair at 10.99.0.1 and 10.99.1.1, the only addresses it may use (two
// sockets, one reader); the test runs itself again inside it.
func TestHostSockets(t *testing.T) {
	if os.Getenv("DUET_TEST_NETNS") == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root for a network namespace")
		}
		for _, tool := range []string{"unshare", "ip"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("needs %s", tool)
			}
		}
		cmd := exec.CommandContext(t.Context(), "unshare", "-n", "--", os.Args[0], "-test.run=^TestHostSockets$", "-test.v")
		cmd.Env = append(os.Environ(), "DUET_TEST_NETNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in its own network namespace:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
		{"addr", "add", "10.99.0.1/24", "dev", "v0"},
		{"addr", "add", "10.99.1.1/24", "dev", "v1"},
		{"link", "set", "v0", "up"},
		{"link", "set", "v1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ips, err := hostAddresses()
	slices.SortFunc(ips, func(a, b net.IP) int { return bytes.Compare(a, b) })
	if err != nil || len(ips) != 2 || ips[0].String() != "10.99.0.1" || ips[1].String() != "10.99.1.1" {
		t.Fatalf("host addresses %v (%v), want 10.99.0.1 and 10.99.1.1", ips, err)
	}
	offLoopback := func(c *Config) { c.Loopback = false }
	host, guest, hostGot, _, _, _ := pairWith(t, []func(*Config){offLoopback}, []func(*Config){offLoopback})
	defer guest.Close()
	defer host.Close()
	if !host.fast.on {
		t.Fatal("the host's sockets are pion's, not read by Duet")
	}
	seq, ts := startVoice(t, guest, hostGot)
	for i := range 50 {
		if err := guest.WriteVoice(codec.Opus, seq+uint16(i), ts+240*uint32(i), []byte{0xf8}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for got := 0; got < 50; {
		select {
		case r := <-hostGot:
			if r.seq-seq < 50 {
				got++
			}
		case <-deadline:
			t.Fatalf("%d of 50 packets arrived", got)
		}
	}
	if st := host.Stats(); st.Candidate != "host" || st.Address == "" {
		t.Errorf("connected through %q at %q, want a host candidate", st.Candidate, st.Address)
	}
	if took := host.fast.took.Load(); took < 50 {
		t.Errorf("the fast path took %d packets, want the 50 and more", took)
	}
}
