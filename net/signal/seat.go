package signal

import "github.com/coder/websocket"

// StatusReplaced is the close status of a socket whose seat another socket
// resumed: the participant is back on a new connection.
const StatusReplaced websocket.StatusCode = 4001

// Role is a seat in a room: the host's or the guest's.
type Role uint8

const (
	Host Role = iota
	Guest
)

// String returns RoleHost or RoleGuest.
func (r Role) String() string {
	if r == Host {
		return RoleHost
	}
	return RoleGuest
}

// Other returns the other seat of the room.
func (r Role) Other() Role { return 1 - r }

// Seat names one seat of one room, as held by one participant: what a
// Conn resumes after its socket dropped (Conn.Seat, Reconnect).
type Seat struct {
	Room  Code
	Role  Role
	Token string // the holder's resume token
}
