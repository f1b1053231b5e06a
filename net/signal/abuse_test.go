package signal

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
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
// than the message burst: the server hangs up on them) and then go, half
// with a close handshake and half without, leave no connection open on
// the server: every way a socket ends closes its connection. (Issue 12:
// 1,000 such sockets left 440 descriptors open for good.)
func TestByeFloodClosesConnections(t *testing.T) {
	s, url, ln := newCountingServer(t, ServerConfig{})
	const sockets, byes, width = 120, 150, 12
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Go(func() {
			for i := range next {
				byeFlood(t, url, byes, i%2 == 0)
			}
		})
	}
	for i := range sockets {
		next <- i
	}
	close(next)
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

// byeFlood opens a socket, sends n bye on it and closes it, with the close
// handshake or without.
func byeFlood(t *testing.T, url string, n int, handshake bool) {
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
	for range n {
		if ws.Write(ctx, websocket.MessageText, []byte(`{"v":1,"type":"bye"}`)) != nil {
			break // hung up on, as it should be
		}
	}
	if handshake {
		ws.Close(websocket.StatusNormalClosure, "")
	} else {
		ws.CloseNow()
	}
}

// TestQueueHoldsBursts: the send queue holds the most that a socket can
// be sent before its writer runs again: the partner's whole message burst
// relayed, and a reply to each message of its own burst. (Issue 12: the
// queue held 64 and the burst was 100, so a partner's 99 candidates
// dropped the host.)
func TestQueueHoldsBursts(t *testing.T) {
	_, ws := acceptedSocket(t)
	s := NewServer(ServerConfig{})
	defer s.Close()
	p, _ := newPeer(ws, "test", s.queueLimit())
	defer p.kill()
	burst := s.limits.MessageBurst
	for i := range 2 * burst {
		s.send(p, Message{Type: TypeCandidate, Candidate: &Candidate{Candidate: strconv.Itoa(i)}})
	}
	select {
	case <-p.dead:
		t.Fatalf("a socket sent %d messages before its writer ran was dropped", 2*burst)
	default:
	}
}

// TestPartnerBurstKeepsRoom: a guest's back-to-back candidates, up to its
// burst, all reach the host, and the room stays.
func TestPartnerBurstKeepsRoom(t *testing.T) {
	// The default message limits, and room for nine rooms.
	s, url := newTestServer(t, ServerConfig{Limits: Limits{Creates: 60, CreateBurst: 9}})
	for trial := range 9 {
		host, guest, _ := pair(t, url)
		burst := s.limits.MessageBurst - 1
		for i := range burst {
			if err := guest.Send(testCtx(t), Message{Type: TypeCandidate, Candidate: &Candidate{Candidate: strconv.Itoa(i)}}); err != nil {
				t.Fatalf("trial %d: Send: %v", trial, err)
			}
		}
		for i := range burst {
			if m := recv(t, host, TypeCandidate); m.Candidate.Candidate != strconv.Itoa(i) {
				t.Fatalf("trial %d: candidate %d is %q", trial, i, m.Candidate.Candidate)
			}
		}
		host.Close()
		guest.Close()
	}
}

// acceptedSocket returns the two ends of a WebSocket: the client's and the
// server's.
func acceptedSocket(t *testing.T) (client, server *websocket.Conn) {
	t.Helper()
	accepted := make(chan *websocket.Conn, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ws, err := websocket.Accept(w, r, nil); err == nil {
			accepted <- ws
		}
	}))
	t.Cleanup(ts.Close)
	client = dialRaw(t, ts.URL)
	select {
	case server = <-accepted:
	case <-testCtx(t).Done():
		t.Fatal("no connection accepted")
	}
	t.Cleanup(func() { server.CloseNow() })
	return client, server
}
