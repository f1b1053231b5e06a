package app

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// recvType returns the next message of type want on c, skipping others.
func recvType(t *testing.T, ctx context.Context, c *signal.Conn, want signal.Type) signal.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if m.Type == want {
			return m
		}
	}
}

// TestNegotiationFailureToldAtOnce: when one side cannot take the other's
// offer or answer, both learn it at once, with why, instead of the one
// waiting for a connection that will not come: a host that cannot take an
// answer hangs up to the guest (a partner that is not Duet, here the
// test's own signaling), a host told so by its guest says so, and a guest
// told so by its host ends with the reason.
func TestNegotiationFailureToldAtOnce(t *testing.T) {
	srv := server.New(server.Config{})
	hs := httptest.NewServer(srv)
	defer func() { srv.Close(); hs.Close() }()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	config := func(ev *events) Config {
		return Config{Server: hs.URL, Device: filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.3}}),
			Loopback: true, Logger: testkit.Logger(t), OnEvent: ev.add, CacheDir: t.TempDir()}
	}
	hostEv := newEvents()
	host, err := Host(ctx, config(hostEv))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { host.Run(ctx) })

	// An answer the host cannot take: it hangs up, and says so.
	guest, err := signal.Dial(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer guest.Close()
	if err := guest.Join(ctx, host.Code()); err != nil {
		t.Fatal(err)
	}
	recvType(t, ctx, guest, signal.TypeOffer)
	sent := time.Now()
	if err := guest.Send(ctx, signal.Message{Type: signal.TypeAnswer, SDP: "v=0\r\nnot a session description\r\n"}); err != nil {
		t.Fatal(err)
	}
	m := recvType(t, ctx, guest, signal.TypeHangup)
	if !errors.Is(m.Error, signal.ErrNegotiation) || m.Error.Message == "" {
		t.Errorf("hangup %+v, want ErrNegotiation and why", m.Error)
	}
	t.Logf("the guest was told after %v: %s", time.Since(sent).Round(time.Millisecond), m.Error.Message)
	hostEv.wait(t, "Could not connect to your guest", 1)

	// The guest cannot take the host's next offer: the host is told.
	if err := guest.Send(ctx, signal.Message{Type: signal.TypeBye}); err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(ctx, host.Code()); err != nil {
		t.Fatal(err)
	}
	recvType(t, ctx, guest, signal.TypeOffer)
	if err := guest.Send(ctx, signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "no codec in common")}); err != nil {
		t.Fatal(err)
	}
	hostEv.wait(t, "your partner could not set up the connection: no codec in common", 1)

	// A Duet guest whose host hangs up ends, saying why.
	rawHost, err := signal.Dial(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rawHost.Close()
	code, err := rawHost.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	duetGuest, err := Join(ctx, config(newEvents()), code)
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	wg.Go(func() { ended <- duetGuest.Run(ctx) })
	recvType(t, ctx, rawHost, signal.TypePeerJoined)
	if err := rawHost.Send(ctx, signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "no codec in common")}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if err == nil || !strings.Contains(err.Error(), "no codec in common") {
			t.Errorf("the guest ended with %v, want the host's reason", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the guest did not end within 10 s of its host's hangup")
	}
}
