package signal

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

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

	// seat is the seat p holds, nil when in no room; partner is whether
	// the other seat is taken, as far as p has been told. Guarded by
	// Server.mu.
	seat    *Seat
	partner bool

	// id tells this socket from another that resumes its seat.
	id string
	// dropped is set when the server drops p for not reading: its seat
	// is given up, not kept for a resume.
	dropped atomic.Bool

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
		id:         newToken(),
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
