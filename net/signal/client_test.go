package signal

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWSURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:3838", "ws://127.0.0.1:3838/ws"},
		{"http://127.0.0.1:3838/", "ws://127.0.0.1:3838/ws"},
		{"https://duet.example", "wss://duet.example/ws"},
		{"ws://host:3838", "ws://host:3838/ws"},
		{"ws://host:3838/ws", "ws://host:3838/ws"},
		{"wss://host/ws/", "wss://host/ws"},
		{"https://duet.example/rendezvous/", "wss://duet.example/rendezvous/ws"},
		{"HTTP://host:3838", "ws://host:3838/ws"},
		{"host:3838", "ws://host:3838/ws"},
		{"[::1]:3838", "ws://[::1]:3838/ws"},
		{"http://host/?a=b#frag", "ws://host/ws?a=b"},
	}
	for _, tt := range tests {
		if got, err := wsURL(tt.in); err != nil || got != tt.want {
			t.Errorf("wsURL(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"ftp://host", "http://", "http://host:port:x", "://x"} {
		if got, err := wsURL(in); err == nil {
			t.Errorf("wsURL(%q) = %q, want an error", in, got)
		}
	}
}

func TestDialUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now

	_, err = Dial(t.Context(), url)
	if err == nil {
		t.Fatal("Dial succeeded")
	}
	if want := "cannot reach the rendezvous server at " + url + ": "; !strings.Contains(err.Error(), want) {
		t.Errorf("Dial error %q, want it to contain %q", err, want)
	}
	if _, err := Dial(t.Context(), "ftp://host"); err == nil || !strings.Contains(err.Error(), `"ftp://host"`) {
		t.Errorf("Dial(ftp) error %v, want one naming the address", err)
	}
}

// TestCreateKeepsOtherMessages checks that messages arriving while Create
// waits for its reply are delivered by Recv afterwards, in order.
func TestCreateKeepsOtherMessages(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := context.Background() // the client closes the socket
		if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"create"`) {
			t.Errorf("fake server read %s, %v; want create", data, err)
			return
		}
		for _, s := range []string{
			`{"v":1,"type":"peer-left"}`,
			`{"v":1,"type":"offer","sdp":"x"}`,
			`{"v":1,"type":"created","room":"K7QM-3XRT"}`,
			`{"v":1,"type":"answer","sdp":"y"}`,
		} {
			if err := ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
				t.Error(err)
				return
			}
		}
		for { // until the client closes
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}))
	t.Cleanup(ts.Close)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, err := c.Create(ctx)
	if err != nil || code != "K7QM3XRT" {
		t.Fatalf("Create = %q, %v; want K7QM3XRT", code, err)
	}
	for _, want := range []Type{TypePeerLeft, TypeOffer, TypeAnswer} {
		if m, err := c.Recv(ctx); err != nil || m.Type != want {
			t.Fatalf("Recv = %+v, %v; want %s", m, err, want)
		}
	}
}

// TestCloseUnansweredHandshake checks that leaving succeeds when the server
// never answers the close frame (a slow or stuck server, or a lost
// reply): the websocket library gives up after 5 s with "context deadline
// exceeded", which made `duet host` exit with status 1 after a lossy run.
func TestCloseUnansweredHandshake(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		<-release // never reads, so never answers the close frame
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v, want nil: the socket is closed either way", err)
	}
	if _, err := c.Recv(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close = %v, want ErrClosed", err)
	}
}
