package server

import (
	"sync"

	"github.com/duetapp/duet/net/signal"
)

// iceLedger keeps the sets of ICE servers (a relay's credentials) handed
// to the holders of seats, to release each set when its seat is given up
// for good. Safe for concurrent use; it calls servers and releaseFunc
// with no lock held.
type iceLedger struct {
	servers     func(remote string) []signal.ICEServer // nil: no ICE servers
	releaseFunc func([]signal.ICEServer)               // may be nil

	mu     sync.Mutex
	grants map[seatKey]iceGrant
}

// iceGrant is the set of ICE servers handed to the holder of one seat,
// kept until the seat is given up.
type iceGrant struct {
	token   string // of the seat's holder
	servers []signal.ICEServer
	here    bool // a socket of this server holds the seat
}

func newICELedger(servers func(string) []signal.ICEServer, release func([]signal.ICEServer)) *iceLedger {
	return &iceLedger{servers: servers, releaseFunc: release, grants: make(map[seatKey]iceGrant)}
}

// grant hands the client at remote, which holds seat, a fresh set of ICE
// servers, if there are any, and releases the set the seat had: it served
// a duet that is over (a new guest joined).
func (l *iceLedger) grant(remote string, seat signal.Seat) []signal.ICEServer {
	if l.servers == nil {
		return nil
	}
	servers := l.servers(remote)
	l.mu.Lock()
	key := keyOf(seat)
	old, had := l.grants[key]
	if len(servers) > 0 {
		l.grants[key] = iceGrant{token: seat.Token, servers: servers, here: true}
	} else {
		delete(l.grants, key)
	}
	l.mu.Unlock()
	if had {
		l.releaseGrant(old)
	}
	return servers
}

// resume returns the ICE servers of a seat resumed with a partner: the
// set it had, if it was handed one here (the duet may still use it), else
// a fresh one.
func (l *iceLedger) resume(remote string, seat signal.Seat) []signal.ICEServer {
	l.mu.Lock()
	g, ok := l.grants[keyOf(seat)]
	if ok && g.token == seat.Token {
		g.here = true
		l.grants[keyOf(seat)] = g
		l.mu.Unlock()
		return g.servers
	}
	l.mu.Unlock()
	return l.grant(remote, seat)
}

// here notes that a socket of this server holds seat (again).
func (l *iceLedger) here(seat signal.Seat) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if g, ok := l.grants[keyOf(seat)]; ok && g.token == seat.Token {
		g.here = true
		l.grants[keyOf(seat)] = g
	}
}

// release releases the ICE servers of seat, which is given up for good.
func (l *iceLedger) release(seat signal.Seat) {
	l.mu.Lock()
	key := keyOf(seat)
	g, ok := l.grants[key]
	mine := ok && g.token == seat.Token
	if mine {
		delete(l.grants, key)
	}
	l.mu.Unlock()
	if mine {
		l.releaseGrant(g)
	}
}

// away notes that no socket of this server holds seat any more (it
// dropped, or resumed elsewhere); forget forgets its set without releasing
// it, for a seat taken over by another server, which hands out its own.
func (l *iceLedger) away(seat signal.Seat, forget bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := keyOf(seat)
	if g, ok := l.grants[key]; ok && g.token == seat.Token {
		if forget {
			delete(l.grants, key)
		} else {
			g.here = false
			l.grants[key] = g
		}
	}
}

// awaySeats returns the seats with a set that no socket here holds.
func (l *iceLedger) awaySeats() []signal.Seat {
	l.mu.Lock()
	defer l.mu.Unlock()
	var seats []signal.Seat
	for key, g := range l.grants {
		if !g.here {
			seats = append(seats, signal.Seat{Room: key.room, Role: key.role, Token: g.token})
		}
	}
	return seats
}

func (l *iceLedger) releaseGrant(g iceGrant) {
	if l.releaseFunc != nil {
		l.releaseFunc(g.servers)
	}
}
