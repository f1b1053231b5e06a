package peer

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/duetapp/duet/audio/rt"
)

// rtSocket is a UDP socket read on a real-time thread: each datagram is
// shown first to onDatagram, on that thread (the voice's fast path, see
// fastVoice), then queued for pion, whose ICE mux reads it through
// ReadFrom. The thread waits in poll(2) and reads with recvfrom(2)
// itself, not through Go's network poller: a wait there is ended by an
// ordinary thread, which on a busy or virtual machine wakes late a few
// times a second (see audio/rt). Writes, addresses and deadlines are the
// socket's own.
type rtSocket struct {
	*net.UDPConn
	raw syscall.RawConn

	onDatagram func([]byte)
	queue      chan datagram
	free       sync.Pool // *[maxDatagram]byte
	dropped    atomic.Int64

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type datagram struct {
	buf  *[maxDatagram]byte
	n    int
	from *net.UDPAddr
}

const (
	// maxDatagram is the largest datagram read: ICE, DTLS and RTP over
	// UDP all stay under 1500 bytes; a longer one is cut and fails its check.
	maxDatagram = 1500
	// queued is how many datagrams wait for pion's reader before the
	// newest are dropped: a second of voice at 2.67 ms packets, and more.
	queued = 512
	// pollMS is how often the reader looks whether it should stop.
	pollMS = 50
)

// realtimeSocket starts reading conn on a thread raised by realtime (an
// ordinary thread where that is refused, or realtime is nil), showing
// each datagram to onDatagram there first.
func realtimeSocket(conn *net.UDPConn, realtime *rt.Raiser, onDatagram func([]byte)) (net.PacketConn, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &rtSocket{
		UDPConn:    conn,
		raw:        raw,
		onDatagram: onDatagram,
		queue:      make(chan datagram, queued),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.free.New = func() any { return new([maxDatagram]byte) }
	go s.read(realtime)
	return s, nil
}

// read is the socket's reader, until Close.
func (s *rtSocket) read(realtime *rt.Raiser) {
	defer close(s.done)
	unlock, _ := realtime.Raise("voice reader")
	defer unlock()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		buf := s.free.Get().(*[maxDatagram]byte)
		n, from, err := s.recv(buf)
		if err != nil {
			return // the socket is closed
		}
		if n < 0 {
			s.free.Put(buf)
			continue // nothing came within pollMS
		}
		s.onDatagram(buf[:n])
		select {
		case s.queue <- datagram{buf, n, from}:
		default:
			s.dropped.Add(1)
			s.free.Put(buf)
		}
	}
}

// recv waits up to pollMS for a datagram and reads it into buf; n is -1
// when none came.
func (s *rtSocket) recv(buf *[maxDatagram]byte) (n int, from *net.UDPAddr, err error) {
	var rerr error
	err = s.raw.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, perr := unix.Poll(fds, pollMS); k <= 0 {
			if perr != nil && !errors.Is(perr, unix.EINTR) {
				rerr = perr
			}
			n = -1
			return true
		}
		var sa unix.Sockaddr
		n, sa, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_DONTWAIT)
		if errors.Is(rerr, unix.EAGAIN) || errors.Is(rerr, unix.EINTR) {
			n, rerr = -1, nil
			return true
		}
		if in4, ok := sa.(*unix.SockaddrInet4); ok {
			from = &net.UDPAddr{IP: net.IP(in4.Addr[:]).To16(), Port: in4.Port}
		} else if in6, ok := sa.(*unix.SockaddrInet6); ok {
			from = &net.UDPAddr{IP: net.IP(in6.Addr[:]), Port: in6.Port}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	if err == nil && n >= 0 && from == nil {
		n = -1 // not an IP datagram: cannot be answered
	}
	return n, from, err
}

// ReadFrom is the next datagram for pion.
func (s *rtSocket) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case d := <-s.queue:
		n := copy(p, d.buf[:d.n])
		s.free.Put(d.buf)
		return n, d.from, nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

// Close stops the reader and closes the socket.
func (s *rtSocket) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	return s.UDPConn.Close()
}
