// Package store keeps the rendezvous server's rooms: the [Store] contract
// between the server (net/signal/server), which does all the protocol,
// and a store, which only keeps seats and carries bytes between them; and
// the store of one process, in memory ([NewMemory]). The store that
// several server instances share, in Redis, is net/signal/store/redisstore,
// a package of its own so that only a binary that offers it links Redis.
//
// Times are passed in, as time.Time from the server's clock; durations
// are in [Config]. Every Store is safe for concurrent use.
package store

import (
	"context"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// Status is what a Store's Tick found for one seat.
type Status uint8

const (
	// StatusOK: the seat is held and its room goes on.
	StatusOK Status = iota
	// StatusExpired: the host waited RoomTTL without a guest; the room is
	// deleted.
	StatusExpired
	// StatusPartnerLeft: the partner's socket dropped more than
	// ResumeGrace ago and it did not resume. A host's room is open for a
	// new guest; a guest's room is deleted.
	StatusPartnerLeft
	// StatusGone: the seat is no longer this holder's (the room was
	// deleted, or the seat given up for it) without it having been told.
	StatusGone
)

// Store keeps rooms and carries messages between their two seats. The
// memory store (NewMemory, the server's default) serves one process; a
// Redis store (redisstore) lets several server instances share rooms, so
// that a host and a guest connected to different instances still meet.
//
// Times are passed in (the server's clock). Methods are safe for
// concurrent use; the errors of Create, Join and Resume are *signal.Error
// values (ErrServerFull, ErrTooManyRooms, ErrRoomNotFound, ErrRoomFull,
// ErrRoomExpired) or, for failures of the store itself, anything else.
//
// A room is abandoned when no socket holds either seat: its host's socket
// dropped (Away) and it has no guest, or its guest's dropped too. Its
// holders may still resume it, but when rooms run short (Config's
// Rooms and RoomsPerAddress) a create takes its place, soonest to expire
// first: vanishing hosts cannot keep the server full.
type Store interface {
	// Bind gives the store the server's room rules and the function that
	// hands a message to the server's local holder of a seat, reporting
	// whether there is one. The server calls it once, before anything
	// else; a store serves one server.
	Bind(cfg Config, deliver func(seat signal.Role, room signal.Code, msg []byte) bool)
	// Create makes a room with the host seat taken by token, for the
	// client at owner (its address, an IPv6 /64), and reports false if
	// code is taken. When
	// owner holds RoomsPerAddress rooms, or the store Rooms, it deletes an
	// abandoned one first (owner's own in the first case), reporting
	// evicted, or fails with ErrTooManyRooms or ErrServerFull.
	Create(ctx context.Context, code signal.Code, token, owner string, now time.Time) (ok, evicted bool, err error)
	// Join takes the guest seat of code with token.
	Join(ctx context.Context, code signal.Code, token string, now time.Time) error
	// Resume finds the seat of code that token holds, and whether the
	// other seat is taken.
	Resume(ctx context.Context, code signal.Code, token string, now time.Time) (role signal.Role, partner bool, err error)
	// Away notes that the socket holding seat dropped without giving it
	// up, which may leave its room abandoned; a later Resume or Tick of
	// the seat undoes it.
	Away(ctx context.Context, seat signal.Seat, now time.Time) error
	// Leave gives up seat: a host's room is deleted, a guest's seat opens
	// and the host's wait starts again.
	Leave(ctx context.Context, seat signal.Seat, now time.Time) error
	// Tick marks seats (all those whose sockets this server holds) as seen
	// now, and held unless Away came for them at now or later, then returns
	// what became of each: see Status.
	Tick(ctx context.Context, seats []signal.Seat, now time.Time) ([]Status, error)
	// Publish hands msg to the server that holds the socket of room's
	// seat, and reports whether one did.
	Publish(ctx context.Context, seat signal.Role, room signal.Code, msg []byte) (bool, error)
	// Attach and Detach start and stop the delivery, through the bound
	// function, of messages published to a seat this server holds.
	Attach(ctx context.Context, seat signal.Role, room signal.Code) error
	Detach(ctx context.Context, seat signal.Role, room signal.Code) error
	// Held reports, for each seat, whether its token still holds it.
	Held(ctx context.Context, seats []signal.Seat) ([]bool, error)
	// Rooms counts the open rooms.
	Rooms(ctx context.Context) (int, error)
	// Health reports whether the store works, for /healthz.
	Health(ctx context.Context) error
	// Close releases the store's resources (not its rooms, which outlive
	// a Redis store's server).
	Close() error
}

// Config are the room rules a Store applies, from the server's config.
type Config struct {
	// TTL is the server's RoomTTL: how long a host may wait for a guest,
	// and how long a room with no one seen in it lives.
	TTL time.Duration
	// Grace is the server's ResumeGrace: how long a seat whose socket
	// dropped is kept for its holder to resume while its partner is there.
	Grace time.Duration
	// Abandon is how long a room with no guest outlives the last sign of
	// its host: the grace, plus the interval at which the server marks
	// the seats of its sockets seen (Tick). A host whose socket dropped
	// so keeps its room for at least the grace.
	Abandon time.Duration
	// Rooms and RoomsPerAddress are the server's Limits: the most rooms
	// in the store and held by one address.
	Rooms, RoomsPerAddress int
}
