package prommetrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// serve runs a server counting into m, with m's figures at /metrics
// behind token, and returns its URL.
func serve(t *testing.T, m *Metrics, token string) string {
	t.Helper()
	srv := server.New(server.Config{Metrics: m})
	srv.Handle("/metrics", m.Handler(srv, token))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { srv.Close() })
	return ts.URL
}

func dial(t *testing.T, ctx context.Context, url string) *signal.Conn {
	t.Helper()
	c, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFigures: /metrics counts rooms, sockets, messages, rejections and
// relayed bytes, and names no room code.
func TestFigures(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	url := serve(t, New(), "")
	host, guest := dial(t, ctx, url), dial(t, ctx, url)
	code, err := host.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	offer := signal.Message{Type: signal.TypeOffer, SDP: "v=0"}
	if err := guest.Send(ctx, offer); err != nil {
		t.Fatal(err)
	}
	relayed, err := signal.Encode(offer)
	if err != nil {
		t.Fatal(err)
	}
	for { // peer-joined, then the offer: relayed and counted
		m, err := host.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == signal.TypeOffer {
			break
		}
	}
	if err := dial(t, ctx, url).Join(ctx, "K7QM3XRT"); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Fatal(err)
	}
	want := []string{
		"duet_signal_rooms 1",
		"duet_signal_sockets 3",
		`duet_signal_messages_total{type="create"} 1`,
		`duet_signal_messages_total{type="join"} 2`,
		`duet_signal_rejections_total{code="room-not-found"} 1`,
		"duet_signal_relayed_bytes_total " + strconv.Itoa(len(relayed)),
	}
	// The relay is counted once the store has delivered the offer, which
	// the host may have read by then: scrape until every figure is there.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var body, missing string
	for {
		_, body = get(t, url+"/metrics", "")
		missing = ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the figures lack %q:\n%s", missing, body)
		case <-tick.C:
		}
	}
	if strings.Contains(body, code.String()) || strings.Contains(body, string(code)) {
		t.Error("the figures name a room code")
	}
}

// TestToken: with a token, the figures want it as a bearer token.
// (Issue 12: /metrics had no bind or auth option.)
func TestToken(t *testing.T) {
	url := serve(t, New(), "s3cret")
	for _, tc := range []struct {
		token string
		code  int
	}{{"", http.StatusUnauthorized}, {"wrong", http.StatusUnauthorized}, {"s3cret", http.StatusOK}} {
		if code, body := get(t, url+"/metrics", tc.token); code != tc.code || (code == http.StatusOK) != strings.Contains(body, "duet_signal_rooms") {
			t.Errorf("/metrics with token %q: %d %.40q, want %d", tc.token, code, body, tc.code)
		}
	}
}
