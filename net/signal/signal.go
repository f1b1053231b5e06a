// Package signal is Duet's rendezvous (signaling) server and client: the
// tiny service through which two singers find each other and exchange the
// WebRTC session descriptions and ICE candidates that set up their duet.
// No audio ever passes through it.
//
// # Protocol
//
// A client opens one WebSocket to the server's /ws endpoint and exchanges
// JSON [Message] values with it, one JSON object per WebSocket text message,
// each carrying the protocol [Version] in its "v" field:
//
//	host → server   {"v":1,"type":"create"}
//	server → host   {"v":1,"type":"created","room":"K7QM-3XRT"}
//	guest → server  {"v":1,"type":"join","room":"k7qm 3xrt"}
//	server → guest  {"v":1,"type":"joined","room":"K7QM-3XRT"}
//	server → host   {"v":1,"type":"peer-joined","room":"K7QM-3XRT"}
//	host ⇄ guest    offer {sdp}, answer {sdp}, candidate {candidate} (trickle ICE)
//	either → server {"v":1,"type":"bye"}
//	server → other  {"v":1,"type":"peer-left","room":"K7QM-3XRT"}
//	server → either {"v":1,"type":"error","error":{"code":"room-full","message":"…"}}
//
// The host creates a room and reads its [Code] to the guest (over the phone,
// say), who joins it. A room holds two participants: a host and a guest.
// The server relays offer, answer and candidate messages from one
// participant to the other byte for byte. When the guest leaves (bye or a
// closed socket) the host is told peer-left and the room waits for a new
// guest; when the host leaves the room is deleted and the guest is told
// peer-left. A room whose host has waited [ServerConfig.RoomTTL] without a
// guest expires: the host gets [ErrRoomExpired] and is disconnected.
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
// The server queues at most a fixed number of messages for each client and
// drops a client that does not keep up (see [Server]).
//
// # Concurrency
//
// A [Server] is an [http.Handler] safe for concurrent use; it runs one
// reading and one writing goroutine per socket and one expiry goroutine,
// all stopped by [Server.Close]. On a client [Conn], Send and Close are safe
// for concurrent use; Create, Join and Recv read from the connection and
// must be called from one goroutine.
package signal
