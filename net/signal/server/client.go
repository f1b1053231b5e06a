package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/duetapp/duet/net/signal"
)

// client is one client socket on the server. Its handler goroutine reads
// (Server.readLoop) and its writer goroutine writes (Server.writeLoop);
// nothing else touches conn except to close it.
type client struct {
	conn   *websocket.Conn
	remote string       // for the log
	log    *slog.Logger // the server's

	// The send queue feeds the writer; send never blocks on it. It grows
	// as needed up to maxQueue messages and maxQueueBytes, so an idle
	// socket costs nothing for it. wake tells the writer there is more.
	qmu    sync.Mutex
	queue  [][]byte // from head on
	head   int
	queued int // bytes in queue
	wake   chan struct{}
	// maxQueue is the most messages queued before c is dropped: see
	// Server.maxQueue.
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

	// seat is the seat c holds, nil when in no room; partner is whether
	// the other seat is taken, as far as c has been told. Guarded by
	// Server.mu.
	seat    *signal.Seat
	partner bool

	// id tells this socket from another that resumes its seat.
	id string

	messages *rate.Limiter // messages per second; read loop only

	// heard is when anything last came from the client, as time since
	// Server.epoch (hear); writing when the write under way began, or 0.
	heard, writing atomic.Int64
}

// newClient returns a client for conn that queues at most maxQueue
// messages, and its context, which c.kill cancels, closing conn.
func newClient(conn *websocket.Conn, remote string, log *slog.Logger, maxQueue int) (*client, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	context.AfterFunc(ctx, func() { conn.CloseNow() })
	return &client{
		conn:       conn,
		remote:     remote,
		log:        log,
		wake:       make(chan struct{}, 1),
		maxQueue:   maxQueue,
		kill:       cancel,
		dead:       ctx.Done(),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		id:         newToken(),
	}, ctx
}

// hear notes that something came from c's client now; epoch is the
// server's.
func (c *client) hear(epoch time.Time) { c.heard.Store(int64(time.Since(epoch))) }

// closeWith asks the writer to flush the queue and close the socket with
// code and reason. Only the first call counts. It does not block.
func (c *client) closeWith(code websocket.StatusCode, reason string) {
	c.stopOnce.Do(func() {
		c.code, c.reason = code, reason
		close(c.stop)
	})
}

// send queues an encoded message for the writer without blocking; see the
// drop policy on Server.
func (c *client) send(b []byte) {
	select {
	case <-c.dead:
		return
	case <-c.stop:
		return // closing: the writer flushes only what was queued before
	default:
	}
	if !c.push(b) {
		c.log.Warn("signal: dropping a client that does not read its messages", "queued", c.queueLen())
		c.kill()
	}
}

// push queues b for the writer and reports false, queuing nothing, if the
// queue is full (maxQueue messages or maxQueueBytes).
func (c *client) push(b []byte) bool {
	c.qmu.Lock()
	if len(c.queue)-c.head >= c.maxQueue || c.queued+len(b) > maxQueueBytes {
		c.qmu.Unlock()
		return false
	}
	c.queue = append(c.queue, b)
	c.queued += len(b)
	c.qmu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // the writer is awake already
	}
	return true
}

// pop takes the oldest queued message, or returns nil.
func (c *client) pop() []byte {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	if c.head == len(c.queue) {
		return nil
	}
	b := c.queue[c.head]
	c.queue[c.head] = nil
	c.head++
	if c.head == len(c.queue) {
		// Empty: keep a small array for the next message, let a large
		// one go.
		c.queue, c.head = c.queue[:0], 0
		if cap(c.queue) > 16 {
			c.queue = nil
		}
	}
	c.queued -= len(b)
	return b
}

// queueLen returns the number of queued messages.
func (c *client) queueLen() int {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return len(c.queue) - c.head
}
