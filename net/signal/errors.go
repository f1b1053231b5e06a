package signal

import (
	"errors"
	"fmt"
)

// Error is an error that travels in a message of type error. Code is stable
// and meant for programs; Message is a sentence meant for a singer.
//
// Errors are compared by Code, so errors.Is(err, ErrRoomFull) holds for any
// room-full error whatever its message.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns the message, or the code when there is no message.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

// Errors sent by the server. The server's replies name the room and read
// as a sentence; these values are for errors.Is.
var (
	// ErrRoomNotFound: no room has the code the guest joined.
	ErrRoomNotFound = &Error{Code: "room-not-found", Message: "room not found: check the code with the host"}
	// ErrRoomFull: the room already has a host and a guest.
	ErrRoomFull = &Error{Code: "room-full", Message: "the room is full: a duet has two singers"}
	// ErrRoomExpired: the host waited RoomTTL without a guest; the room is gone.
	ErrRoomExpired = &Error{Code: "room-expired", Message: "the room expired: the host needs to create a new one"}
	// ErrNotInRoom: the message needs a room (or a partner in it) that the
	// sender does not have.
	ErrNotInRoom = &Error{Code: "not-in-room", Message: "you are not in a room: create or join one first"}
	// ErrAlreadyInRoom: create or join from a socket that is already in a
	// room; send bye first.
	ErrAlreadyInRoom = &Error{Code: "already-in-room", Message: "you are already in a room: leave it first"}
	// ErrPeerAway: the partner's socket dropped and the partner has not
	// come back yet (it has the server's resume grace to resume); the
	// message was not delivered. Try again when the partner is back.
	ErrPeerAway = &Error{Code: "peer-away", Message: "your partner is reconnecting to the rendezvous server: try again in a moment"}
	// ErrBadMessage: the message is not valid JSON, has an unknown type or
	// misses a field its type needs.
	ErrBadMessage = &Error{Code: "bad-message", Message: "the message is malformed"}
	// ErrTooLarge: the message is longer than MaxMessageSize.
	ErrTooLarge = &Error{Code: "too-large", Message: "the message is too large"}
	// ErrVersion: the message is of another protocol version than Version.
	ErrVersion = &Error{Code: "version", Message: "the message is of another protocol version: update Duet"}
	// ErrRateLimited: too many attempts from one address, or too many
	// messages on one socket.
	ErrRateLimited = &Error{Code: "rate-limited", Message: "too many attempts: wait a minute and try again"}
	// ErrServerFull: the server has as many rooms as it may hold
	// (server.Limits.Rooms), none of them abandoned; try again later, or another
	// server.
	ErrServerFull = &Error{Code: "server-full", Message: "the rendezvous server has too many rooms: try again in a few minutes"}
	// ErrTooManyRooms: the address holds as many rooms as one may
	// (server.Limits.RoomsPerAddress), each with someone in it; leave one first.
	ErrTooManyRooms = &Error{Code: "too-many-rooms", Message: "your address has too many rooms open: leave one first"}
	// ErrInternal: the server failed through no fault of the client; try again.
	ErrInternal = &Error{Code: "internal", Message: "the rendezvous server had a problem: try again"}
)

// ErrNegotiation comes from a partner, with hangup: its side could not set
// up the connection it was offered or answered (no codec in common, a
// description it could not take), and gives it up; the message says why.
var ErrNegotiation = &Error{Code: "negotiation-failed", Message: "the two sides could not agree on a connection"}

// ErrClosed is returned by the methods of a Conn after Close.
var ErrClosed = errors.New("signal: connection closed")

// ErrInvalidCode is wrapped by the errors of ParseCode.
var ErrInvalidCode = errors.New("not a room code")

// Errorf returns an *Error with the code of kind and a formatted message:
// the server's replies name the room and say what to do.
func Errorf(kind *Error, format string, args ...any) *Error {
	return &Error{Code: kind.Code, Message: fmt.Sprintf(format, args...)}
}
