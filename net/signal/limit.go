package signal

import (
	"container/list"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one address and one socket may do, so that room codes
// cannot be enumerated (40 bits at ten guesses a minute is two hundred
// thousand years per address) and a misbehaving client cannot flood the
// server. Zero fields take the defaults.
//
// Limits are kept per server instance, even with a shared Redis store: n
// instances behind a load balancer let an address try n times as often,
// which still leaves enumeration hopeless (40 bits at 10n guesses a minute),
// and keeps a Redis round trip off every attempt and Redis out of the
// path an attacker can load.
type Limits struct {
	// Joins and Creates are the attempts per minute one IP address may
	// make, after a burst of JoinBurst and CreateBurst.
	Joins, Creates         float64
	JoinBurst, CreateBurst int
	// Messages is the messages per second one socket may send, after a
	// burst of MessageBurst (an offer, an answer and a few dozen ICE
	// candidates arrive at once).
	Messages     float64
	MessageBurst int
	// Sockets is the most WebSockets the server holds open at once
	// (default 30,000, some 10 kB each and a file descriptor: keep
	// RLIMIT_NOFILE above it); past it a new one is refused with 503
	// before the upgrade. SocketsPerAddress is the most one address (an
	// IPv4 address, an IPv6 /64) may hold (default 64: a singer needs
	// one, and a school or a carrier's NAT puts many behind one address);
	// past it a new one is refused with 429.
	Sockets, SocketsPerAddress int
	// Rooms is the most rooms open at once (default 20,000, some 2 kB
	// each in memory). Past it, a create takes the place of the abandoned
	// room (no socket in either seat: its host dropped without bye, and a
	// guest, if any, too) that would expire soonest, and is refused with
	// ErrServerFull only when every room has someone in it. With a Redis
	// store it counts the rooms of every instance, as a count a few
	// seconds old plus this instance's creations since: give it the sum
	// over the instances.
	//
	// RoomsPerAddress is the most rooms one address (an IPv4 address, an
	// IPv6 /64) may hold, abandoned or not (default 3: a singer hosts one
	// duet, and may come back after a crash); past it, a create takes the
	// place of that address's own abandoned room, or is refused with
	// ErrTooManyRooms. So vanishing hosts cannot fill the server for the
	// minute their rooms wait for them: they make room for the next.
	Rooms, RoomsPerAddress int
}

func (l Limits) withDefaults() Limits {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Joins, 10)
	def(&l.Creates, 5)
	def(&l.Messages, 20)
	defInt(&l.JoinBurst, 10)
	defInt(&l.CreateBurst, 5)
	defInt(&l.MessageBurst, 100)
	defInt(&l.Sockets, 30_000)
	defInt(&l.SocketsPerAddress, 64)
	defInt(&l.Rooms, 20_000)
	defInt(&l.RoomsPerAddress, 3)
	return l
}

// addressLimits are one IP address's buckets, an element of Server.lru.
type addressLimits struct {
	ip           string
	join, create *rate.Limiter
	last         time.Time // last use, to forget idle addresses
}

// ipOf returns the address that limits apply to: the IP of a remote
// address, or for IPv6 its /64, which one subscriber usually has whole.
func ipOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Is4() || ip.Is4In6() {
		return host
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// maxAddresses bounds the addresses the server keeps buckets for (some
// 300 bytes each); past it, the least recently used is forgotten. An
// attacker with that many addresses could so refill the buckets of its
// own, but not lock anyone out.
const maxAddresses = 100_000

// allowLocked reports whether ip may make one more join (or create)
// attempt now, taking a token if so. s.mu held. O(1).
func (s *Server) allowLocked(ip string, join bool) bool {
	now := s.now()
	var a *addressLimits
	if e := s.addresses[ip]; e != nil {
		a = e.Value.(*addressLimits)
		s.lru.MoveToFront(e)
	} else {
		if s.lru.Len() >= maxAddresses {
			s.forgetLocked(s.lru.Back())
		}
		a = &addressLimits{
			ip:     ip,
			join:   rate.NewLimiter(rate.Limit(s.limits.Joins/60), s.limits.JoinBurst),
			create: rate.NewLimiter(rate.Limit(s.limits.Creates/60), s.limits.CreateBurst),
		}
		s.addresses[ip] = s.lru.PushFront(a)
	}
	a.last = now
	if join {
		return a.join.AllowN(now, 1)
	}
	return a.create.AllowN(now, 1)
}

// forgetLocked drops an address's buckets. s.mu held.
func (s *Server) forgetLocked(e *list.Element) {
	delete(s.addresses, s.lru.Remove(e).(*addressLimits).ip)
}

// forgetIdleLocked drops the buckets of addresses idle long enough for
// them to be full again, from the least recently used on. s.mu held.
func (s *Server) forgetIdleLocked() {
	refill := func(burst int, perMinute float64) time.Duration {
		return time.Duration(float64(burst) / perMinute * float64(time.Minute))
	}
	idle := max(refill(s.limits.JoinBurst, s.limits.Joins), refill(s.limits.CreateBurst, s.limits.Creates))
	now := s.now()
	for e := s.lru.Back(); e != nil && now.Sub(e.Value.(*addressLimits).last) > idle; e = s.lru.Back() {
		s.forgetLocked(e)
	}
}
