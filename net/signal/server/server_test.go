package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duetapp/duet/net/signal"
)

func TestRelay(t *testing.T) {
	s, url := newTestServer(t, Config{})
	host, guest, _ := pair(t, url)
	if got := s.Rooms(); got != 1 {
		t.Errorf("Rooms() = %d, want 1", got)
	}

	largest := strings.Repeat("a", signal.MaxMessageSize-len(`{"v":1,"type":"offer","sdp":""}`))
	steps := []struct {
		from, to *signal.Conn
		m        signal.Message
	}{
		{host, guest, signal.Message{Type: signal.TypeOffer, SDP: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}},
		{guest, host, signal.Message{Type: signal.TypeAnswer, SDP: "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}},
		{host, guest, signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
			Candidate:        "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
			SDPMid:           new("0"),
			SDPMLineIndex:    new(uint16(0)),
			UsernameFragment: new("h0st"),
		}}},
		{guest, host, signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
			Candidate:     "candidate:2 1 udp 1694498815 192.0.2.7 6000 typ srflx raddr 0.0.0.0 rport 0",
			SDPMLineIndex: new(uint16(1)),
		}}},
		{guest, host, signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{}}}, // end of candidates
		{host, guest, signal.Message{Type: signal.TypeOffer, SDP: largest}},
	}
	for i, st := range steps {
		if err := st.from.Send(testCtx(t), st.m); err != nil {
			t.Fatalf("step %d: Send: %v", i, err)
		}
		got := recv(t, st.to, st.m.Type)
		want := st.m
		want.V = signal.Version
		if !equalMessages(got, want) {
			t.Errorf("step %d: relayed %+v, want %+v", i, got, want)
		}
	}
}

func equalMessages(a, b signal.Message) bool {
	ea, _ := signal.Encode(a)
	eb, _ := signal.Encode(b)
	return a.V == b.V && bytes.Equal(ea, eb)
}

func TestJoinUnknownRoom(t *testing.T) {
	_, url := newTestServer(t, Config{})
	c := dial(t, url)
	code, err := signal.ParseCode("K7QM-3XRT")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Join(testCtx(t), code)
	if !errors.Is(err, signal.ErrRoomNotFound) {
		t.Fatalf("Join(unknown) = %v, want ErrRoomNotFound", err)
	}
	var e *signal.Error
	if !errors.As(err, &e) || !strings.Contains(e.Message, "K7QM-3XRT") {
		t.Errorf("Join(unknown) error %q does not name the code", err)
	}
	// The socket stays usable.
	if _, err := c.Create(testCtx(t)); err != nil {
		t.Errorf("Create after a failed Join: %v", err)
	}
}

func TestRoomFull(t *testing.T) {
	_, url := newTestServer(t, Config{})
	_, _, code := pair(t, url)
	third := dial(t, url)
	err := third.Join(testCtx(t), code)
	if !errors.Is(err, signal.ErrRoomFull) {
		t.Fatalf("third Join = %v, want ErrRoomFull", err)
	}
	if want := "room " + code.String() + " is full: a duet has two singers"; err.Error() != want {
		t.Errorf("third Join error %q, want %q", err, want)
	}
}

func TestNeedsRoom(t *testing.T) {
	_, url := newTestServer(t, Config{})
	c := dial(t, url)
	ctx := testCtx(t)
	send := func(m signal.Message) {
		t.Helper()
		if err := c.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	send(signal.Message{Type: signal.TypeOffer, SDP: "v=0\r\n"})
	if e := recvError(t, c, signal.ErrNotInRoom); !strings.Contains(e.Message, "create or join") {
		t.Errorf("offer before create: %q", e.Message)
	}
	send(signal.Message{Type: signal.TypeBye})
	recvError(t, c, signal.ErrNotInRoom)

	code, err := c.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{Candidate: "x"}})
	if e := recvError(t, c, signal.ErrNotInRoom); !strings.Contains(e.Message, "no partner in room "+code.String()) {
		t.Errorf("candidate without partner: %q", e.Message)
	}
	if _, err := c.Create(ctx); !errors.Is(err, signal.ErrAlreadyInRoom) {
		t.Errorf("second Create = %v, want ErrAlreadyInRoom", err)
	}
	if err := c.Join(ctx, code); !errors.Is(err, signal.ErrAlreadyInRoom) {
		t.Errorf("Join of own room = %v, want ErrAlreadyInRoom", err)
	}
	send(signal.Message{Type: signal.TypePeerLeft})
	recvError(t, c, signal.ErrBadMessage)
}

func TestMalformedMessage(t *testing.T) {
	_, url := newTestServer(t, Config{})
	host, guest, _ := pair(t, url) // another room, which must keep working
	ws := dialRaw(t, url)

	tests := []struct {
		typ  websocket.MessageType
		in   string
		want *signal.Error
	}{
		{websocket.MessageText, `{"v":1,"type":`, signal.ErrBadMessage},
		{websocket.MessageText, `hello`, signal.ErrBadMessage},
		{websocket.MessageText, `{"v":1,"type":"dance"}`, signal.ErrBadMessage},
		{websocket.MessageText, `{"v":1,"type":"offer"}`, signal.ErrBadMessage},
		{websocket.MessageText, `{"v":1,"type":"join","room":"nope"}`, signal.ErrBadMessage},
		{websocket.MessageText, `{"v":7,"type":"create"}`, signal.ErrVersion},
		{websocket.MessageBinary, `{"v":1,"type":"create"}`, signal.ErrBadMessage},
	}
	for _, tt := range tests {
		writeRaw(t, ws, tt.typ, tt.in)
		m := readRaw(t, ws)
		if m.Type != signal.TypeError || m.Error.Code != tt.want.Code {
			t.Errorf("%s: reply %+v, want error %s", tt.in, m, tt.want.Code)
		}
		if m.Type == signal.TypeError && m.Error.Message == "" {
			t.Errorf("%s: error without message", tt.in)
		}
	}

	writeRaw(t, ws, websocket.MessageText, `{"v":1,"type":"create"}`)
	if m := readRaw(t, ws); m.Type != signal.TypeCreated {
		t.Errorf("create after malformed messages: %+v", m)
	}
	if err := host.Send(testCtx(t), signal.Message{Type: signal.TypeOffer, SDP: "v=0\r\n"}); err != nil {
		t.Fatal(err)
	}
	recv(t, guest, signal.TypeOffer)
}

func TestTooLarge(t *testing.T) {
	_, url := newTestServer(t, Config{})
	host, guest, _ := pair(t, url)

	for _, size := range []int{signal.MaxMessageSize + 1, readLimit + 1, 1 << 20} {
		ws := dialRaw(t, url)
		big := `{"v":1,"type":"offer","sdp":"` + strings.Repeat("a", size-len(`{"v":1,"type":"offer","sdp":""}`)) + `"}`
		writeRaw(t, ws, websocket.MessageText, big)
		if m := readRaw(t, ws); m.Type != signal.TypeError || m.Error.Code != signal.ErrTooLarge.Code {
			t.Fatalf("reply to a message of %d bytes: %+v, want error too-large", size, m)
		}
		_, _, err := ws.Read(testCtx(t))
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Errorf("after too-large: Read error %v, close status %v, want %v", err, got, websocket.StatusMessageTooBig)
		}
	}

	// Other rooms are not disturbed.
	if err := guest.Send(testCtx(t), signal.Message{Type: signal.TypeAnswer, SDP: "v=0\r\n"}); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypeAnswer)
}

func TestGuestLeaves(t *testing.T) {
	for _, how := range []string{"bye", "close", "drop"} {
		t.Run(how, func(t *testing.T) {
			clock := newFakeClock()
			s, url := newTestServer(t, Config{Now: clock.Now, ResumeGrace: time.Minute})
			host, guest, code := pair(t, url)
			switch how {
			case "bye": // stays connected
				if err := guest.Send(testCtx(t), signal.Message{Type: signal.TypeBye}); err != nil {
					t.Fatal(err)
				}
			case "close": // Close says bye
				if err := guest.Close(); err != nil {
					t.Fatal(err)
				}
			case "drop": // the socket just ends, without bye or close handshake
				drop(t, guest)
				// The seat is kept for a resume until the grace is over.
				waitFor(t, "the server to see the drop", func() bool { return s.Sockets() == 1 })
				clock.Advance(30 * time.Second)
				s.expireIdle()
				if err := host.Send(testCtx(t), signal.Message{Type: signal.TypeOffer, SDP: "v=0"}); err != nil {
					t.Fatal(err)
				}
				recvError(t, host, signal.ErrPeerAway)
				clock.Advance(31 * time.Second)
				s.expireIdle()
			}
			if m := recv(t, host, signal.TypePeerLeft); m.Room != code.String() {
				t.Errorf("peer-left room = %q, want %q", m.Room, code)
			}
			if got := s.Rooms(); got != 1 {
				t.Errorf("Rooms() = %d after the guest left, want 1", got)
			}

			next := dial(t, url)
			if err := next.Join(testCtx(t), code); err != nil {
				t.Fatalf("new guest: Join: %v", err)
			}
			recv(t, host, signal.TypePeerJoined)
			if err := next.Send(testCtx(t), signal.Message{Type: signal.TypeAnswer, SDP: "v=0\r\n"}); err != nil {
				t.Fatal(err)
			}
			recv(t, host, signal.TypeAnswer)
		})
	}
}

func TestHostLeaves(t *testing.T) {
	for _, how := range []string{"bye", "close"} {
		t.Run(how, func(t *testing.T) {
			s, url := newTestServer(t, Config{})
			host, guest, code := pair(t, url)
			if how == "bye" {
				if err := host.Send(testCtx(t), signal.Message{Type: signal.TypeBye}); err != nil {
					t.Fatal(err)
				}
			} else if err := host.Close(); err != nil {
				t.Fatal(err)
			}
			recv(t, guest, signal.TypePeerLeft)
			if got := s.Rooms(); got != 0 {
				t.Errorf("Rooms() = %d after the host left, want 0", got)
			}
			if err := dial(t, url).Join(testCtx(t), code); !errors.Is(err, signal.ErrRoomNotFound) {
				t.Errorf("Join of the deleted room = %v, want ErrRoomNotFound", err)
			}
			// The guest is in no room now and may host one.
			if _, err := guest.Create(testCtx(t)); err != nil {
				t.Errorf("guest Create after peer-left: %v", err)
			}
		})
	}
}

func TestRoomExpiry(t *testing.T) {
	clock := newFakeClock()
	s, url := newTestServer(t, Config{RoomTTL: time.Hour, Now: clock.Now})
	host := dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}

	clock.Advance(59 * time.Minute)
	s.expireIdle()
	guest := dial(t, url)
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatalf("Join before expiry: %v", err)
	}
	recv(t, host, signal.TypePeerJoined)

	clock.Advance(2 * time.Hour) // a room with a guest does not expire
	s.expireIdle()
	if err := guest.Close(); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerLeft)

	clock.Advance(59 * time.Minute) // the wait starts again when the guest leaves
	s.expireIdle()
	if got := s.Rooms(); got != 1 {
		t.Fatalf("Rooms() = %d 59 minutes after the guest left, want 1", got)
	}

	clock.Advance(time.Minute)
	s.expireIdle()
	if e := recvError(t, host, signal.ErrRoomExpired); !strings.Contains(e.Message, code.String()) {
		t.Errorf("expiry error %q does not name the room", e.Message)
	}
	recvClosed(t, host, websocket.StatusNormalClosure)
	if got := s.Rooms(); got != 0 {
		t.Errorf("Rooms() = %d after expiry, want 0", got)
	}
}

func TestRoomExpiryOnJoin(t *testing.T) {
	clock := newFakeClock()
	s, url := newTestServer(t, Config{RoomTTL: time.Hour, Now: clock.Now})
	host := dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := dial(t, url).Join(testCtx(t), code); !errors.Is(err, signal.ErrRoomExpired) {
		t.Errorf("Join of an expired room = %v, want ErrRoomExpired", err)
	}
	recvError(t, host, signal.ErrRoomExpired)
	recvClosed(t, host, websocket.StatusNormalClosure)
	if got := s.Rooms(); got != 0 {
		t.Errorf("Rooms() = %d after expiry, want 0", got)
	}
}

func TestServerClose(t *testing.T) {
	s, url := newTestServer(t, Config{})
	host1, guest1, _ := pair(t, url)
	host2, guest2, _ := pair(t, url)
	lobby := dial(t, url) // in no room
	if got := s.Rooms(); got != 2 {
		t.Fatalf("Rooms() = %d, want 2", got)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*signal.Conn{host1, guest1, host2, guest2, lobby} {
		// A host may first hear that its guest left, and vice versa.
		m, err := c.Recv(testCtx(t))
		if err == nil && m.Type == signal.TypePeerLeft {
			m, err = c.Recv(testCtx(t))
		}
		if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
			t.Errorf("after Close: Recv = %+v, %v; want close status going away", m, err)
		}
	}
	if got := s.Rooms(); got != 0 {
		t.Errorf("Rooms() = %d after Close, want 0", got)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if c, err := signal.Dial(testCtx(t), url); err == nil {
		c.Close()
		t.Error("Dial after Close succeeded")
	}
	for _, c := range []*signal.Conn{host1, guest1, host2, guest2, lobby} {
		if err := c.Close(); err != nil {
			t.Errorf("Conn.Close after the server closed: %v", err)
		}
	}
	checkNoLeaks(t)
}

// TestSlowClientDropped: a client that stops reading is dropped once its
// queue is full; its connection is closed, and its seat is kept for it to
// resume, as for any socket that drops.
func TestSlowClientDropped(t *testing.T) {
	var log logBuffer
	s, url, ln := newCountingServer(t, Config{Logger: slog.New(slog.NewTextHandler(&log, nil)), Limits: Limits{Messages: 1e6, MessageBurst: 1e6}})
	host := dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	guest := dialRaw(t, url) // joins and then never reads
	writeRaw(t, guest, websocket.MessageText, `{"v":1,"type":"join","room":"`+code.String()+`"}`)
	joined := readRaw(t, guest)
	recv(t, host, signal.TypePeerJoined)

	// Flood the guest until the server gives up on it: the socket buffers
	// of loopback hold some megabytes, then the queue fills.
	const maxSends = 2000 // ~120 MB, far more than needed
	offer := signal.Message{Type: signal.TypeOffer, SDP: strings.Repeat("a", 60<<10)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for range maxSends {
			select {
			case <-stop:
				return
			default:
			}
			if err := host.Send(testCtx(t), offer); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
	})
	for {
		m, err := host.Recv(testCtx(t))
		if err != nil {
			t.Fatalf("waiting for peer-away: %v", err)
		}
		if m.Type == signal.TypeError && m.Error.Code == signal.ErrPeerAway.Code {
			break // the guest was dropped and its seat kept
		}
		t.Fatalf("got %+v, want a peer-away error", m)
	}
	close(stop)
	wg.Wait()
	if !strings.Contains(log.String(), "dropping a client that does not read its messages") {
		t.Errorf("the drop is not in the log:\n%s", log.String())
	}
	waitFor(t, "the dropped guest's connection to close", func() bool { return ln.open.Load() == 1 })
	if got := s.Rooms(); got != 1 {
		t.Errorf("Rooms() = %d, want 1: the host's room stays open", got)
	}
	back, partner := reconnect(t, url, signal.Seat{Room: code, Role: signal.Guest, Token: joined.Token})
	if !partner {
		t.Error("the dropped guest resumed without a partner")
	}
	back.Close()
}

func TestHTTP(t *testing.T) {
	_, url := newTestServer(t, Config{})
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", http.StatusOK, "ok"},
		{"HEAD", "/healthz", http.StatusOK, ""},
		{"POST", "/healthz", http.StatusMethodNotAllowed, ""},
		{"GET", "/", http.StatusNotFound, ""},
		{"GET", "/ws/x", http.StatusNotFound, ""},
		{"GET", "/ws", http.StatusUpgradeRequired, ""}, // not a WebSocket handshake
		{"POST", "/ws", http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(testCtx(t), tt.method, url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.code)
		}
		if tt.body != "" && string(body) != tt.body {
			t.Errorf("%s %s: body %q, want %q", tt.method, tt.path, body, tt.body)
		}
	}
}

// TestOrigin checks that native clients, which send no Origin, are let in
// and that a web page from another site is not.
func TestOrigin(t *testing.T) {
	_, url := newTestServer(t, Config{})
	dialRaw(t, url) // no Origin
	h := http.Header{"Origin": {"https://evil.example"}}
	ws, resp, err := websocket.Dial(testCtx(t), url+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		ws.CloseNow()
		t.Fatal("a cross-origin handshake succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin handshake: %v, want 403", err)
	}
}

// TestWriterFlushesBeforeClose checks that a socket closed with closeWith
// first gets every message queued before, in order.
func TestWriterFlushesBeforeClose(t *testing.T) {
	t.Cleanup(func() { checkNoLeaks(t) })
	client, ws := acceptedSocket(t)
	s := New(Config{})
	defer s.Close()
	const queued = 64
	p, ctx := newClient(ws, "test", s.log, queued)
	defer p.kill()
	for i := range queued {
		s.send(p, signal.Message{Type: signal.TypeOffer, SDP: strconv.Itoa(i)})
	}
	p.closeWith(websocket.StatusTryAgainLater, "later")
	s.send(p, signal.Message{Type: signal.TypeOffer, SDP: "after close"}) // dropped silently
	go s.writeLoop(ctx, p)

	for i := range queued {
		if m := readRaw(t, client); m.SDP != strconv.Itoa(i) {
			t.Fatalf("message %d: got %+v", i, m)
		}
	}
	_, data, err := client.Read(testCtx(t))
	if got := websocket.CloseStatus(err); got != websocket.StatusTryAgainLater {
		t.Errorf("after the queue: Read = %s, %v; want close status %v", data, err, websocket.StatusTryAgainLater)
	}
	<-p.writerDone
}

// TestJoinAttemptsLimited: an address that guesses codes is told to wait
// once it has used its burst, and may try again when its bucket refills.
func TestJoinAttemptsLimited(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, url := newTestServer(t, Config{Now: clock, Limits: Limits{Joins: 6, JoinBurst: 3}})
	c := dial(t, url)
	ctx := testCtx(t)
	for i := range 3 {
		if err := c.Join(ctx, signal.Code("K7QM3XRT")); !errors.Is(err, signal.ErrRoomNotFound) {
			t.Fatalf("guess %d: %v, want room not found", i+1, err)
		}
	}
	err := c.Join(ctx, signal.Code("K7QM3XRT"))
	if !errors.Is(err, signal.ErrRateLimited) {
		t.Fatalf("guess 4 within the burst window: %v, want rate limited", err)
	}
	mu.Lock()
	now = now.Add(10 * time.Second) // 6 a minute: one token back
	mu.Unlock()
	if err := c.Join(ctx, signal.Code("K7QM3XRT")); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Fatalf("after the bucket refilled: %v, want room not found", err)
	}
}

// TestMessageFloodHangsUp: a socket that sends faster than the limit gets
// an error and is closed; the server goes on serving others.
func TestMessageFloodHangsUp(t *testing.T) {
	_, url := newTestServer(t, Config{Limits: Limits{Messages: 5, MessageBurst: 10}})
	ws := dialRaw(t, url)
	for range 20 {
		writeRaw(t, ws, websocket.MessageText, `{"v":1,"type":"bye"}`)
	}
	limited := false
	for !limited {
		_, b, err := ws.Read(testCtx(t))
		if err != nil {
			t.Fatalf("socket closed before the rate-limit error: %v", err)
		}
		m, _ := signal.Decode(b)
		limited = m.Error != nil && m.Error.Code == signal.ErrRateLimited.Code
	}
	for {
		if _, _, err := ws.Read(testCtx(t)); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("closed with %v, want policy violation", err)
			}
			break
		}
	}
	// Other clients are served as usual: pair fails the test otherwise.
	pair(t, url)
}

// TestICEServersHandedOut: a server with a relay gives each singer its ICE
// servers with created and joined.
func TestICEServersHandedOut(t *testing.T) {
	_, url := newTestServer(t, Config{ICEServers: func(remote string) []signal.ICEServer {
		return []signal.ICEServer{{URLs: []string{"turn:relay.example:3478"}, Username: "u-" + ipOf(remote), Credential: "c"}}
	}})
	host, guest, _ := pair(t, url)
	for _, c := range []*signal.Conn{host, guest} {
		s := c.ICEServers()
		if len(s) != 1 || s[0].URLs[0] != "turn:relay.example:3478" || s[0].Username != "u-127.0.0.1" {
			t.Fatalf("ICE servers %+v", s)
		}
	}
}

// countingMetrics is a Metrics that counts in maps.
type countingMetrics struct {
	mu                          sync.Mutex
	messages, rejected, refused map[string]int
	relayed, pings, evicted     int
}

func newCountingMetrics() *countingMetrics {
	return &countingMetrics{messages: map[string]int{}, rejected: map[string]int{}, refused: map[string]int{}}
}

func (m *countingMetrics) Message(t signal.Type) { m.add(func() { m.messages[string(t)]++ }) }
func (m *countingMetrics) Rejected(code string)  { m.add(func() { m.rejected[code]++ }) }
func (m *countingMetrics) Relayed(n int)         { m.add(func() { m.relayed += n }) }
func (m *countingMetrics) Refused(reason string) { m.add(func() { m.refused[reason]++ }) }
func (m *countingMetrics) PingTimeout()          { m.add(func() { m.pings++ }) }
func (m *countingMetrics) Evicted()              { m.add(func() { m.evicted++ }) }

func (m *countingMetrics) add(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f()
}

// TestMetrics: the server counts messages by type, rejections by code and
// relayed bytes through Config.Metrics, and tells its rooms and sockets.
func TestMetrics(t *testing.T) {
	m := newCountingMetrics()
	s, url := newTestServer(t, Config{Metrics: m})
	host, guest, _ := pair(t, url)
	offer := signal.Message{Type: signal.TypeOffer, SDP: "v=0"}
	if err := host.Send(testCtx(t), offer); err != nil {
		t.Fatal(err)
	}
	recv(t, guest, signal.TypeOffer)
	c := dial(t, url)
	if err := c.Join(testCtx(t), signal.Code("K7QM3XRT")); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Fatal(err)
	}
	if n := s.Rooms(); n != 1 {
		t.Errorf("Rooms() = %d, want 1", n)
	}
	if n := s.Sockets(); n != 3 {
		t.Errorf("Sockets() = %d, want 3", n)
	}
	b, _ := signal.Encode(offer)
	// The relay is counted once the store has delivered the offer, which
	// the guest may have read by then.
	waitFor(t, "the relayed bytes counted", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.relayed != 0
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.messages["create"] != 1 || m.messages["join"] != 2 || m.messages["offer"] != 1 {
		t.Errorf("messages counted %v, want create 1, join 2, offer 1", m.messages)
	}
	if m.rejected["room-not-found"] != 1 || len(m.rejected) != 1 {
		t.Errorf("rejections counted %v, want room-not-found 1", m.rejected)
	}
	if m.relayed != len(b) {
		t.Errorf("relayed %d bytes, want %d", m.relayed, len(b))
	}
}
