package server

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duetapp/duet/net/signal"
)

// BenchmarkRelay relays a 3 kB offer and a candidate from host to guest
// through a server on loopback, one message in flight at a time: the time
// and allocations (of the server and both clients, one process) of
// carrying one message.
func BenchmarkRelay(b *testing.B) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler), Limits: Limits{Messages: 1e9, MessageBurst: 1e9}})
	defer s.Close()
	ts := httptest.NewServer(s)
	defer ts.Close()
	ctx := b.Context()
	host, err := signal.Dial(ctx, ts.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close()
	guest, err := signal.Dial(ctx, ts.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer guest.Close()
	code, err := host.Create(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := guest.Join(ctx, code); err != nil {
		b.Fatal(err)
	}
	if _, err := host.Recv(ctx); err != nil {
		b.Fatal(err)
	}
	msgs := []signal.Message{
		{Type: signal.TypeOffer, SDP: "v=0\r\n" + strings.Repeat("a=x-pad:0123456789abcdef\r\n", 115)},
		{Type: signal.TypeCandidate, Candidate: &signal.Candidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 20000 typ host generation 0 ufrag h0000001"}},
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := host.Send(ctx, msgs[i%2]); err != nil {
			b.Fatal(err)
		}
		if _, err := guest.Recv(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
