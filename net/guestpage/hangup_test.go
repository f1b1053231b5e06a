package guestpage_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/peer/browsertest"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// TestBrowserHangup: when the page cannot take the host's offer it tells
// the host at once, through the rendezvous server, and shows why; when the
// host cannot take the page's answer and hangs up, the page shows it at
// once. Neither waits out ICE's timeouts for a connection that will not
// come.
func TestBrowserHangup(t *testing.T) {
	for _, k := range browsertest.Kinds() {
		t.Run(string(k), func(t *testing.T) { testBrowserHangup(t, k) })
	}
}

func testBrowserHangup(t *testing.T, k browsertest.Kind) {
	firefoxAudio(t, k) // the page joins once its audio runs
	srv := server.New(server.Config{})
	srv.Handle(guestpage.Prefix, guestpage.Handler())
	rep := &reporter{states: make(chan pageState, 1), problemsOK: true}
	mux := http.NewServeMux()
	mux.Handle("POST /report", rep)
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	defer func() { srv.Close(); hs.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The test is the host: it offers what no browser can take.
	host, err := signal.Dial(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := guestpage.Link(hs.URL, code)
	if err != nil {
		t.Fatal(err)
	}
	launch(t, k, rep, link+"?auto=1&report=/report", browsertest.Options{})
	next := func(want signal.Type) signal.Message {
		t.Helper()
		for {
			m, err := host.Recv(ctx)
			if err != nil {
				t.Fatalf("waiting for %s: %v", want, err)
			}
			if m.Type == want {
				return m
			}
		}
	}
	next(signal.TypePeerJoined)
	sent := time.Now()
	if err := host.Send(ctx, signal.Message{Type: signal.TypeOffer, SDP: "v=0\r\nnot a session description\r\n"}); err != nil {
		t.Fatal(err)
	}
	m := next(signal.TypeHangup)
	t.Logf("%s hung up after %v: %s", k, time.Since(sent).Round(time.Millisecond), m.Error.Message)
	if !errors.Is(m.Error, signal.ErrNegotiation) {
		t.Errorf("hangup %+v, want ErrNegotiation", m.Error)
	}
	rep.await(t, 5*time.Second, "the problem shown", func(s pageState) bool { return s.Phase == "problem" })

	// The page joins again (its Try again reloads it) and the host hangs
	// up on it.
	rep.do(map[string]any{"do": "join"})
	next(signal.TypePeerJoined)
	rep.await(t, 5*time.Second, "waiting", func(s pageState) bool { return s.Phase == "waiting" })
	if err := host.Send(ctx, signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "no codec in common")}); err != nil {
		t.Fatal(err)
	}
	sent = time.Now()
	s := rep.await(t, 5*time.Second, "the hangup shown", func(s pageState) bool { return s.Phase == "problem" })
	t.Logf("%s showed %q after %v", k, s.Problem, time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(s.Problem, "could not be set up") {
		t.Errorf("the page shows %q", s.Problem)
	}
}
