package relay

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestRelayedOnRelayIP: relayed sockets are bound to the relay's IP, not
// to every interface. (It asks the kernel: pion rewrites the IP of the
// address a relayed socket reports.)
func TestRelayedOnRelayIP(t *testing.T) {
	t.Parallel()
	srv := listen(t, Config{})
	c := credentials(t, srv, time.Hour)
	flood(t, c, 1)
	srv.mu.Lock()
	var bound []net.IP
	for rc := range srv.open[c.Username] {
		raw, err := rc.PacketConn.(*net.UDPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) {
			if sa, err := syscall.Getsockname(int(fd)); err == nil {
				if in4, ok := sa.(*syscall.SockaddrInet4); ok {
					bound = append(bound, net.IP(in4.Addr[:]))
				}
			}
		})
	}
	srv.mu.Unlock()
	if len(bound) != 1 || !bound[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relayed sockets bound to %v, want 127.0.0.1", bound)
	}
}
