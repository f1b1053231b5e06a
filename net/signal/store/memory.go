package store

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// memoryStore is the Store of one process, with rooms in a map: the
// server's default, needing nothing else at run time. Publish delivers at once through the
// bound function.
type memoryStore struct {
	cfg     Config
	deliver func(signal.Role, signal.Code, []byte) bool

	mu    sync.Mutex
	rooms map[signal.Code]*memoryRoom
	owned map[string][]*memoryRoom // by owner: at most RoomsPerAddress each
	// abandoned are the rooms no socket holds a seat of, soonest to
	// expire first: the ones a create may take the place of.
	abandoned roomHeap
}

// memoryRoom is one room's seats. An empty token is an empty seat.
type memoryRoom struct {
	code    signal.Code
	owner   string       // the address that created it
	tokens  [2]string    // by signal.Role
	seen    [2]time.Time // by signal.Role: when the holder's socket was last there
	away    [2]time.Time // by signal.Role: when its socket dropped; zero while held
	since   time.Time    // when the host began waiting for a guest
	touched time.Time    // last sign of anyone; the room goes TTL after it
	ends    time.Time    // when it expires if no one comes back (abandoned only)
	idx     int          // in memoryStore.abandoned, or -1
}

// NewMemory returns the store of a single server process, which keeps
// rooms in memory; a server given no store makes one of these.
func NewMemory() Store {
	return &memoryStore{rooms: make(map[signal.Code]*memoryRoom), owned: make(map[string][]*memoryRoom)}
}

func (m *memoryStore) Bind(cfg Config, deliver func(signal.Role, signal.Code, []byte) bool) {
	m.cfg, m.deliver = cfg, deliver
}

// lookupLocked returns the room of code, deleting it if nobody has been
// seen in it for TTL, or it has no guest and its host has not been seen
// for Abandon. m.mu held.
func (m *memoryStore) lookupLocked(code signal.Code, now time.Time) *memoryRoom {
	r := m.rooms[code]
	if r != nil && (now.Sub(r.touched) >= m.cfg.TTL || m.deserted(r, now)) {
		m.deleteLocked(r)
		return nil
	}
	return r
}

// deserted reports whether r has no guest and has not seen its host for
// Abandon.
func (m *memoryStore) deserted(r *memoryRoom, now time.Time) bool {
	return r.tokens[signal.Guest] == "" && now.Sub(r.seen[signal.Host]) > m.cfg.Abandon
}

// deleteLocked forgets r. m.mu held.
func (m *memoryStore) deleteLocked(r *memoryRoom) {
	delete(m.rooms, r.code)
	if r.idx >= 0 {
		heap.Remove(&m.abandoned, r.idx)
	}
	mine := m.owned[r.owner]
	if i := slices.Index(mine, r); i >= 0 {
		mine = slices.Delete(mine, i, i+1)
	}
	if len(mine) == 0 {
		delete(m.owned, r.owner)
	} else {
		m.owned[r.owner] = mine
	}
}

// evictable reports whether no socket holds a seat of r.
func evictable(r *memoryRoom) bool {
	return !r.away[signal.Host].IsZero() && (r.tokens[signal.Guest] == "" || !r.away[signal.Guest].IsZero())
}

// updateLocked puts r among the abandoned rooms or takes it out, after a
// change of its seats. m.mu held.
func (m *memoryStore) updateLocked(r *memoryRoom) {
	if !evictable(r) {
		if r.idx >= 0 {
			heap.Remove(&m.abandoned, r.idx)
		}
		return
	}
	// The rules of lookupLocked, which nobody's sign will now put off.
	r.ends = r.touched.Add(m.cfg.TTL)
	if end := r.seen[signal.Host].Add(m.cfg.Abandon); r.tokens[signal.Guest] == "" && end.Before(r.ends) {
		r.ends = end
	}
	if r.idx < 0 {
		heap.Push(&m.abandoned, r)
	} else {
		heap.Fix(&m.abandoned, r.idx)
	}
}

func (m *memoryStore) Create(_ context.Context, code signal.Code, token, owner string, now time.Time) (bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lookupLocked(code, now) != nil {
		return false, false, nil
	}
	// The owner's rooms that went on their own do not count.
	for _, r := range slices.Clone(m.owned[owner]) {
		m.lookupLocked(r.code, now)
	}
	var victim *memoryRoom
	if mine := m.owned[owner]; len(mine) >= m.cfg.RoomsPerAddress {
		for _, r := range mine {
			if r.idx >= 0 && (victim == nil || r.ends.Before(victim.ends)) {
				victim = r
			}
		}
		if victim == nil {
			return false, false, signal.ErrTooManyRooms
		}
	} else if len(m.rooms) >= m.cfg.Rooms {
		if len(m.abandoned) == 0 {
			return false, false, signal.ErrServerFull
		}
		victim = m.abandoned[0]
	}
	if victim != nil {
		m.deleteLocked(victim)
	}
	r := &memoryRoom{code: code, owner: owner, tokens: [2]string{token, ""}, seen: [2]time.Time{now}, since: now, touched: now, idx: -1}
	m.rooms[code] = r
	m.owned[owner] = append(m.owned[owner], r)
	// A room that was past its time anyway was not evicted.
	return true, victim != nil && victim.ends.After(now), nil
}

func (m *memoryStore) Join(_ context.Context, code signal.Code, token string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A waiting host's room expires by its own rule, before any other.
	r := m.rooms[code]
	if r != nil && r.tokens[signal.Guest] == "" && (now.Sub(r.since) >= m.cfg.TTL || m.deserted(r, now)) {
		m.deleteLocked(r)
		return signal.ErrRoomExpired
	}
	r = m.lookupLocked(code, now)
	switch {
	case r == nil:
		return signal.ErrRoomNotFound
	case r.tokens[signal.Guest] != "":
		return signal.ErrRoomFull
	}
	r.tokens[signal.Guest], r.seen[signal.Guest], r.away[signal.Guest], r.touched = token, now, time.Time{}, now
	m.updateLocked(r)
	return nil
}

func (m *memoryStore) Resume(_ context.Context, code signal.Code, token string, now time.Time) (signal.Role, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookupLocked(code, now)
	if r == nil {
		return 0, false, signal.ErrRoomNotFound
	}
	for _, role := range []signal.Role{signal.Host, signal.Guest} {
		if r.tokens[role] == token {
			r.seen[role], r.away[role], r.touched = now, time.Time{}, now
			m.updateLocked(r)
			return role, r.tokens[role.Other()] != "", nil
		}
	}
	return 0, false, signal.ErrRoomNotFound
}

func (m *memoryStore) Away(_ context.Context, seat signal.Seat, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookupLocked(seat.Room, now)
	if r == nil || r.tokens[seat.Role] != seat.Token {
		return nil
	}
	r.away[seat.Role] = now
	m.updateLocked(r)
	return nil
}

func (m *memoryStore) Leave(_ context.Context, seat signal.Seat, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.lookupLocked(seat.Room, now)
	if r == nil || r.tokens[seat.Role] != seat.Token {
		return nil
	}
	if seat.Role == signal.Host {
		m.deleteLocked(r)
		return nil
	}
	r.tokens[signal.Guest], r.away[signal.Guest], r.since, r.touched = "", time.Time{}, now, now
	m.updateLocked(r)
	return nil
}

func (m *memoryStore) Tick(_ context.Context, seats []signal.Seat, now time.Time) ([]Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// First mark every seat seen, so that two partners on this server do
	// not find each other away however long the clock jumped.
	for _, s := range seats {
		if r := m.rooms[s.Room]; r != nil && r.tokens[s.Role] == s.Token {
			r.seen[s.Role], r.touched = now, now
			if r.away[s.Role].Before(now) { // not a drop after the server listed the seat
				r.away[s.Role] = time.Time{}
			}
			m.updateLocked(r)
		}
	}
	st := make([]Status, len(seats))
	for i, s := range seats {
		r := m.rooms[s.Room]
		switch {
		case r == nil || r.tokens[s.Role] != s.Token:
			st[i] = StatusGone
		case s.Role == signal.Host && r.tokens[signal.Guest] == "":
			if now.Sub(r.since) >= m.cfg.TTL {
				m.deleteLocked(r)
				st[i] = StatusExpired
			}
		case now.Sub(r.seen[s.Role.Other()]) > m.cfg.Grace:
			if s.Role == signal.Host {
				r.tokens[signal.Guest], r.away[signal.Guest], r.since = "", time.Time{}, now
				m.updateLocked(r)
			} else {
				m.deleteLocked(r)
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

func (m *memoryStore) Held(_ context.Context, seats []signal.Seat) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	held := make([]bool, len(seats))
	for i, s := range seats {
		r := m.rooms[s.Room]
		held[i] = r != nil && r.tokens[s.Role] == s.Token
	}
	return held, nil
}

func (m *memoryStore) Publish(_ context.Context, seat signal.Role, room signal.Code, msg []byte) (bool, error) {
	return m.deliver(seat, room, msg), nil
}

func (m *memoryStore) Attach(context.Context, signal.Role, signal.Code) error { return nil }
func (m *memoryStore) Detach(context.Context, signal.Role, signal.Code) error { return nil }

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
	clear(m.owned)
	m.abandoned = nil
	return nil
}

// roomHeap is a container/heap of rooms, soonest to end first, each
// knowing its index.
type roomHeap []*memoryRoom

func (h roomHeap) Len() int           { return len(h) }
func (h roomHeap) Less(i, j int) bool { return h[i].ends.Before(h[j].ends) }
func (h roomHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *roomHeap) Push(x any) {
	r := x.(*memoryRoom)
	r.idx = len(*h)
	*h = append(*h, r)
}
func (h *roomHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	old[len(old)-1], r.idx = nil, -1
	*h = old[:len(old)-1]
	return r
}
