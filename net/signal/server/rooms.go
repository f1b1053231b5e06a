package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
)

// handle acts on a valid message m from c; env is m as received after a
// spare byte (see readMessage). Store operations run without Server.mu
// held: they may cross the network.
func (s *Server) handle(c *client, m signal.Message, env []byte) {
	s.metrics.Message(m.Type) // Decode admits known types only
	switch m.Type {
	case signal.TypeCreate, signal.TypeJoin, signal.TypeResume:
		// A resume is a guess at a token as a join is at a code.
		if !s.attempts.allow(ipOf(c.remote), m.Type != signal.TypeCreate, s.now()) {
			s.log.Debug("signal: too many attempts", "type", m.Type, "remote", c.remote)
			s.sendError(c, signal.Errorf(signal.ErrRateLimited, "too many %s attempts from your address: wait a minute and try again", m.Type))
			return
		}
		if seat := s.seatOf(c); seat != nil {
			s.sendError(c, signal.Errorf(signal.ErrAlreadyInRoom,
				"you are already in room %s: leave it before you %s another", seat.Room, m.Type))
			return
		}
		switch m.Type {
		case signal.TypeCreate:
			s.create(c)
		case signal.TypeJoin:
			s.join(c, m.Room)
		default:
			s.resume(c, m.Room, m.Token)
		}
	case signal.TypeOffer, signal.TypeAnswer, signal.TypeCandidate, signal.TypeHangup:
		s.relay(c, m.Type, env)
	case signal.TypeBye:
		if !s.leave(c) {
			s.sendError(c, signal.Errorf(signal.ErrNotInRoom, "you are not in a room, so there is none to leave"))
		}
	default:
		s.sendError(c, signal.Errorf(signal.ErrBadMessage, "%s messages come from the rendezvous server, not from apps", m.Type))
	}
}

// Envelopes of what servers publish to a seat through the Store: one byte
// of kind, then an encoded message (or, for kick, the new socket's id).
const (
	envRelay   = 'm' // an offer, answer or candidate: send as is
	envJoined  = 'j' // peer-joined, to the host
	envLeft    = 'l' // peer-left: to a host its guest left, to a guest its room is gone
	envExpired = 'x' // to a host: its room expired; the socket is closed
	envKick    = 'k' // another socket resumed this seat: close the old one
)

func envelope(kind byte, b []byte) []byte {
	return append([]byte{kind}, b...)
}

// publish hands m to room's seat wherever its socket is, and reports
// whether it arrived.
func (s *Server) publish(kind byte, to signal.Role, room signal.Code, m signal.Message) bool {
	b, err := signal.Encode(m)
	if err != nil {
		s.log.Error("signal: cannot encode a message", "type", m.Type, "err", err)
		return false
	}
	ctx, cancel := storeCtx()
	defer cancel()
	ok, err := s.store.Publish(ctx, to, room, envelope(kind, b))
	if err != nil {
		s.log.Error("signal: cannot publish", "type", m.Type, "err", err)
	}
	return ok
}

// deliver hands what was published to a seat to this server's socket
// holding it, if any. The Store calls it.
func (s *Server) deliver(role signal.Role, room signal.Code, msg []byte) bool {
	if len(msg) == 0 {
		return false
	}
	s.mu.Lock()
	c := s.seats[seatKey{role, room}]
	if c == nil {
		s.mu.Unlock()
		return false
	}
	body := msg[1:]
	var seat signal.Seat
	if c.seat != nil {
		seat = *c.seat
	}
	switch msg[0] {
	case envJoined:
		c.partner = true
	case envLeft:
		c.partner = false
	case envKick:
		if c.id == string(body) {
			s.mu.Unlock()
			return true // the socket that resumed
		}
	}
	s.mu.Unlock()

	switch msg[0] {
	case envRelay:
		c.send(body)
	case envJoined:
		// The host's ICE servers come now that it has a partner.
		s.send(c, signal.Message{Type: signal.TypePeerJoined, Room: room.String(), ICEServers: s.ice.grant(c.remote, seat)})
	case envLeft:
		if role == signal.Guest { // the host left: the room is gone
			if s.release(c, nil) != nil {
				s.ice.release(seat)
			}
		}
		c.send(body)
	case envExpired:
		if s.release(c, nil) != nil {
			s.ice.release(seat)
		}
		c.send(body)
		c.closeWith(websocket.StatusNormalClosure, "room expired")
	case envKick:
		if s.release(c, nil) != nil {
			s.ice.away(seat, true)
		}
		c.closeWith(signal.StatusReplaced, "the seat was resumed on another connection")
	default:
		return false
	}
	return true
}

// seatOf returns a copy of c's seat, or nil.
func (s *Server) seatOf(c *client) *signal.Seat {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.seat == nil {
		return nil
	}
	seat := *c.seat
	return &seat
}

// take gives c the seat and starts delivering its messages here. A socket
// of this server that held the seat before is closed.
func (s *Server) take(c *client, seat signal.Seat, partner bool) error {
	s.mu.Lock()
	key := keyOf(seat)
	old := s.seats[key]
	if old != nil && old != c {
		old.seat = nil
	}
	s.seats[key] = c
	c.seat, c.partner = &seat, partner
	s.mu.Unlock()
	s.ice.here(seat)
	if old != nil && old != c {
		old.closeWith(signal.StatusReplaced, "the seat was resumed on another connection")
		return nil // still attached
	}
	ctx, cancel := storeCtx()
	defer cancel()
	return s.store.Attach(ctx, seat.Role, seat.Room)
}

// release takes c out of its seat here, if it still holds want (nil: any),
// without giving the seat up in the store, and returns the seat.
func (s *Server) release(c *client, want *signal.Seat) *signal.Seat {
	s.mu.Lock()
	seat := c.seat
	if seat == nil || (want != nil && *seat != *want) {
		s.mu.Unlock()
		return nil
	}
	c.seat, c.partner = nil, false
	key := keyOf(*seat)
	if s.seats[key] == c {
		delete(s.seats, key)
	}
	s.mu.Unlock()
	ctx, cancel := storeCtx()
	defer cancel()
	if err := s.store.Detach(ctx, seat.Role, seat.Room); err != nil {
		s.log.Error("signal: cannot detach a seat", "err", err)
	}
	return seat
}

// create makes c a room. Where rooms run short (Limits.Rooms,
// RoomsPerAddress), the store makes room by deleting an abandoned one.
func (s *Server) create(c *client) {
	token := newToken()
	var code signal.Code
	for range 8 { // with 40 random bits, a second try is already rare
		try, err := signal.NewCode(s.rand)
		if err != nil {
			s.log.Error("signal: cannot make a room code", "err", err)
			s.sendError(c, signal.ErrInternal)
			return
		}
		ctx, cancel := storeCtx()
		ok, evicted, err := s.store.Create(ctx, try, token, ipOf(c.remote), s.now())
		cancel()
		switch {
		case errors.Is(err, signal.ErrServerFull):
			s.log.Debug("signal: room cap reached, none abandoned; refusing a room")
			s.sendError(c, signal.Errorf(signal.ErrServerFull,
				"the rendezvous server has its most rooms (%d) open: try again in a few minutes", s.limits.Rooms))
			return
		case errors.Is(err, signal.ErrTooManyRooms):
			s.log.Debug("signal: an address's room cap reached; refusing a room", "remote", c.remote)
			s.sendError(c, signal.Errorf(signal.ErrTooManyRooms,
				"your address already has %d rooms open, the most one may: leave one before you create another", s.limits.RoomsPerAddress))
			return
		case err != nil:
			s.log.Error("signal: cannot create a room", "err", err)
			s.sendError(c, signal.ErrInternal)
			return
		}
		if evicted {
			s.metrics.Evicted()
		}
		if ok {
			code = try
			break
		}
	}
	if code == "" {
		s.log.Error("signal: no free room code found; is Rand random?")
		s.sendError(c, signal.ErrInternal)
		return
	}
	if err := s.take(c, signal.Seat{Room: code, Role: signal.Host, Token: token}, false); err != nil {
		s.log.Error("signal: cannot attach a seat", "err", err)
	}
	s.log.Debug("signal: room created", "room", code, "remote", c.remote)
	s.send(c, signal.Message{Type: signal.TypeCreated, Room: code.String(), Token: token})
}

func (s *Server) join(c *client, room string) {
	code, err := signal.ParseCode(room)
	if err != nil { // Decode has checked it
		s.sendError(c, signal.Errorf(signal.ErrBadMessage, "%s is not a room code", fmt.Sprintf("%.32q", room)))
		return
	}
	token := newToken()
	ctx, cancel := storeCtx()
	err = s.store.Join(ctx, code, token, s.now())
	cancel()
	switch {
	case errors.Is(err, signal.ErrRoomNotFound):
		s.sendError(c, signal.Errorf(signal.ErrRoomNotFound, "room %s not found: check the code with the host", code))
	case errors.Is(err, signal.ErrRoomExpired):
		s.log.Debug("signal: room expired", "room", code)
		s.publish(envExpired, signal.Host, code, signal.Message{Type: signal.TypeError, Error: signal.Errorf(signal.ErrRoomExpired,
			"room %s has expired because no one joined it: create a new room", code)})
		s.sendError(c, signal.Errorf(signal.ErrRoomExpired, "room %s has expired: ask the host for a new code", code))
	case errors.Is(err, signal.ErrRoomFull):
		s.sendError(c, signal.Errorf(signal.ErrRoomFull, "room %s is full: a duet has two singers", code))
	case err != nil:
		s.log.Error("signal: cannot join a room", "err", err)
		s.sendError(c, signal.ErrInternal)
	default:
		seat := signal.Seat{Room: code, Role: signal.Guest, Token: token}
		if err := s.take(c, seat, true); err != nil {
			s.log.Error("signal: cannot attach a seat", "err", err)
		}
		s.log.Debug("signal: guest joined", "room", code, "remote", c.remote)
		s.send(c, signal.Message{Type: signal.TypeJoined, Room: code.String(), Token: token, ICEServers: s.ice.grant(c.remote, seat)})
		s.publish(envJoined, signal.Host, code, signal.Message{Type: signal.TypePeerJoined, Room: code.String()})
	}
}

// resume gives c back the seat that token holds in room.
func (s *Server) resume(c *client, room, token string) {
	code, err := signal.ParseCode(room)
	if err != nil { // Decode has checked it
		s.sendError(c, signal.Errorf(signal.ErrBadMessage, "%s is not a room code", fmt.Sprintf("%.32q", room)))
		return
	}
	ctx, cancel := storeCtx()
	role, partner, err := s.store.Resume(ctx, code, token, s.now())
	cancel()
	switch {
	case errors.Is(err, signal.ErrRoomNotFound):
		s.sendError(c, signal.Errorf(signal.ErrRoomNotFound,
			"room %s has no seat for you any more: it expired or your seat was given up", code))
		return
	case err != nil:
		s.log.Error("signal: cannot resume a seat", "err", err)
		s.sendError(c, signal.ErrInternal)
		return
	}
	seat := signal.Seat{Room: code, Role: role, Token: token}
	if err := s.take(c, seat, partner); err != nil {
		s.log.Error("signal: cannot attach a seat", "err", err)
	}
	// A socket of another server that still holds the seat lets go.
	ctx, cancel = storeCtx()
	s.store.Publish(ctx, role, code, envelope(envKick, []byte(c.id)))
	cancel()
	s.log.Debug("signal: seat resumed", "room", code, "role", role, "remote", c.remote)
	var ice []signal.ICEServer
	if partner {
		ice = s.ice.resume(c.remote, seat)
	}
	s.send(c, signal.Message{Type: signal.TypeResumed, Room: code.String(), Token: token, Role: role.String(), Partner: partner,
		ICEServers: ice})
}

// relay hands env (a message after a spare byte) to c's partner.
func (s *Server) relay(c *client, t signal.Type, env []byte) {
	s.mu.Lock()
	var seat signal.Seat
	in, partner := c.seat != nil, c.partner
	if in {
		seat = *c.seat
	}
	s.mu.Unlock()
	switch {
	case !in:
		s.sendError(c, signal.Errorf(signal.ErrNotInRoom, "you are not in a room yet: create or join one before sending %s", t))
		return
	case !partner:
		s.sendError(c, signal.Errorf(signal.ErrNotInRoom,
			"there is no partner in room %s yet: wait for the other singer to join", seat.Room))
		return
	}
	// No deadline of its own on this path, which every offer, answer and
	// candidate takes (a timer each): the memory store does not wait, and
	// the Redis client's own timeouts bound a publish.
	env[0] = envRelay
	ok, err := s.store.Publish(context.Background(), seat.Role.Other(), seat.Room, env)
	switch {
	case err != nil:
		s.log.Error("signal: cannot relay", "err", err)
		s.sendError(c, signal.ErrInternal)
	case !ok:
		s.sendError(c, signal.Errorf(signal.ErrPeerAway,
			"your partner in room %s is reconnecting to the rendezvous server: the %s was not delivered", seat.Room, t))
	default:
		s.metrics.Relayed(len(env) - 1)
	}
}

// leave gives up c's seat, if it has one, and tells the partner: a leaving
// host deletes the room, a leaving guest opens it for a new guest. It
// reports whether c had a seat.
func (s *Server) leave(c *client) bool {
	seat := s.release(c, nil)
	if seat == nil {
		return false
	}
	ctx, cancel := storeCtx()
	err := s.store.Leave(ctx, *seat, s.now())
	cancel()
	if err != nil {
		s.log.Error("signal: cannot leave a room", "err", err)
	}
	s.ice.release(*seat)
	s.publish(envLeft, seat.Role.Other(), seat.Room, signal.Message{Type: signal.TypePeerLeft, Room: seat.Room.String()})
	if seat.Role == signal.Host {
		s.log.Debug("signal: host left, room deleted", "room", seat.Room, "remote", c.remote)
	} else {
		s.log.Debug("signal: guest left", "room", seat.Room, "remote", c.remote)
	}
	return true
}
