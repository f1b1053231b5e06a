package rendezvous_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/relay/relaytest"
	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/rendezvous/serverextras"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store/redisstore/redistest"
)

// run starts o.Run, stopped at the test's end, and returns the server's
// URL and the address of its metrics listener (if any).
func run(t *testing.T, o rendezvous.Options) (url, metrics string) {
	t.Helper()
	lines := make(chan string, 4)
	records := make(chan slog.Record, 256)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, lineWriter(lines), slog.New(recorder(records))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.After(10 * time.Second)
	select {
	case url = <-lines:
		url = strings.TrimSpace(url)
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-deadline:
		t.Fatal("Run printed no URL within 10 s")
	}
	for o.MetricsListen != "" && metrics == "" {
		select {
		case r := <-records:
			if r.Message == "serving /metrics" {
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "addr" {
						metrics = a.Value.String()
					}
					return true
				})
			}
		case <-deadline:
			t.Fatal("Run logged no metrics address within 10 s")
		}
	}
	return url, metrics
}

// lineWriter sends each write (Run prints its URL in one) on a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

// recorder is a slog.Handler that sends records on a channel, dropping
// them when it is full.
type recorder chan slog.Record

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r recorder) WithGroup(string) slog.Handler            { return r }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec.Clone():
	default:
	}
	return nil
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

// TestMetricsListen: with -metrics-listen, /metrics is on that listener
// only, behind the token; without it, on the public one.
func TestMetricsListen(t *testing.T) {
	url, metrics := run(t, rendezvous.Options{Extras: serverextras.New(), Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", MetricsToken: "t0ken"})
	if code, _ := get(t, url+"/metrics", "t0ken"); code != http.StatusNotFound {
		t.Errorf("public /metrics: %d, want 404", code)
	}
	if code, _ := get(t, url+"/healthz", ""); code != http.StatusOK {
		t.Errorf("public /healthz: %d, want 200", code)
	}
	if code, _ := get(t, "http://"+metrics+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	if code, body := get(t, "http://"+metrics+"/metrics", "t0ken"); code != http.StatusOK || !strings.Contains(body, "duet_signal_sockets") {
		t.Errorf("/metrics with the token: %d, %.80q", code, body)
	}

	url, _ = run(t, rendezvous.Options{Extras: serverextras.New(), Listen: "127.0.0.1:0"})
	if code, body := get(t, url+"/metrics", ""); code != http.StatusOK || !strings.Contains(body, "duet_signal_sockets") {
		t.Errorf("public /metrics without -metrics-listen: %d, %.80q", code, body)
	}
}

// TestWithoutExtras: "duet serve" (no Extras) refuses -redis and the
// metrics flags with an error that names duet-server, ignores
// $DUET_METRICS_TOKEN, and serves no /metrics.
func TestWithoutExtras(t *testing.T) {
	for _, args := range [][]string{
		{"-redis", "127.0.0.1:6379"},
		{"-metrics-listen", "127.0.0.1:0"},
		{"-metrics-token", "t0ken"},
	} {
		var o rendezvous.Options
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.Register(fs)
		if err := fs.Parse(append([]string{"-listen", "127.0.0.1:0"}, args...)); err != nil {
			t.Fatal(err)
		}
		err := o.Run(t.Context(), io.Discard, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), args[0]+" is duet-server's") {
			t.Errorf("duet serve %s: %v, want an error naming duet-server", strings.Join(args, " "), err)
		}
	}
	o := rendezvous.Options{Listen: "127.0.0.1:0"}
	o.FromEnv(func(k string) string { return map[string]string{rendezvous.EnvMetricsToken: "t0ken"}[k] })
	url, _ := run(t, o)
	if code, _ := get(t, url+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics of duet serve: %d, want 404", code)
	}
	if code, _ := get(t, url+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz of duet serve: %d, want 200", code)
	}
}

// TestRedis: with -redis, rooms are in that Redis; a Redis that does not
// answer stops Run with an error that names it.
func TestRedis(t *testing.T) {
	prefix := redistest.Prefix(t)
	url, _ := run(t, rendezvous.Options{Extras: serverextras.New(), Listen: "127.0.0.1:0", Redis: redistest.Addr(t), RedisPrefix: prefix})
	host, err := signal.Dial(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	code, err := host.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := redistest.Client(t).Exists(t.Context(), prefix+"room:"+string(code)).Result(); n != 1 || err != nil {
		t.Errorf("room %s in Redis: %d, %v; want 1", code, n, err)
	}
	err = rendezvous.Options{Extras: serverextras.New(), Listen: "127.0.0.1:0", Redis: "127.0.0.1:1"}.Run(t.Context(), io.Discard, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Run with an unreachable Redis: %v, want an error naming it", err)
	}
}

// TestSlowBody: a POST that promises 100 kB and sends 3 bytes gets its
// answer and its connection closed at once, not held for minutes.
func TestSlowBody(t *testing.T) {
	url, _ := run(t, rendezvous.Options{Listen: "127.0.0.1:0"})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /ws HTTP/1.1\r\nHost: duet\r\nContent-Length: 100000\r\n\r\nabc")
	resp, err := io.ReadAll(conn) // to the server's close
	if err != nil {
		t.Fatalf("the connection was not closed: %v (read %q)", err, resp)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 413") {
		t.Fatalf("answer %.40q, want 413", resp)
	}
}

// TestCredentialsRevokedOnLeave: the TURN credential of a guest who
// leaves is refused from then on.
func TestCredentialsRevokedOnLeave(t *testing.T) {
	url, _ := run(t, rendezvous.Options{Listen: "127.0.0.1:0", TURN: "127.0.0.1:0", PublicIP: "127.0.0.1", TURNPerCredential: 2})
	ctx := t.Context()
	host, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	guest, err := signal.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	code, err := host.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	ice := guest.ICEServers()
	if len(ice) != 1 || len(ice[0].URLs) != 2 {
		t.Fatalf("the guest's ICE servers: %+v", ice)
	}
	turn := ice[0]
	flood := func() (int, int) {
		a, err := relaytest.Flood(ctx, turn.URLs[1], turn.Username, turn.Credential, "127.0.0.1:0", 10)
		defer a.Close()
		if err != nil && relaytest.Code(err) == 0 {
			t.Fatal(err)
		}
		return a.Len(), relaytest.Code(err)
	}
	if n, code := flood(); n != 2 || code != 486 {
		t.Fatalf("with the guest's credential: %d allocations, then %d; want 2 (-turn-allocations-per-credential), then 486", n, code)
	}
	if err := guest.Send(ctx, signal.Message{Type: signal.TypeBye}); err != nil {
		t.Fatal(err)
	}
	for { // the server revokes before it tells the host
		m, err := host.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == signal.TypePeerLeft {
			break
		}
	}
	if n, code := flood(); n != 0 || code != 401 {
		t.Fatalf("with the credential of a guest who left: %d allocations, code %d; want 0, 401", n, code)
	}
}
