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
//	server → host   {"v":1,"type":"created","room":"K7QM-3XRT","token":"…"}
//	guest → server  {"v":1,"type":"join","room":"k7qm 3xrt"}
//	server → guest  {"v":1,"type":"joined","room":"K7QM-3XRT","token":"…","iceServers":[…]}
//	server → host   {"v":1,"type":"peer-joined","room":"K7QM-3XRT","iceServers":[…]}
//	host ⇄ guest    offer {sdp}, answer {sdp}, candidate {candidate} (trickle ICE)
//	either → server {"v":1,"type":"bye"}
//	server → other  {"v":1,"type":"peer-left","room":"K7QM-3XRT"}
//	server → either {"v":1,"type":"error","error":{"code":"room-full","message":"…"}}
//	either → server {"v":1,"type":"resume","room":"K7QM-3XRT","token":"…"}
//	server → either {"v":1,"type":"resumed","room":"K7QM-3XRT","token":"…","role":"host","partner":true}
//
// The host creates a room and reads its [Code] to the guest (over the phone,
// say), who joins it. A server with a relay hands each singer its ICE
// servers (STUN, and TURN with credentials of its own) once there is a
// partner, the guest with joined and the host with peer-joined, and
// releases them when the seat is given up ([ServerConfig].ReleaseICE). A room holds two participants: a host and a guest.
// The server relays offer, answer and candidate messages from one
// participant to the other byte for byte. When the guest leaves (bye or a
// closed socket) the host is told peer-left and the room waits for a new
// guest; when the host leaves the room is deleted and the guest is told
// peer-left. A server holds at most [Limits].Rooms rooms, and
// [Limits].RoomsPerAddress from one address; past either, a create takes
// the place of an abandoned room (no socket in either seat: see [Store]),
// and gets [ErrServerFull] or [ErrTooManyRooms] only if there is none.
// (A socket that drops without bye keeps its seat for a while:
// see Resume below.) A room whose host has waited [ServerConfig.RoomTTL] without a
// guest expires: the host gets [ErrRoomExpired] and is disconnected.
//
// # Resume
//
// Media goes peer to peer, so a duet outlives its signaling socket. The
// token that comes with created and joined (128 bits from crypto/rand) lets
// a participant whose socket dropped take its seat back with resume on a
// new socket ([Reconnect] does it with backoff). A socket that drops
// without bye and without a close handshake keeps its seat: while the
// partner is there, for [ServerConfig.ResumeGrace], after which the
// partner is told peer-left; a host alone in its room, for the grace too,
// after which the room is deleted; when both have dropped, as long as the
// room lives ([ServerConfig.RoomTTL] since anyone was last seen). Messages to a
// partner who is away are not queued: the sender gets [ErrPeerAway]. When
// a seat is resumed while its old socket is still open, the old one is
// closed with [StatusReplaced]. On server shutdown, sockets are closed with
// 1001 (going away) and seats are kept: with a Redis store the rooms
// survive a restart (or move to another instance), in memory they do not.
//
// # Scale-out
//
// A [Store] keeps the rooms: in memory by default, in Redis
// ([NewRedisStore]) for several instances behind a load balancer, so a host
// and a guest on different instances still meet; messages then travel
// through Redis pub/sub. Rate limits stay per instance (see [Limits]).
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
// The server queues at most 2×[Limits].MessageBurst+16 messages (1 MiB)
// for each client and drops a client that does not keep up, keeping its
// seat for a resume (see [Server]). It holds at most [Limits].Sockets
// sockets, [Limits].SocketsPerAddress from one address (refusing more
// before the upgrade with 503 and 429), and drops a socket that answers
// no ping for [ServerConfig].PingTimeout (a minute), keeping its seat.
// Behind a reverse proxy, list it in [ServerConfig].TrustedProxies so that
// limits go by each client's address. Serve the handler with
// [NewHTTPServer] (as [Serve] does) for HTTP timeouts.
//
// # Concurrency
//
// A [Server] is an [http.Handler] safe for concurrent use; it runs one
// reading and one writing goroutine per socket and one expiry goroutine,
// all stopped by [Server.Close]. On a client [Conn], Send and Close are safe
// for concurrent use; Create, Join and Recv read from the connection and
// must be called from one goroutine.
package signal
