package signal

import (
	"context"
	"sync"
	"time"
)

// memoryStore is the Store of one process, with rooms in a map: the default,
// needing nothing else at run time. Publish delivers at once through the
// bound function.
type memoryStore struct {
	cfg     StoreConfig
	deliver func(Role, Code, []byte) bool

	mu    sync.Mutex
	rooms map[Code]*memoryRoom
}

// memoryRoom is one room's seats. An empty token is an empty seat.
type memoryRoom struct {
	tokens  [2]string    // by Role
	seen    [2]time.Time // by Role: when the holder's socket was last there
	since   time.Time    // when the host began waiting for a guest
	touched time.Time    // last sign of anyone; the room goes TTL after it
}

// NewMemoryStore returns the store of a single server process, which
// keeps rooms in memory; ServerConfig.Store nil means one of these.
func NewMemoryStore() Store {
	return &memoryStore{rooms: make(map[Code]*memoryRoom)}
}

func (m *memoryStore) Bind(cfg StoreConfig, deliver func(Role, Code, []byte) bool) {
	m.cfg, m.deliver = cfg, deliver
}

// lookupLocked returns the room of code, deleting it if nobody has been
// seen in it for TTL, or it has no guest and its host has not been seen
// for Abandon. m.mu held.
func (m *memoryStore) lookupLocked(code Code, now time.Time) *memoryRoom {
	r := m.rooms[code]
	if r != nil && (now.Sub(r.touched) >= m.cfg.TTL || m.abandoned(r, now)) {
		delete(m.rooms, code)
		return nil
	}
	return r
}

// abandoned reports whether r has no guest and has not seen its host for
// Abandon.
func (m *memoryStore) abandoned(r *memoryRoom, now time.Time) bool {
	return r.tokens[Guest] == "" && now.Sub(r.seen[Host]) > m.cfg.Abandon
}

func (m *memoryStore) Create(_ context.Context, code Code, token string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lookupLocked(code, now) != nil {
		return false, nil
	}
	m.rooms[code] = &memoryRoom{tokens: [2]string{token, ""}, seen: [2]time.Time{now}, since: now, touched: now}
	return true, nil
}

func (m *memoryStore) Join(_ context.Context, code Code, token string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A waiting host's room expires by its own rule, before any other.
	r := m.rooms[code]
	if r != nil && r.tokens[Guest] == "" && (now.Sub(r.since) >= m.cfg.TTL || m.abandoned(r, now)) {
		delete(m.rooms, code)
		return ErrRoomExpired
	}
	r = m.lookupLocked(code, now)
	switch {
	case r == nil:
		return ErrRoomNotFound
	case r.tokens[Guest] != "":
		return ErrRoomFull
	}
	r.tokens[Guest], r.seen[Guest], r.touched = token, now, now
	return nil
}

func (m *memoryStore) Resume(_ context.Context, code Code, token string, now time.Time) (Role, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookupLocked(code, now)
	if r == nil {
		return 0, false, ErrRoomNotFound
	}
	for _, role := range []Role{Host, Guest} {
		if r.tokens[role] == token {
			r.seen[role], r.touched = now, now
			return role, r.tokens[role.other()] != "", nil
		}
	}
	return 0, false, ErrRoomNotFound
}

func (m *memoryStore) Leave(_ context.Context, seat Seat, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookupLocked(seat.Room, now)
	if r == nil || r.tokens[seat.Role] != seat.Token {
		return nil
	}
	if seat.Role == Host {
		delete(m.rooms, seat.Room)
		return nil
	}
	r.tokens[Guest], r.since, r.touched = "", now, now
	return nil
}

func (m *memoryStore) Tick(_ context.Context, seats []Seat, now time.Time) ([]Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// First mark every seat seen, so that two partners on this server do
	// not find each other away however long the clock jumped.
	for _, s := range seats {
		if r := m.rooms[s.Room]; r != nil && r.tokens[s.Role] == s.Token {
			r.seen[s.Role], r.touched = now, now
		}
	}
	st := make([]Status, len(seats))
	for i, s := range seats {
		r := m.rooms[s.Room]
		switch {
		case r == nil || r.tokens[s.Role] != s.Token:
			st[i] = StatusGone
		case s.Role == Host && r.tokens[Guest] == "":
			if now.Sub(r.since) >= m.cfg.TTL {
				delete(m.rooms, s.Room)
				st[i] = StatusExpired
			}
		case now.Sub(r.seen[s.Role.other()]) > m.cfg.Grace:
			if s.Role == Host {
				r.tokens[Guest], r.since = "", now
			} else {
				delete(m.rooms, s.Room)
			}
			st[i] = StatusPartnerLeft
		}
	}
	// Forget rooms no one has been seen in for TTL, and abandoned ones.
	for code := range m.rooms {
		m.lookupLocked(code, now)
	}
	return st, nil
}

func (m *memoryStore) Held(_ context.Context, seats []Seat) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := make([]bool, len(seats))
	for i, s := range seats {
		r := m.rooms[s.Room]
		held[i] = r != nil && r.tokens[s.Role] == s.Token
	}
	return held, nil
}

func (m *memoryStore) Publish(_ context.Context, seat Role, room Code, msg []byte) (bool, error) {
	return m.deliver(seat, room, msg), nil
}

func (m *memoryStore) Attach(context.Context, Role, Code) error { return nil }
func (m *memoryStore) Detach(context.Context, Role, Code) error { return nil }

func (m *memoryStore) Rooms(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms), nil
}

func (m *memoryStore) Health(context.Context) error { return nil }

// Close forgets every room: they live in this process only.
func (m *memoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.rooms)
	return nil
}
