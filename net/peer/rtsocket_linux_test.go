package peer

import (
	"net"
	"testing"
	"time"
)

// TestReaderFlood: a flood of datagrams does not keep the real-time
// reader busy: it sleeps out each slice it has taken floodLimit in, and
// what pion reads still comes through after.
func TestReaderFlood(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	socks, err := realtimeSockets([]*net.UDPConn{conn}, nil, func([]byte) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := socks[0]
	defer s.Close()
	out, err := net.DialUDP("udp4", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	r := s.(*rtSocket).r
	junk := make([]byte, 100)
	deadline := time.Now().Add(10 * time.Second)
	for r.floods.Load() == 0 {
		for range 100 {
			out.Write(junk) // a full socket buffer drops some: fine
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never slept out a slice under a flood")
		}
	}
	// What waits for pion drains (pion's reader), and a datagram sent
	// after the flood comes through (sent again until it does: the
	// socket's buffer may still be full and drop it).
	last := make(chan struct{})
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, _, err := s.ReadFrom(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "last" {
				close(last)
				return
			}
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := out.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-last:
			return
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatal("no datagram came through after the flood")
		}
	}
}
