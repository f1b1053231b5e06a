package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
)

// abuse sends 10,000 joins with wrong codes from 127.0.0.1 to a server with
// the default limits, counting how many are throttled, and meanwhile has
// an honest singer on 127.0.0.2 (another loopback address, so another
// address to the server) join a real room, timing the join.
func abuse(ctx context.Context, w io.Writer) ([]string, error) {
	const (
		attempts = 10_000
		// Each socket sends one burst of joins, within the per-socket
		// message burst (100) and the server's queue of replies (64), so
		// that only the per-address limit acts.
		perSocket = 50
	)
	srv, err := startLabServer(ctx, signal.ServerConfig{}) // default limits
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	// The honest host, from a third address, opens a room.
	host, err := signal.Dial(ctx, srv.url, fromAddress("127.0.0.3"))
	if err != nil {
		return nil, err
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		return nil, fmt.Errorf("honest create: %w", err)
	}

	var notFound, throttled, other atomic.Int64
	attack := func(ctx context.Context, n int) error {
		c, err := signal.Dial(ctx, srv.url, fromAddress("127.0.0.1"))
		if err != nil {
			return err
		}
		defer c.Close()
		for k := range n {
			guess := signal.Code(fmt.Sprintf("%08d", (n*7919+k)%100000000)) // digits are valid symbols
			if guess == code {
				continue
			}
			if err := c.Send(ctx, signal.Message{Type: signal.TypeJoin, Room: guess.String()}); err != nil {
				return err
			}
		}
		for range n {
			m, err := c.Recv(ctx)
			if err != nil {
				return err
			}
			switch {
			case m.Type == signal.TypeError && m.Error.Code == signal.ErrRateLimited.Code:
				throttled.Add(1)
			case m.Type == signal.TypeError && m.Error.Code == signal.ErrRoomNotFound.Code:
				notFound.Add(1)
			default:
				other.Add(1)
			}
		}
		return nil
	}

	start := time.Now()
	var wg sync.WaitGroup
	attackErr := make(chan error, 1)
	wg.Go(func() {
		attackErr <- parallel(ctx, 20, attempts/perSocket, func(ctx context.Context, _ int) error { return attack(ctx, perSocket) })
	})

	// The honest guest joins while the attack runs (a moment in, so the
	// attacker's address is already throttled).
	for notFound.Load()+throttled.Load() < attempts/10 && time.Since(start) < 30*time.Second {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	joinStart := time.Now()
	jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	guest, err := signal.Dial(jctx, srv.url, fromAddress("127.0.0.2"))
	if err == nil {
		err = guest.Join(jctx, code)
		defer guest.Close()
	}
	cancel()
	honest := time.Since(joinStart)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("honest join: %w", err)
	}
	if err := <-attackErr; err != nil {
		return nil, fmt.Errorf("attack: %w", err)
	}
	if honest > time.Second {
		return nil, fmt.Errorf("the honest join took %v, more than a second", honest)
	}
	if other.Load() != 0 {
		return nil, fmt.Errorf("%d attempts got neither room-not-found nor rate-limited", other.Load())
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from\tattempts\tthrottled\tanswered not found\ttook s\t")
	fmt.Fprintf(tw, "127.0.0.1 (wrong codes)\t%d\t%d\t%d\t%.1f\t\n", notFound.Load()+throttled.Load(), throttled.Load(), notFound.Load(), time.Since(start).Seconds())
	fmt.Fprintf(tw, "127.0.0.2 (honest join)\t1\t0\t0\t%.3f\t\n", honest.Seconds())
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "Default limits: 10 joins a minute per address after a burst of 10; 20 messages a second per socket after 100.")
	return []string{fmt.Sprintf("attempts=%d throttled=%d not_found=%d honest_join_ms=%.1f",
		notFound.Load()+throttled.Load(), throttled.Load(), notFound.Load(), ms(honest))}, nil
}

// fromAddress dials the rendezvous server from the local IP ip: on Linux
// all of 127.0.0.0/8 is loopback, so 127.0.0.2 is a second client address
// on one machine.
func fromAddress(ip string) signal.DialOption {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return func(o *websocket.DialOptions) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
}
