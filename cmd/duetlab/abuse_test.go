package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

func TestMetricValue(t *testing.T) {
	text := []byte(`# HELP duet_signal_sockets Open sockets.
# TYPE duet_signal_sockets gauge
duet_signal_sockets 12
duet_signal_sockets_refused_total{reason="address"} 3
duet_signal_rooms 1.5e+04
duet_signal_rejections_total{code="rate-limited"} 9990
duet_signal_rejections_total{code="room-full"} 2
`)
	for _, tc := range []struct {
		series string
		want   float64
		ok     bool
	}{
		{"duet_signal_sockets", 12, true}, // not the longer name after it
		{"duet_signal_rooms", 15000, true},
		{`duet_signal_rejections_total{code="room-full"}`, 2, true},
		{`duet_signal_sockets_refused_total{reason="address"}`, 3, true},
		{"duet_signal_rejections_total", 0, false}, // only labelled lines
		{"duet_signal", 0, false},
		{"HELP", 0, false},
	} {
		got, ok := metricValue(text, tc.series)
		if got != tc.want || ok != tc.ok {
			t.Errorf("metricValue(%s) = %v, %v; want %v, %v", tc.series, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStatusKB(t *testing.T) {
	status := []byte("Name:\tduet-server\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n")
	if kb, err := statusKB(status, "VmRSS"); err != nil || kb != 10240 {
		t.Errorf("VmRSS = %d, %v; want 10240", kb, err)
	}
	if _, err := statusKB(status, "Threads"); err == nil {
		t.Error("Threads has no kB, yet read as kB")
	}
	if _, err := statusKB(status, "VmSwap"); err == nil {
		t.Error("a missing line read without error")
	}
}

func TestLoopbackAddr(t *testing.T) {
	seen := map[netip.Addr]int{}
	for _, b := range []int{2, 20, 21} {
		for i := range 70_000 { // past one block's 65,024
			a := loopbackAddr(b, i)
			if !a.IsLoopback() || !a.Is4() {
				t.Fatalf("loopbackAddr(%d, %d) = %v, not IPv4 loopback", b, i, a)
			}
			if x := a.As4()[3]; x == 0 || x == 255 {
				t.Fatalf("loopbackAddr(%d, %d) = %v", b, i, a)
			}
			seen[a]++
		}
	}
	// Block 20 runs into 21 from its index 65,024 on; 2 runs into 3,
	// which nobody else uses.
	if want := 3*70_000 - (70_000 - 65_024); len(seen) != want {
		t.Errorf("%d distinct addresses, want %d", len(seen), want)
	}
	if a := loopbackAddr(9, 0); a != netip.MustParseAddr("127.9.0.1") {
		t.Errorf("loopbackAddr(9, 0) = %v", a)
	}
}

func TestQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2), 0.5, 1 * time.Millisecond},
		{ms(1, 2), 0.99, 2 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 1, 100 * time.Millisecond},
	} {
		if got, ok := quantile(tc.sorted, tc.q); !ok || got != tc.want {
			t.Errorf("quantile(%d values, %v) = %v, %v; want %v", len(tc.sorted), tc.q, got, ok, tc.want)
		}
	}
	if _, ok := quantile(nil, 0.5); ok {
		t.Error("quantile of nothing")
	}
}

func TestFrames(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 65535, 65536, 100_000} {
		payload := bytes.Repeat([]byte("duet"), n/4+1)[:n]
		op, got, err := readFrame(bytes.NewReader(wsFrame(opText, payload, rawKey)))
		if err != nil || op != opText || !bytes.Equal(got, payload) {
			t.Errorf("%d bytes: read back op %d, %d bytes, %v", n, op, len(got), err)
		}
	}
	huge := []byte{0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0} // 4 GiB claimed
	if _, _, err := readFrame(bytes.NewReader(huge)); err == nil {
		t.Error("a frame claiming 4 GiB was read")
	}
}

// TestRawWS: the attacker's hand-made client speaks WebSocket to the same
// library the server uses, and tells a refused upgrade.
func TestRawWS(t *testing.T) {
	refused := loopbackAddr(9, 40_001)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.RemoteAddr, refused.String()+":") {
			http.Error(w, "too many", http.StatusTooManyRequests)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			// Answer as the rendezvous server does: an error reply.
			m, err := signal.Decode(b)
			if err != nil || typ != websocket.MessageText {
				return
			}
			reply, _ := signal.Encode(signal.Message{Type: signal.TypeError, Error: &signal.Error{Code: "room-not-found", Message: string(m.Type)}})
			if c.Write(ctx, websocket.MessageText, reply) != nil {
				return
			}
		}
	}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	ctx := t.Context()
	w, status, err := dialRaw(ctx, addr, loopbackAddr(9, 40_000), 5*time.Second)
	if err != nil || status != http.StatusSwitchingProtocols {
		t.Fatalf("dialRaw: %d, %v", status, err)
	}
	defer w.abort()
	if err := w.send(wsFrame(opText, []byte(`{"v":1,"type":"join","room":"00000000"}`), rawKey), time.Second); err != nil {
		t.Fatal(err)
	}
	if typ, code, err := w.recvCode(5 * time.Second); err != nil || typ != "error" || code != "room-not-found" {
		t.Errorf("reply: %q %q %v", typ, code, err)
	}

	_, status, err = dialRaw(ctx, addr, refused, 5*time.Second)
	if status != http.StatusTooManyRequests || err == nil {
		t.Errorf("refused upgrade: %d, %v", status, err)
	}
}

// TestProbeAgainstServer: an honest probe gets in on a rendezvous server,
// and says why when it cannot (here: no server at all).
func TestProbeAgainstServer(t *testing.T) {
	srv, err := startLabServer(t.Context(), server.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var addrs honestAddrs
	if d, err := honestJoin(t.Context(), srv.url, &addrs); err != nil || d <= 0 {
		t.Errorf("honest join: %v, %v", d, err)
	}
	srv.stop()
	if _, err := honestJoin(t.Context(), srv.url, &addrs); err == nil || !strings.HasPrefix(err.Error(), "host dial") {
		t.Errorf("honest join with no server: %v", err)
	}
}
