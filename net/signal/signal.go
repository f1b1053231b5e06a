// Package signal is the protocol and the client of Duet's rendezvous
// (signaling) service: the tiny service through which two singers find
// each other and exchange the WebRTC session descriptions and ICE
// candidates that set up their duet. No audio ever passes through it.
//
// # Protocol
//
// A client opens one WebSocket to the server's /ws endpoint and exchanges
// JSON [Message] values with it, one JSON object per WebSocket text message,
// each carrying the protocol [Version] in its "v" field:
//
//	host → server   {"v":1,"type":"create"}
//	server → host   {"v":1,"type":"created","room":"K7QM-3XRT","token":"…"}
//	guest → server  {"v":1,"type":"join","room":"k7qm 3xrt"}
//	server → guest  {"v":1,"type":"joined","room":"K7QM-3XRT","token":"…","iceServers":[…]}
//	server → host   {"v":1,"type":"peer-joined","room":"K7QM-3XRT","iceServers":[…]}
//	host ⇄ guest    offer {sdp}, answer {sdp}, candidate {candidate} (trickle ICE)
//	host ⇄ guest    hangup {error} (the sender could not take the offer or answer)
//	either → server {"v":1,"type":"bye"}
//	server → other  {"v":1,"type":"peer-left","room":"K7QM-3XRT"}
//	server → either {"v":1,"type":"error","error":{"code":"room-full","message":"…"}}
//	either → server {"v":1,"type":"resume","room":"K7QM-3XRT","token":"…"}
//	server → either {"v":1,"type":"resumed","room":"K7QM-3XRT","token":"…","role":"host","partner":true}
//
// The host creates a room and reads its [Code] to the guest (over the phone,
// say), who joins it. A room holds two participants: a host and a guest.
// A server with a relay hands each singer its ICE servers (STUN, and TURN
// with credentials of its own) once there is a partner, the guest with
// joined and the host with peer-joined. The server relays offer, answer
// and candidate messages from one participant to the other byte for byte,
// and hangup, with which a side that could not set up the connection (no
// codec in common, say) tells the other at once, [ErrNegotiation] and why.
// When the guest leaves (bye or a closed socket) the host is told
// peer-left and the room waits for a new guest; when the host leaves the
// room is deleted and the guest is told peer-left. A room whose host has
// waited too long without a guest expires: the host gets [ErrRoomExpired]
// and is disconnected. A server that holds as many rooms as it may
// answers a create with [ErrServerFull], or [ErrTooManyRooms] for an
// address that holds its share.
//
// # Resume
//
// Media goes peer to peer, so a duet outlives its signaling socket. The
// token that comes with created and joined (128 bits from crypto/rand) lets
// a participant whose socket dropped take its [Seat] back with resume on a
// new socket ([Reconnect] does it with backoff). A socket that drops
// without bye and without a close handshake keeps its seat for a grace
// period, after which the partner is told peer-left. Messages to a
// partner who is away are not queued: the sender gets [ErrPeerAway]. When
// a seat is resumed while its old socket is still open, the old one is
// closed with [StatusReplaced]. A server that shuts down closes sockets
// with 1001 (going away) and keeps seats ([Resumable] holds).
//
// Errors travel as messages of type error whose [Error] has a stable code
// (see the Err* values) and a message meant to be shown to a singer.
// A malformed message gets an error reply and leaves the socket open.
//
// # Limits
//
// A message is at most [MaxMessageSize] bytes. A larger one gets an
// [ErrTooLarge] reply and the socket is closed with status 1009 (message
// too big). Room codes are 8 Crockford base32 symbols, 40 random bits.
// Too many attempts from one address, or messages on one socket, get
// [ErrRateLimited].
//
// # Packages
//
// This package is what a singer's app links: the protocol and the client
// ([Dial], [Conn], [Reconnect]). The server is net/signal/server, its room
// stores net/signal/store (in memory) and net/signal/store/redisstore
// (shared through Redis), and its Prometheus figures
// net/signal/server/prommetrics: only a server binary links those.
//
// # Concurrency
//
// On a [Conn], Send, Seat, ICEServers and Close are safe for concurrent
// use; Create, Join, Resume and Recv read from the connection and must be
// called from one goroutine. A Conn runs one reading and one pinging
// goroutine, both stopped by Close.
package signal
