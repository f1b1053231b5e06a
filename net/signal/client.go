package signal

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coder/websocket"
)

// byeTimeout bounds the bye that Close sends.
const byeTimeout = time.Second

// readLimit is the websocket library's own limit on a message: a little
// above MaxMessageSize, so that Decode, not the library, finds an oversize
// message and says so.
const readLimit = MaxMessageSize + 1<<10

// Conn is a client's connection to the rendezvous server.
//
// Send and Close are safe for concurrent use. Create, Join and Recv read
// from the connection and must be called from one goroutine. The Conn owns
// a goroutine that reads the socket, so a Recv whose ctx is done leaves the
// connection usable; that goroutine stops when the socket ends or on Close.
type Conn struct {
	ws  *websocket.Conn
	url string // as given to Dial, for errors

	in       chan received // from readLoop; closed when it returns
	readErr  error         // why readLoop returned; read after in is closed
	done     chan struct{} // closed by Close
	readDone chan struct{} // closed when readLoop has returned

	pending []Message // kept by Create or Join for Recv; used by their goroutine only

	mu         sync.Mutex
	inRoom     bool
	host       bool
	seat       Seat // valid while inRoom
	iceServers []ICEServer

	closeOnce sync.Once
	pinging   sync.WaitGroup // pingLoop
}

// received is one message or decoding error from readLoop.
type received struct {
	m   Message
	err error
}

// Dial connects to the rendezvous server at serverURL, given as
// http(s)://host:port or ws(s)://host:port, optionally with a path prefix
// (a bare host:port means http). The WebSocket is at the path's /ws.
func Dial(ctx context.Context, serverURL string, opts ...DialOption) (*Conn, error) {
	u, err := wsURL(serverURL)
	if err != nil {
		return nil, fmt.Errorf("signal: rendezvous server address %q: %w", serverURL, err)
	}
	var do websocket.DialOptions
	for _, o := range opts {
		o(&do)
	}
	ws, resp, err := websocket.Dial(ctx, u, &do)
	if err != nil {
		if why := refusal(resp); why != "" {
			return nil, fmt.Errorf("signal: the rendezvous server at %s refused the connection (HTTP %d): %s: %w",
				serverURL, resp.StatusCode, why, err)
		}
		return nil, fmt.Errorf("signal: cannot reach the rendezvous server at %s: %w", serverURL, err)
	}
	ws.SetReadLimit(readLimit)
	c := &Conn{
		ws:       ws,
		url:      serverURL,
		in:       make(chan received, 16),
		done:     make(chan struct{}),
		readDone: make(chan struct{}),
	}
	go c.readLoop()
	c.pinging.Go(c.pingLoop)
	return c, nil
}

// refusal returns the first line of the body of a refused handshake (the
// server says why there: too many connections, shutting down), cleaned
// for a singer's screen, or "".
func refusal(resp *http.Response) string {
	if resp == nil || resp.Body == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512)) // the library keeps 1 kB of it
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, line))
}

// pingInterval is how often an idle connection is pinged: often enough
// that proxies and NATs (nginx closes idle sockets after 60 s) keep it
// open through a whole song with no signaling.
const pingInterval = 25 * time.Second

// pingLoop pings the server until Close or the socket ends.
func (c *Conn) pingLoop() {
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.readDone:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingInterval)
		c.ws.Ping(ctx) // a dead socket shows up in readLoop
		cancel()
	}
}

// DialOption changes how Dial connects.
type DialOption func(*websocket.DialOptions)

// WithTLSConfig dials https/wss servers with tc, e.g. to trust a private
// certificate authority; the default trusts the system's.
func WithTLSConfig(tc *tls.Config) DialOption {
	return func(o *websocket.DialOptions) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
}

// wsURL returns the WebSocket URL of the server at s.
func wsURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("no host")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/ws") {
		u.Path += "/ws"
	}
	u.RawPath, u.Fragment, u.RawFragment = "", "", ""
	return u.String(), nil
}

// readLoop reads messages for Recv until the socket ends or Close. It
// reads each into one buffer it keeps (Decode copies what it keeps), not a
// new one grown several times.
func (c *Conn) readLoop() {
	defer close(c.readDone)
	defer close(c.in)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.readErr = err
			return
		}
		m, err := Decode(buf.Bytes())
		select {
		case c.in <- received{m, err}:
		case <-c.done:
			return
		}
	}
}

// Create asks for a new room, with this Conn as its host, and returns its
// code. An error reply is returned as an *Error. Messages of other types
// that arrive meanwhile are kept for Recv.
func (c *Conn) Create(ctx context.Context) (Code, error) {
	if err := c.Send(ctx, Message{Type: TypeCreate}); err != nil {
		return "", err
	}
	m, err := c.await(ctx, TypeCreated)
	if err != nil {
		return "", err
	}
	c.setICEServers(m.ICEServers)
	return ParseCode(m.Room) // Decode has checked it
}

// Resume takes back seat, which a socket that dropped held (see Seat),
// and reports whether the other seat of the room is taken: a host that
// was away when its guest joined learns of the guest so. An error reply is
// returned as an *Error: errors.Is(err, ErrRoomNotFound) means the seat is
// gone (the room expired, or the partner gave it up). Messages of other
// types that arrive meanwhile are kept for Recv.
func (c *Conn) Resume(ctx context.Context, seat Seat) (partner bool, err error) {
	if err := c.Send(ctx, Message{Type: TypeResume, Room: seat.Room.String(), Token: seat.Token}); err != nil {
		return false, err
	}
	m, err := c.await(ctx, TypeResumed)
	if err != nil {
		return false, err
	}
	c.setICEServers(m.ICEServers)
	return m.Partner, nil
}

// Seat returns the seat c holds, to resume it on a new connection if this
// one drops, and whether c holds one. Safe for concurrent use.
func (c *Conn) Seat() (Seat, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seat, c.inRoom
}

// Join joins the room with code as its guest. An error reply is returned
// as an *Error: errors.Is(err, ErrRoomNotFound) or ErrRoomFull tell why.
// Messages of other types that arrive meanwhile are kept for Recv.
func (c *Conn) Join(ctx context.Context, code Code) error {
	if err := c.Send(ctx, Message{Type: TypeJoin, Room: code.String()}); err != nil {
		return err
	}
	m, err := c.await(ctx, TypeJoined)
	if err != nil {
		return err
	}
	c.setICEServers(m.ICEServers)
	return nil
}

func (c *Conn) setICEServers(s []ICEServer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.iceServers = s
}

// ICEServers returns the STUN and TURN servers the rendezvous server
// offered, if any: a guest's come with Join, a host's with peer-joined
// (seen by Recv), so a host reads them when its guest has joined, before
// it builds its offer. Safe for concurrent use.
func (c *Conn) ICEServers() []ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.iceServers
}

// await returns the next message of type want, or the next error reply as
// an *Error, keeping other messages for Recv.
func (c *Conn) await(ctx context.Context, want Type) (Message, error) {
	for {
		m, err := c.recv(ctx)
		if err != nil {
			return Message{}, err
		}
		switch m.Type {
		case want:
			return m, nil
		case TypeError:
			return Message{}, m.Error
		}
		c.pending = append(c.pending, m)
	}
}

// Send sends m, setting its version. It is safe for concurrent use. As with
// the WebSocket library underneath, a ctx done in the middle of a write
// closes the connection.
func (c *Conn) Send(ctx context.Context, m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		if c.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("signal: send %s to %s: %w", m.Type, c.url, err)
	}
	if m.Type == TypeBye {
		c.setRoom(false, false)
	}
	return nil
}

// Recv returns the next message from the server. Error replies come as
// messages of type error, not as errors: most concern one message and the
// connection goes on. A message that does not decode is returned as an
// error, and the connection goes on too. When the server closes the
// connection the error wraps a websocket.CloseError; after Close it is
// ErrClosed.
func (c *Conn) Recv(ctx context.Context) (Message, error) {
	if len(c.pending) > 0 {
		m := c.pending[0]
		c.pending = c.pending[1:]
		return m, nil
	}
	return c.recv(ctx)
}

func (c *Conn) recv(ctx context.Context) (Message, error) {
	select {
	case r, ok := <-c.in:
		if !ok {
			if c.isClosed() {
				return Message{}, ErrClosed
			}
			return Message{}, fmt.Errorf("signal: receive from %s: %w", c.url, c.readErr)
		}
		if r.err != nil {
			return Message{}, r.err
		}
		c.track(r.m)
		return r.m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("signal: receive: %w", ctx.Err())
	}
}

// track follows whether c is in a room, for Close.
func (c *Conn) track(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seat := func(role Role) {
		code, _ := ParseCode(m.Room) // Decode has checked it
		c.seat = Seat{Room: code, Role: role, Token: m.Token}
	}
	switch {
	case m.Type == TypeCreated:
		c.inRoom, c.host = true, true
		seat(Host)
	case m.Type == TypeJoined:
		c.inRoom, c.host = true, false
		seat(Guest)
	case m.Type == TypeResumed:
		c.inRoom, c.host = true, m.Role == RoleHost
		if c.host {
			seat(Host)
		} else {
			seat(Guest)
		}
	case m.Type == TypePeerJoined:
		// A host's ICE servers come once it has a partner; an older
		// server sent them with created.
		if len(m.ICEServers) > 0 {
			c.iceServers = m.ICEServers
		}
	case m.Type == TypePeerLeft && !c.host,
		m.Type == TypeError && errors.Is(m.Error, ErrRoomExpired):
		c.inRoom, c.host = false, false
	}
}

func (c *Conn) setRoom(inRoom, host bool) {
	c.mu.Lock()
	c.inRoom, c.host = inRoom, host
	c.mu.Unlock()
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close says bye if c is in a room and closes the connection with status
// 1000 (normal closure). It waits for the close handshake, at most the
// websocket library's 5 s; the socket is closed either way, and a server
// that does not answer (slow, gone, or a path that lost its reply) fails
// nothing: the server takes a closed socket for a bye too, so leaving
// always succeeds and Close returns nil. Close is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		inRoom := c.inRoom
		c.inRoom = false
		c.mu.Unlock()
		if inRoom {
			// This only makes the partner hear of it sooner. Errors do
			// not matter.
			ctx, cancel := context.WithTimeout(context.Background(), byeTimeout)
			if b, err := Encode(Message{Type: TypeBye}); err == nil {
				c.ws.Write(ctx, websocket.MessageText, b)
			}
			cancel()
		}
		close(c.done)
		// Its error is the handshake's (an unanswered close frame ends
		// in "context deadline exceeded"): nothing the caller can act on.
		c.ws.Close(websocket.StatusNormalClosure, "")
		<-c.readDone
		c.pinging.Wait()
	})
	return nil
}
