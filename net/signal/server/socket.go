package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/duetapp/duet/net/signal"
)

// serveWS admits one socket within the caps (Limits.Sockets and
// SocketsPerAddress) and runs it; it returns when the socket's reader and
// writer are done.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	remote := clientAddr(r, s.trusted)
	ip := ipOf(remote)
	s.mu.Lock()
	var refused, reason string
	status := http.StatusServiceUnavailable
	switch {
	case s.closed:
		refused = reasonShutdown
	case s.open >= s.limits.Sockets:
		refused, reason = "the rendezvous server has too many connections: try again in a minute", "server-full"
	case s.openBy[ip] >= s.limits.SocketsPerAddress:
		refused, reason = "too many connections from your address: close some, or try again in a minute", "address-full"
		status = http.StatusTooManyRequests
	}
	if refused != "" {
		s.mu.Unlock()
		if reason != "" {
			s.metrics.Refused(reason)
			s.log.Debug("signal: socket refused", "reason", reason, "remote", remote)
		}
		w.Header().Set("Retry-After", "60")
		http.Error(w, refused, status)
		return
	}
	s.open++
	s.openBy[ip]++
	s.wg.Add(1) // so that Close waits for this handler
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		if s.openBy[ip]--; s.openBy[ip] <= 0 {
			delete(s.openBy, ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	s.runSocket(w, r, remote)
}

// runSocket upgrades r to a WebSocket and serves it: it reads in the
// handler's goroutine and starts the socket's writer, and returns when
// both are done.
func (s *Server) runSocket(w http.ResponseWriter, r *http.Request, remote string) {
	// Anything from the client shows that it is there: see pingTimeout.
	// The callbacks run in c's reads, which start once c is set.
	var c *client
	// The default options check that a browser's Origin matches the host;
	// Duet's native clients send no Origin and are let in.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OnPingReceived: func(context.Context, []byte) bool { c.hear(s.epoch); return true },
		OnPongReceived: func(context.Context, []byte) { c.hear(s.epoch) },
	})
	if err != nil {
		s.log.Debug("signal: websocket upgrade failed", "remote", remote, "err", err)
		return
	}
	conn.SetReadLimit(readLimit)

	// The client's context is not r.Context(), which must not be used once
	// the connection is hijacked.
	c, ctx := newClient(conn, remote, s.log, s.maxQueue)
	c.hear(s.epoch)
	c.messages = rate.NewLimiter(rate.Limit(s.limits.Messages), s.limits.MessageBurst)
	defer c.kill()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, reasonShutdown)
		return
	}
	s.clients[c] = struct{}{}
	s.mu.Unlock()
	s.log.Debug("signal: socket opened", "remote", c.remote)

	s.wg.Go(func() { s.writeLoop(ctx, c) })
	code, reason, leave := s.readLoop(c)

	s.mu.Lock()
	// A socket that drops keeps its seat for a resume, and so does one
	// the server dropped for not reading (its network may be slow: it
	// may come back); one that the client closed, or the server hung up
	// on, gives it up. Shutting down keeps every seat.
	leave = leave && !s.closed
	delete(s.clients, c)
	s.mu.Unlock()
	if leave {
		s.leave(c)
	} else if seat := s.release(c, nil); seat != nil {
		s.ice.away(*seat, false)
		// Its room may now be abandoned, and make room for another.
		ctx, cancel := storeCtx()
		if err := s.store.Away(ctx, *seat, s.now()); err != nil {
			s.log.Error("signal: cannot mark a seat away", "err", err)
		}
		cancel()
	}
	c.closeWith(code, reason)
	<-c.writerDone
	s.log.Debug("signal: socket closed", "remote", c.remote)
}

// readLoop reads and handles c's messages until the socket ends or must be
// closed, and returns the status to close it with and whether c gives up
// its seat: when the client closed the socket with a handshake (1000 or
// 1001) or the server hangs up on it, not when the socket just drops.
func (s *Server) readLoop(c *client) (websocket.StatusCode, string, bool) {
	for {
		// No context of its own either: kill closes the connection.
		typ, r, err := c.conn.Reader(context.Background())
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", c.remote, "err", err)
			st := websocket.CloseStatus(err)
			return websocket.StatusNormalClosure, "", st == websocket.StatusNormalClosure || st == websocket.StatusGoingAway
		}
		env, err := readMessage(r, &s.scratch)
		if err != nil {
			s.log.Debug("signal: socket ended", "remote", c.remote, "err", err)
			return websocket.StatusNormalClosure, "", false
		}
		data := env[1:]
		c.hear(s.epoch)
		if len(data) > signal.MaxMessageSize {
			s.log.Debug("signal: message too large", "remote", c.remote)
			s.sendError(c, signal.Errorf(signal.ErrTooLarge,
				"the message is larger than the limit of %d bytes, so the rendezvous server hung up", signal.MaxMessageSize))
			return websocket.StatusMessageTooBig, "message too big", true
		}
		if !c.messages.AllowN(s.now(), 1) {
			s.log.Debug("signal: socket sends too fast; hanging up", "remote", c.remote)
			s.sendError(c, signal.Errorf(signal.ErrRateLimited, "you sent more than %v messages a second, so the rendezvous server hung up", s.limits.Messages))
			return websocket.StatusPolicyViolation, "too many messages", true
		}
		if typ != websocket.MessageText {
			s.sendError(c, signal.Errorf(signal.ErrBadMessage, "messages must be JSON text, not binary"))
			continue
		}
		m, err := signal.Decode(data)
		if err != nil {
			s.log.Debug("signal: bad message", "remote", c.remote, "err", err)
			e := signal.ErrBadMessage
			errors.As(err, &e)
			s.sendError(c, e)
			continue
		}
		s.handle(c, m, env)
	}
}

// readMessage reads a message of up to MaxMessageSize+1 bytes from r into
// a slice of its size after one spare byte, for its envelope when it is
// relayed: one allocation, not the several of io.ReadAll nor a copy to
// envelope it. scratch is a pool of *bytes.Buffer.
func readMessage(r io.Reader, scratch *sync.Pool) ([]byte, error) {
	buf := scratch.Get().(*bytes.Buffer)
	defer scratch.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(r, signal.MaxMessageSize+1)); err != nil {
		return nil, err
	}
	env := make([]byte, 1+buf.Len())
	copy(env[1:], buf.Bytes())
	return env, nil
}

// writeLoop is c's only writer. It sends queued messages until c is
// stopped (then it flushes the queue and closes the socket with c's close
// code) or killed. Whichever way it ends, the connection is closed when it
// returns: a write that fails on a killed context (before the library
// takes its lock) leaves the connection open otherwise, and its descriptor
// with it.
func (s *Server) writeLoop(ctx context.Context, c *client) {
	defer close(c.writerDone)
	defer c.conn.CloseNow() // after Close, a no-op
	write := func(b []byte) bool {
		// No deadline of its own (it costs a timer and a callback per
		// message): expireIdle drops a socket whose write is stuck, and
		// kill closes the connection under it.
		c.writing.Store(int64(time.Since(s.epoch)))
		err := c.conn.Write(context.Background(), websocket.MessageText, b)
		c.writing.Store(0)
		if err != nil {
			s.log.Debug("signal: write failed", "remote", c.remote, "err", err)
			c.kill()
			return false
		}
		return true
	}
	flush := func() bool {
		for b := c.pop(); b != nil; b = c.pop() {
			if !write(b) {
				return false
			}
		}
		return true
	}
	// A socket silent for half the ping timeout is pinged, and dropped if
	// no pong comes in the other half.
	half := s.pingTimeout / 2
	ping := time.NewTimer(half)
	defer ping.Stop()
	for {
		select {
		case <-ping.C:
			if quiet := time.Since(s.epoch) - time.Duration(c.heard.Load()); quiet < half {
				ping.Reset(half - quiet)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, half)
			err := c.conn.Ping(pctx)
			cancel()
			if err != nil {
				s.log.Debug("signal: no answer to a ping; dropping the socket", "remote", c.remote, "err", err)
				s.metrics.PingTimeout()
				c.kill()
				return
			}
			ping.Reset(half)
		case <-c.wake:
			if !flush() {
				return
			}
		case <-c.stop:
			if flush() {
				c.conn.Close(c.code, c.reason)
			}
			return
		case <-ctx.Done():
			c.conn.CloseNow()
			return
		}
	}
}

// send queues m for c without blocking; see the drop policy on Server.
func (s *Server) send(c *client, m signal.Message) {
	b, err := signal.Encode(m)
	if err != nil {
		s.log.Error("signal: cannot encode a reply", "type", m.Type, "err", err)
		return
	}
	c.send(b)
}

// sendError queues an error message for c.
func (s *Server) sendError(c *client, e *signal.Error) {
	s.metrics.Rejected(e.Code)
	s.send(c, signal.Message{Type: signal.TypeError, Error: e})
}
