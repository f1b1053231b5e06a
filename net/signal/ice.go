package signal

import "context"

// iceGrant is the set of ICE servers (a relay's credentials) handed to
// the holder of one seat, kept until the seat is given up.
type iceGrant struct {
	token   string // of the seat's holder
	servers []ICEServer
	here    bool // a socket of this server holds the seat
}

// grantICE hands p, which holds seat, a fresh set of ICE servers, if the
// server has any, and releases the set the seat had: it served a duet
// that is over (a new guest joined).
func (s *Server) grantICE(p *peer, seat Seat) []ICEServer {
	if s.iceServers == nil {
		return nil
	}
	servers := s.iceServers(p.remote)
	s.mu.Lock()
	key := seatKey{seat.Role, seat.Room}
	old, had := s.ice[key]
	if len(servers) > 0 {
		s.ice[key] = iceGrant{token: seat.Token, servers: servers, here: true}
	} else {
		delete(s.ice, key)
	}
	s.mu.Unlock()
	if had {
		s.releaseGrant(old)
	}
	return servers
}

// resumeICE returns the ICE servers of a seat resumed with a partner: the
// set it had, if this server handed it one (the duet may still use it),
// else a fresh one.
func (s *Server) resumeICE(p *peer, seat Seat) []ICEServer {
	s.mu.Lock()
	g, ok := s.ice[seatKey{seat.Role, seat.Room}]
	if ok && g.token == seat.Token {
		g.here = true
		s.ice[seatKey{seat.Role, seat.Room}] = g
		s.mu.Unlock()
		return g.servers
	}
	s.mu.Unlock()
	return s.grantICE(p, seat)
}

// releaseICE releases the ICE servers of seat, which is given up for good.
func (s *Server) releaseICE(seat Seat) {
	s.mu.Lock()
	key := seatKey{seat.Role, seat.Room}
	g, ok := s.ice[key]
	if ok && g.token == seat.Token {
		delete(s.ice, key)
	}
	s.mu.Unlock()
	if ok && g.token == seat.Token {
		s.releaseGrant(g)
	}
}

// awayICE notes that no socket of this server holds seat any more (it
// dropped, or resumed elsewhere); forget forgets its set without releasing
// it, for a seat taken over by another server, which hands out its own.
func (s *Server) awayICE(seat Seat, forget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := seatKey{seat.Role, seat.Room}
	if g, ok := s.ice[key]; ok && g.token == seat.Token {
		if forget {
			delete(s.ice, key)
		} else {
			g.here = false
			s.ice[key] = g
		}
	}
}

func (s *Server) releaseGrant(g iceGrant) {
	if s.releaseICEFunc != nil {
		s.releaseICEFunc(g.servers)
	}
}

// releaseAwayICE releases the sets of seats that no socket here holds and
// that the store no longer has: given up by a partner's Tick (the grace
// was over) or expired while no one was there.
func (s *Server) releaseAwayICE() {
	s.mu.Lock()
	var seats []Seat
	for key, g := range s.ice {
		if !g.here {
			seats = append(seats, Seat{Room: key.room, Role: key.role, Token: g.token})
		}
	}
	s.mu.Unlock()
	if len(seats) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	held, err := s.store.Held(ctx, seats)
	cancel()
	if err != nil {
		s.log.Error("signal: cannot check seats", "err", err)
		return
	}
	for i, seat := range seats {
		if !held[i] {
			s.releaseICE(seat)
		}
	}
}
