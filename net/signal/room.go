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

	// The send queue feeds the writer; Server.send never blocks on it. It
	// grows as needed up to maxQueue messages and maxQueueBytes, so an idle
	// socket costs nothing for it. wake tells the writer there is more.
	qmu    sync.Mutex
	queue  [][]byte // from head on
	head   int
	queued int // bytes in queue
	wake   chan struct{}
	// maxQueue is the most messages queued before p is dropped: see
	// Server.queueLimit.
	maxQueue int

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

	messages *rate.Limiter // messages per second; read loop only

	// heard is when anything last came from the client, as time since
	// Server.epoch (Server.hear); writing when the write under way began,
	// or 0.
	heard, writing atomic.Int64
}

// newPeer returns a peer for conn that queues at most maxQueue messages,
// and its context, which p.kill cancels, closing conn.
func newPeer(conn *websocket.Conn, remote string, maxQueue int) (*peer, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	context.AfterFunc(ctx, func() { conn.CloseNow() })
	return &peer{
		conn:       conn,
		remote:     remote,
		wake:       make(chan struct{}, 1),
		maxQueue:   maxQueue,
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

// push queues b for the writer and reports false, queuing nothing, if the
// queue is full (maxQueue messages or maxQueueBytes).
func (p *peer) push(b []byte) bool {
	p.qmu.Lock()
	if len(p.queue)-p.head >= p.maxQueue || p.queued+len(b) > maxQueueBytes {
		p.qmu.Unlock()
		return false
	}
	p.queue = append(p.queue, b)
	p.queued += len(b)
	p.qmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // the writer is awake already
	}
	return true
}

// pop takes the oldest queued message, or returns nil.
func (p *peer) pop() []byte {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	if p.head == len(p.queue) {
		return nil
	}
	b := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	if p.head == len(p.queue) {
		// Empty: keep a small array for the next message, let a large
		// one go.
		p.queue, p.head = p.queue[:0], 0
		if cap(p.queue) > 16 {
			p.queue = nil
		}
	}
	p.queued -= len(b)
	return b
}

// queueLen returns the number of queued messages.
func (p *peer) queueLen() int {
	p.qmu.Lock()
	defer p.qmu.Unlock()
	return len(p.queue) - p.head
}
