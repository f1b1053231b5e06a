package signal

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// room is a rendezvous of a host and at most one guest. Its fields are
// guarded by Server.mu.
type room struct {
	code  Code
	host  *peer
	guest *peer     // nil while the host waits
	since time.Time // when the host began waiting for a guest
}

// other returns the participant that is not p, or nil.
func (r *room) other(p *peer) *peer {
	if p == r.host {
		return r.guest
	}
	return r.host
}

// expired reports whether the host has waited ttl or longer without a guest.
func (r *room) expired(now time.Time, ttl time.Duration) bool {
	return r.guest == nil && now.Sub(r.since) >= ttl
}

// peer is one client socket on the server. Its handler goroutine reads
// (Server.readLoop) and its writer goroutine writes (Server.writeLoop);
// nothing else touches conn except to close it.
type peer struct {
	conn   *websocket.Conn
	remote string // for the log

	// out feeds the writer; Server.send never blocks on it.
	out chan []byte

	// kill closes the socket at once, dropping what is queued; dead is
	// closed when it has been called.
	kill context.CancelFunc
	dead <-chan struct{}

	// stop is closed by closeWith: the writer then sends what is queued and
	// closes the socket with code and reason.
	stop     chan struct{}
	stopOnce sync.Once
	code     websocket.StatusCode
	reason   string

	writerDone chan struct{} // closed when the writer has returned

	room *room // guarded by Server.mu

	messages *rate.Limiter // messages per second; read loop only
}

// newPeer returns a peer for conn and the context of its reads and writes,
// which p.kill cancels.
func newPeer(conn *websocket.Conn, remote string) (*peer, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	return &peer{
		conn:       conn,
		remote:     remote,
		out:        make(chan []byte, sendQueue),
		kill:       cancel,
		dead:       ctx.Done(),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}, ctx
}

// closeWith asks the writer to flush the queue and close the socket with
// code and reason. Only the first call counts. It does not block.
func (p *peer) closeWith(code websocket.StatusCode, reason string) {
	p.stopOnce.Do(func() {
		p.code, p.reason = code, reason
		close(p.stop)
	})
}
