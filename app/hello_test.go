package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/signal/server"
)

// TestNamesAndNTP connects two singers who tell each other their names (one
// with a control character and far too long), and asks the local NTP
// server (DUET_NTP, started by .ci/run) for the clock cross-check.
func TestNamesAndNTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wg.Go(func() { server.Serve(ctx, ln, server.New(server.Config{}), nil) })
	ntp := os.Getenv("DUET_NTP")
	// The name's coming and the NTP answer are logged: each record is a
	// moment to look at the published states again.
	logged := make(chan struct{}, 1)
	log := slog.New(nudging{testkit.Logger(t).Handler(), logged})
	config := func(name string, ev *events) Config {
		return Config{
			Server:    "http://" + ln.Addr().String(),
			Device:    filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.3}}),
			Loopback:  true,
			Name:      name,
			NTPServer: ntp,
			Logger:    log,
			OnEvent:   ev.add,
			CacheDir:  t.TempDir(),
		}
	}
	hostEv, guestEv := newEvents(), newEvents()
	host, err := Host(ctx, config("Ana", hostEv))
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { host.Run(ctx) })
	long := "Ben\a" + strings.Repeat("n", 100)
	guest, err := Join(ctx, config(long, guestEv), host.Code())
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { guest.Run(ctx) })
	hostEv.wait(t, "Connected to your partner", 1)
	deadline := time.After(20 * time.Second)
	for {
		h, g := host.Stats(), guest.Stats()
		ntpDone := ntp == "" || (h.NTP.Server != "" && (h.NTP.RTT > 0 || h.NTP.Err != ""))
		if h.PartnerName != "" && g.PartnerName != "" && ntpDone {
			if g.PartnerName != "Ana" {
				t.Errorf("the guest calls the host %q", g.PartnerName)
			}
			if want := "Ben" + strings.Repeat("n", maxName-3); h.PartnerName != want {
				t.Errorf("the host calls the guest %q, want %q", h.PartnerName, want)
			}
			if ntp != "" {
				t.Logf("NTP: %+v", h.NTP)
				if h.NTP.Err != "" || h.NTP.Offset.Abs() > 50*time.Millisecond {
					t.Errorf("NTP cross-check against the local server: %+v", h.NTP)
				}
			}
			return
		}
		select {
		case <-logged:
		case <-deadline:
			t.Fatalf("names: host %q, guest %q; NTP %+v", h.PartnerName, g.PartnerName, h.NTP)
		}
	}
}

// TestByeAfterHelloFlood: a partner flooding hellos cannot crowd out its
// bye, and of the hellos the latest name counts.
func TestByeAfterHelloFlood(t *testing.T) {
	c := newSupervisor(&Config{}, true, nil, "", nil, func(news) {}, testkit.Logger(t))
	for i := range 1000 {
		c.onControlMessage(1, []byte(fmt.Sprintf(`{"type":%q,"name":"Ana %d"}`, controlHello, i)))
	}
	c.onControlMessage(1, []byte(fmt.Sprintf(`{"type":%q}`, controlBye)))
	c.onControlMessage(0, []byte(fmt.Sprintf(`{"type":%q,"name":"old"}`, controlHello)))
	select {
	case <-c.words.ready:
	default:
		t.Fatal("run is not told")
	}
	hello, name, bye := c.words.take()
	if hello != 1 || name != "Ana 999" || bye != 1 {
		t.Errorf("run takes hello %d %q, bye %d; want 1 \"Ana 999\", 1", hello, name, bye)
	}
}

// nudging passes records on to h (as h's level allows) after a nudge.
type nudging struct {
	h     slog.Handler
	nudge chan struct{}
}

func (n nudging) Enabled(context.Context, slog.Level) bool { return true }

func (n nudging) Handle(ctx context.Context, r slog.Record) error {
	select {
	case n.nudge <- struct{}{}:
	default:
	}
	if !n.h.Enabled(ctx, r.Level) {
		return nil
	}
	return n.h.Handle(ctx, r)
}

func (n nudging) WithAttrs(as []slog.Attr) slog.Handler {
	return nudging{n.h.WithAttrs(as), n.nudge}
}
func (n nudging) WithGroup(name string) slog.Handler { return nudging{n.h.WithGroup(name), n.nudge} }
