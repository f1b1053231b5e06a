package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duetapp/duet/net/signal"
)

// timeout bounds every wait in the tests.
const timeout = 10 * time.Second

// testCtx returns a context that ends with the test or after timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// fakeClock is a settable Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 6, 1, 20, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestServer serves a Server on loopback. When the test ends it closes
// the clients, the server and the listener, in that order, and then checks
// that no goroutine of the server, the clients or the websocket library is
// left.
func newTestServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	// Check for leaks once, after every server of the test is closed:
	// cleanups run last registered first.
	if _, checked := leakChecked.LoadOrStore(t, true); !checked {
		t.Cleanup(func() { leakChecked.Delete(t); checkNoLeaks(t) })
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := New(cfg)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
	})
	return s, ts.URL
}

// leakChecked holds the tests whose leak check is registered.
var leakChecked sync.Map

// checkNoLeaks fails t if goroutines of this package or of the websocket
// library are still running after a few seconds.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		leaks := leakedGoroutines()
		if len(leaks) == 0 {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("%d goroutines leaked:\n\n%s", len(leaks), strings.Join(leaks, "\n\n"))
		case <-tick.C:
		}
	}
}

// leakedGoroutines returns the stacks of the goroutines that run code of
// the websocket library or of net/signal's packages (the client, the
// server, the stores) outside the tests.
func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var leaks []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/coder/websocket") || runsSignalCode(g) {
			leaks = append(leaks, g)
		}
	}
	return leaks
}

// runsSignalCode reports whether the goroutine of stack g has a frame of
// net/signal's packages whose source is not a test file.
func runsSignalCode(g string) bool {
	lines := strings.Split(g, "\n")
	for i := 1; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "github.com/duetapp/duet/net/signal") &&
			!strings.Contains(strings.Fields(lines[i+1])[0], "_test.go:") {
			return true
		}
	}
	return false
}

// dial connects a client, closed when the test ends.
func dial(t *testing.T, url string) *signal.Conn {
	t.Helper()
	c, err := connect(testCtx(t), url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Conn.Close: %v", err)
		}
	})
	return c
}

// tcpConns holds the TCP connection under each client that connect made,
// for drop.
var tcpConns sync.Map // *signal.Conn → net.Conn

// connect dials the server at url from the loopback address ip (on Linux
// all of 127/8 is loopback, so each is another client address to the
// server; "" for any) and keeps the client's TCP connection for drop.
func connect(ctx context.Context, url, ip string) (*signal.Conn, error) {
	d := &net.Dialer{}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	var tcp atomic.Value // net.Conn
	keep := func(o *websocket.DialOptions) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				if err == nil {
					tcp.Store(c)
				}
				return c, err
			},
		}}
	}
	c, err := signal.Dial(ctx, url, keep)
	if err != nil {
		return nil, err
	}
	tcpConns.Store(c, tcp.Load())
	return c, nil
}

// drop cuts c's socket as a failed network does: no bye, no close
// handshake.
func drop(t *testing.T, c *signal.Conn) {
	t.Helper()
	tcp, ok := tcpConns.LoadAndDelete(c)
	if !ok {
		t.Fatal("drop: the client was not made by connect")
	}
	tcp.(net.Conn).Close()
}

// recv returns the next message of c, which must have type want.
func recv(t *testing.T, c *signal.Conn, want signal.Type) signal.Message {
	t.Helper()
	m, err := c.Recv(testCtx(t))
	if err != nil {
		t.Fatalf("Recv, waiting for %s: %v", want, err)
	}
	if m.Type != want {
		t.Fatalf("Recv = %+v (error %v), want type %s", m, m.Error, want)
	}
	return m
}

// recvError returns the error of c's next message, which must be an error
// message of the kind want.
func recvError(t *testing.T, c *signal.Conn, want *signal.Error) *signal.Error {
	t.Helper()
	m := recv(t, c, signal.TypeError)
	if m.Error.Code != want.Code {
		t.Fatalf("got error %s (%q), want %s", m.Error.Code, m.Error.Message, want.Code)
	}
	return m.Error
}

// recvClosed checks that c's connection is closed by the server with code.
func recvClosed(t *testing.T, c *signal.Conn, code websocket.StatusCode) {
	t.Helper()
	m, err := c.Recv(testCtx(t))
	if err == nil {
		t.Fatalf("Recv = %+v, want the connection closed with %v", m, code)
	}
	if got := websocket.CloseStatus(err); got != code {
		t.Fatalf("Recv error %v has close status %v, want %v", err, got, code)
	}
}

// pair makes a room with a host and a guest.
func pair(t *testing.T, url string) (host, guest *signal.Conn, code signal.Code) {
	t.Helper()
	host, guest = dial(t, url), dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if m := recv(t, host, signal.TypePeerJoined); m.Room != code.String() {
		t.Errorf("peer-joined room = %q, want %q", m.Room, code)
	}
	return host, guest, code
}

// dialRaw opens a bare WebSocket to the server, to send what Conn won't.
func dialRaw(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(testCtx(t), url+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(readLimit)
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func writeRaw(t *testing.T, ws *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	if err := ws.Write(testCtx(t), typ, []byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func readRaw(t *testing.T, ws *websocket.Conn) signal.Message {
	t.Helper()
	_, data, err := ws.Read(testCtx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := signal.Decode(data)
	if err != nil {
		t.Fatalf("server sent %s: %v", data, err)
	}
	return m
}

// waitFor waits until cond holds, failing t after timeout; what names the
// event for the failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
