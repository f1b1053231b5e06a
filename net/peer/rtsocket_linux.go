package peer

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/duetapp/duet/audio/rt"
)

// rtReader reads a peer's UDP sockets on one real-time thread: each
// datagram is shown first to onDatagram, on that thread (the voice's fast
// path, see fastVoice), then queued for pion, whose ICE mux reads it
// through the socket's ReadFrom. The thread waits in poll(2) and reads
// with recvfrom(2) itself, not through Go's network poller: a wait there
// is ended by an ordinary thread, which on a busy or virtual machine wakes
// late a few times a second (see audio/rt). Writes, addresses and
// deadlines are the sockets' own.
//
// The thread keeps a Go processor (P) while it waits in poll(2); the duet
// command gives the runtime one more for it (cmd/duet).
type rtReader struct {
	socks      []*rtSocket
	fds        []unix.PollFd
	onDatagram func([]byte)
	log        *slog.Logger
	free       sync.Pool    // *[maxDatagram]byte
	dropped    atomic.Int64 // datagrams pion's reader had no room for
	floods     atomic.Int64 // slices the reader slept out

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// rtSocket is one socket of an rtReader, as pion sees it.
type rtSocket struct {
	net.PacketConn
	r     *rtReader
	queue chan datagram
}

type datagram struct {
	buf  *[maxDatagram]byte
	n    int
	from *net.UDPAddr
}

const (
	// queued is how many datagrams wait for pion's reader before the
	// newest are dropped: a second of voice at 2.67 ms packets, and more.
	queued = 512
	// pollMS is how often the reader looks whether it should stop.
	pollMS = 50
	// floodLimit datagrams in a floodSlice is about twenty times a duet's
	// own traffic at its shortest packets: beyond it the reader sleeps
	// out the slice, so that a flood of datagrams waits (and overflows)
	// in the socket, not on a real-time thread, which would starve every
	// ordinary one.
	floodLimit = 200
	floodSlice = 10 * time.Millisecond
)

// realtimeSockets starts reading conns on one thread raised by realtime
// (an ordinary thread where that is refused, or realtime is nil), showing
// each datagram to onDatagram there first. Closing any of the sockets it
// returns stops the thread and closes them all.
func realtimeSockets(conns []*net.UDPConn, realtime *rt.Raiser, onDatagram func([]byte), log *slog.Logger) ([]net.PacketConn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &rtReader{onDatagram: onDatagram, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	r.free.New = func() any { return new([maxDatagram]byte) }
	out := make([]net.PacketConn, len(conns))
	for i, c := range conns {
		raw, err := c.SyscallConn()
		if err != nil {
			return nil, err
		}
		// The fd is used after Control returns: the sockets close only
		// once the reader has stopped (Close).
		var fd int
		if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
			return nil, err
		}
		s := &rtSocket{PacketConn: c, r: r, queue: make(chan datagram, queued)}
		r.socks = append(r.socks, s)
		r.fds = append(r.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		out[i] = s
	}
	go r.read(realtime)
	return out, nil
}

// read is the sockets' reader, until Close.
func (r *rtReader) read(realtime *rt.Raiser) {
	defer close(r.done)
	unlock, _ := realtime.Raise("voice reader")
	defer unlock()
	slice, taken := time.Now(), 0
	for {
		select {
		case <-r.stop:
			return
		default:
		}
		k, err := unix.Poll(r.fds, pollMS)
		if err != nil && !errors.Is(err, unix.EINTR) {
			r.log.Warn("the sockets' reader stopped: media ends", "err", err)
			return
		}
		for i := 0; k > 0 && i < len(r.fds); i++ {
			if r.fds[i].Revents == 0 {
				continue
			}
			k--
			if err := r.recv(i); err != nil {
				r.log.Warn("the sockets' reader stopped: media ends", "err", err)
				return
			}
			taken++
		}
		if since := time.Since(slice); since >= floodSlice {
			slice, taken = time.Now(), 0
		} else if taken >= floodLimit {
			r.floods.Add(1)
			time.Sleep(floodSlice - since)
		}
	}
}

// recv reads one datagram from socket i, shows it to onDatagram and
// queues it for pion; an error if the socket failed.
func (r *rtReader) recv(i int) error {
	buf := r.free.Get().(*[maxDatagram]byte)
	n, sa, err := unix.Recvfrom(int(r.fds[i].Fd), buf[:], unix.MSG_DONTWAIT)
	var from *net.UDPAddr
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		from = &net.UDPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		from = &net.UDPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	if err != nil || from == nil {
		r.free.Put(buf)
		if err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) ||
			errors.Is(err, unix.ECONNREFUSED) { // an ICMP answer to something we sent
			return nil
		}
		return err
	}
	r.onDatagram(buf[:n])
	select {
	case r.socks[i].queue <- datagram{buf, n, from}:
	default:
		r.dropped.Add(1)
		r.free.Put(buf)
	}
	return nil
}

// ReadFrom is the next datagram for pion.
func (s *rtSocket) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case d := <-s.queue:
		n := copy(p, d.buf[:d.n])
		s.r.free.Put(d.buf)
		return n, d.from, nil
	case <-s.r.done:
		return 0, nil, net.ErrClosed
	}
}

// Close stops the reader and closes all its sockets.
func (s *rtSocket) Close() error {
	r := s.r
	var err error
	r.once.Do(func() {
		close(r.stop)
		<-r.done
		if d, f := r.dropped.Load(), r.floods.Load(); d > 0 || f > 0 {
			r.log.Info("the sockets' reader dropped datagrams", "no_room_for_pion", d, "flood_slices", f)
		}
		for _, o := range r.socks {
			err = errors.Join(err, o.PacketConn.Close())
		}
	})
	return err
}
