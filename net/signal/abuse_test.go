package signal

import (
	"context"
	"net"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
)

// countingListener counts the server's connections that are open: accepted
// and not yet closed, hijacked WebSockets included (http.Server's
// ConnState stops tracking a connection once it is hijacked; this does
// not).
type countingListener struct {
	net.Listener
	open atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// newCountingServer is newTestServer with the server's open connections
// counted.
func newCountingServer(t *testing.T, cfg ServerConfig) (*Server, string, *countingListener) {
	t.Helper()
	if _, checked := leakChecked.LoadOrStore(t, true); !checked {
		t.Cleanup(func() { leakChecked.Delete(t); checkNoLeaks(t) })
	}
	s := NewServer(cfg)
	ts := httptest.NewUnstartedServer(s)
	ln := &countingListener{Listener: ts.Listener}
	ts.Listener = ln
	ts.Start()
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
	})
	return s, ts.URL, ln
}

// TestByeFloodClosesConnections: sockets that each send 150 bye (more
// than the message burst, and more error replies than the send queue
// holds) and then go leave no connection open on the server: every way a
// socket ends closes its connection. (Issue 12: 1,000 such sockets left
// 440 descriptors open for good.)
func TestByeFloodClosesConnections(t *testing.T) {
	s, url, ln := newCountingServer(t, ServerConfig{})
	const sockets, byes = 200, 150
	var wg sync.WaitGroup
	for i := range sockets {
		wg.Go(func() {
			ctx := testCtx(t)
			ws, _, err := websocket.Dial(ctx, url+"/ws", nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			// Read what the server sends, as a client would, so that
			// the close handshake can complete.
			go func() {
				for {
					if _, _, err := ws.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			for range byes {
				if ws.Write(ctx, websocket.MessageText, []byte(`{"v":1,"type":"bye"}`)) != nil {
					break // hung up on, as it should be
				}
			}
			if i%2 == 0 {
				ws.Close(websocket.StatusNormalClosure, "")
			} else {
				ws.CloseNow()
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("left open: %d connections, %d sockets", ln.open.Load(), s.sockets())
		}
	})
	waitFor(t, "every connection of the attack to close", func() bool {
		return ln.open.Load() == 0 && s.sockets() == 0
	})
	// The server still serves.
	pair(t, url)
}
