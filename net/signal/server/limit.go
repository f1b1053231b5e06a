package server

import (
	"container/list"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
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

// addressLimits are one IP address's buckets, an element of attempts.lru.
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

// attempts are the join and create buckets of the addresses seen lately,
// at most maxAddresses of them. Safe for concurrent use.
type attempts struct {
	limits Limits

	mu        sync.Mutex
	addresses map[string]*list.Element // of lru, by IP (ipOf)
	lru       *list.List               // of *addressLimits, most recently used first
}

func newAttempts(l Limits) *attempts {
	return &attempts{limits: l, addresses: make(map[string]*list.Element), lru: list.New()}
}

// allow reports whether ip may make one more join (or create) attempt at
// now, taking a token if so. O(1).
func (a *attempts) allow(ip string, join bool, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	var l *addressLimits
	if e := a.addresses[ip]; e != nil {
		l = e.Value.(*addressLimits)
		a.lru.MoveToFront(e)
	} else {
		if a.lru.Len() >= maxAddresses {
			a.forgetLocked(a.lru.Back())
		}
		l = &addressLimits{
			ip:     ip,
			join:   rate.NewLimiter(rate.Limit(a.limits.Joins/60), a.limits.JoinBurst),
			create: rate.NewLimiter(rate.Limit(a.limits.Creates/60), a.limits.CreateBurst),
		}
		a.addresses[ip] = a.lru.PushFront(l)
	}
	l.last = now
	if join {
		return l.join.AllowN(now, 1)
	}
	return l.create.AllowN(now, 1)
}

// forgetLocked drops an address's buckets. a.mu held.
func (a *attempts) forgetLocked(e *list.Element) {
	delete(a.addresses, a.lru.Remove(e).(*addressLimits).ip)
}

// forgetIdle drops the buckets of addresses idle long enough at now for
// them to be full again, from the least recently used on.
func (a *attempts) forgetIdle(now time.Time) {
	refill := func(burst int, perMinute float64) time.Duration {
		return time.Duration(float64(burst) / perMinute * float64(time.Minute))
	}
	idle := max(refill(a.limits.JoinBurst, a.limits.Joins), refill(a.limits.CreateBurst, a.limits.Creates))
	a.mu.Lock()
	defer a.mu.Unlock()
	for e := a.lru.Back(); e != nil && now.Sub(e.Value.(*addressLimits).last) > idle; e = a.lru.Back() {
		a.forgetLocked(e)
	}
}

// clientAddr returns the address of r's client: its remote address or,
// when that is a trusted proxy, the right-most address of X-Forwarded-For
// that is not (see Config.TrustedProxies).
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	if len(trusted) == 0 {
		return r.RemoteAddr
	}
	proxy, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !isTrusted(proxy.Addr(), trusted) {
		return r.RemoteAddr
	}
	client := r.RemoteAddr
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // not written by a proxy we trust: keep the last good hop
		}
		client = ip.Unmap().String()
		if !isTrusted(ip, trusted) {
			break
		}
	}
	return client
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
