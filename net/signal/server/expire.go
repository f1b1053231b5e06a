package server

import (
	"time"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store"
)

// every calls f every interval until done is closed.
func every(interval time.Duration, done <-chan struct{}, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f()
		case <-done:
			return
		}
	}
}

// expireIdle marks the seats of this server's sockets seen, and acts on
// what the store found: rooms whose host waited RoomTTL expire, partners
// away longer than ResumeGrace have left.
func (s *Server) expireIdle() {
	// The time before the list: a seat whose socket drops after it is
	// marked away after it, which Tick leaves alone.
	now := s.now()
	s.mu.Lock()
	var clients []*client
	var seats []signal.Seat
	for _, c := range s.seats {
		clients = append(clients, c)
		seats = append(seats, *c.seat)
	}
	since := time.Since(s.epoch)
	for c := range s.clients {
		if w := c.writing.Load(); w != 0 && since-time.Duration(w) > writeTimeout {
			s.log.Debug("signal: a write is stuck; dropping the socket", "remote", c.remote)
			c.kill()
		}
	}
	s.mu.Unlock()
	s.attempts.forgetIdle(now)

	ctx, cancel := storeCtx()
	st, err := s.store.Tick(ctx, seats, now)
	cancel()
	if err != nil {
		s.log.Error("signal: cannot mark seats seen", "err", err)
		return
	}
	for i, c := range clients {
		seat := &seats[i]
		left := signal.Message{Type: signal.TypePeerLeft, Room: seat.Room.String()}
		switch st[i] {
		case store.StatusExpired:
			if s.release(c, seat) == nil {
				continue
			}
			s.ice.release(*seat)
			s.log.Debug("signal: room expired", "room", seat.Room, "remote", c.remote)
			s.sendError(c, signal.Errorf(signal.ErrRoomExpired,
				"room %s has expired because no one joined it: create a new room", seat.Room))
			c.closeWith(websocket.StatusNormalClosure, "room expired")
		case store.StatusPartnerLeft:
			s.log.Debug("signal: partner did not come back", "room", seat.Room, "remote", c.remote)
			if seat.Role == signal.Guest {
				if s.release(c, seat) == nil {
					continue
				}
				s.ice.release(*seat)
			} else {
				s.mu.Lock()
				c.partner = false
				s.mu.Unlock()
			}
			s.send(c, left)
		case store.StatusGone:
			if s.release(c, seat) != nil {
				s.ice.release(*seat)
				s.send(c, left)
			}
		}
	}
	// The partners of the seats above whose grace is over, and seats
	// that expired with no one there, had their sockets elsewhere.
	s.releaseAwayICE()
}

// releaseAwayICE releases the ICE servers of seats that no socket here
// holds and that the store no longer has: given up by a partner's Tick
// (the grace was over) or expired while no one was there.
func (s *Server) releaseAwayICE() {
	seats := s.ice.awaySeats()
	if len(seats) == 0 {
		return
	}
	ctx, cancel := storeCtx()
	held, err := s.store.Held(ctx, seats)
	cancel()
	if err != nil {
		s.log.Error("signal: cannot check seats", "err", err)
		return
	}
	for i, seat := range seats {
		if !held[i] {
			s.ice.release(seat)
		}
	}
}
