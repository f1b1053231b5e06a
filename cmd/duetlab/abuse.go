package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"

	"github.com/duetapp/duet/net/signal"
)

// abuseWait bounds the attacks that wait for the server to act on its own
// (close idle connections and slow requests, let abandoned rooms go): they
// run in the background, each on a server of its own, while the others
// run one after another.
const abuseWait = 90 * time.Second

// attackResult is one attack's row of the table and its summary pairs.
type attackResult struct {
	name   string
	result string
	kv     []string
	probe  probeResult // the honest singers who tried to get in meanwhile
}

// abuse runs the attacks of issue 12 on loopback, each against a
// duet-server process of its own (the real server, flags and http.Server,
// built from this tree), and meanwhile has honest singers (from addresses
// no attacker uses) create and join a room every 250 ms, timing each. A WAV
// bomb is decoded in this process, as a guest would. Everything is bounded:
// the run takes under two minutes against the fixed server (three and a
// half before: the bomb's decode alone took a minute).
func abuse(ctx context.Context, w io.Writer) ([]string, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "duetlab-abuse")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin, err := buildServer(ctx, dir)
	if err != nil {
		return nil, err
	}
	var (
		addrs   honestAddrs
		results []attackResult
	)
	run := func(f func() (attackResult, error)) error {
		r, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		results = append(results, r)
		return nil
	}

	// First, while this process is fresh: the guest's decoder.
	if err := run(func() (attackResult, error) { return wavBomb(ctx) }); err != nil {
		return nil, err
	}
	if err := run(func() (attackResult, error) { return fdLeak(ctx, bin, &addrs) }); err != nil {
		return nil, err
	}
	var rooms *abandoned
	if err := run(func() (r attackResult, err error) {
		r, rooms, err = roomsFlood(ctx, bin, &addrs)
		return r, err
	}); err != nil {
		return nil, err
	}

	// The waiting attacks, in the background; cut short if an attack in
	// the foreground fails.
	bgCtx, cancelBg := context.WithCancel(ctx)
	defer cancelBg()
	bg := make([]attackResult, 3)
	bgErr := make([]error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { bg[0], bgErr[0] = rooms.wait(bgCtx, &addrs, abuseWait) })
	wg.Go(func() { bg[1], bgErr[1] = idleConns(bgCtx, bin, &addrs, abuseWait) })
	wg.Go(func() { bg[2], bgErr[2] = slowBody(bgCtx, bin, &addrs, abuseWait) })

	err = func() error {
		for _, f := range []func(context.Context, string, *honestAddrs) (attackResult, error){
			wrongCodes, partnerBurst, manySockets, turnFlood, addressTable,
		} {
			if err := run(func() (attackResult, error) { return f(ctx, bin, &addrs) }); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		cancelBg()
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for i, r := range bg {
		if bgErr[i] != nil {
			return nil, fmt.Errorf("%s: %w", r.name, bgErr[i])
		}
		results = append(results, r)
	}
	return abuseReport(w, results, time.Since(start))
}

// abuseReport prints the table and returns the summary pairs.
func abuseReport(w io.Writer, results []attackResult, took time.Duration) ([]string, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attack\thonest in/tried\tp50 ms\tp99 ms\tresult")
	var all probeResult
	var kv []string
	for _, r := range results {
		p50, p99 := "n/a", "n/a"
		if d, ok := r.probe.quantile(0.5); ok {
			p50 = fmt.Sprintf("%.1f", ms(d))
		}
		if d, ok := r.probe.quantile(0.99); ok {
			p99 = fmt.Sprintf("%.1f", ms(d))
		}
		tried := "n/a"
		if r.probe.tries() > 0 {
			tried = fmt.Sprintf("%d/%d", len(r.probe.lat), r.probe.tries())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.name, tried, p50, p99, r.result)
		all.add(r.probe)
		kv = append(kv, r.kv...)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	if len(all.errs) > 0 {
		fmt.Fprintf(w, "Honest singers who did not get in: %s\n", strings.Join(all.errs, "; "))
	}
	fmt.Fprintf(w, "Honest singers: a host creates a room and a guest joins it (from two addresses of their own) every %v during each attack, %v at most each; the time runs from the host's dial to its peer-joined.\n", probeEvery, probeTimeout)
	fmt.Fprintf(w, "Each attack runs against a duet-server process of its own on loopback, with its default flags; the timeouts' attacks wait up to %v; whole run %.0f s.\n", abuseWait, took.Seconds())
	p99 := "n/a"
	if d, ok := all.quantile(0.99); ok {
		p99 = fmt.Sprintf("%.1f", ms(d))
	}
	return append(kv, fmt.Sprintf("honest_join_p99_ms=%s honest_failed=%d/%d", p99, all.failed, all.tries())), nil
}

// wrongCodes sends 10,000 joins with wrong codes from one address, 50 on
// each socket (within the per-socket burst), counting how many are
// throttled. Each socket claims another address in X-Forwarded-For, which
// a server that trusts no proxy must ignore.
func wrongCodes(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, error) {
	const (
		attempts  = 10_000
		perSocket = 50
	)
	res := attackResult{name: "wrong codes: 10,000 joins from one address, X-Forwarded-For forged"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	from := loopbackAddr(1, 0).String()
	var notFound, throttled, other atomic.Int64
	attack := func(ctx context.Context, n int) error {
		forged := func(o *websocket.DialOptions) {
			o.HTTPHeader = http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", n%254+1)}}
		}
		c, err := signal.Dial(ctx, srv.url, fromAddress(from), forged)
		if err != nil {
			return err
		}
		defer c.Close()
		for k := range perSocket {
			guess := signal.Code(fmt.Sprintf("%08d", (n*perSocket+k)%100000000)) // digits are valid symbols
			if err := c.Send(ctx, signal.Message{Type: signal.TypeJoin, Room: guess.String()}); err != nil {
				return err
			}
		}
		for range perSocket {
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
	pr := startProber(ctx, srv.url, addrs)
	start := time.Now()
	err = parallel(ctx, 20, attempts/perSocket, func(ctx context.Context, n int) error { return attack(ctx, n) })
	took := time.Since(start)
	res.probe = pr.stop()
	if err != nil {
		return res, err
	}
	res.result = fmt.Sprintf("%d throttled, %d answered not found, %d other; %.1f s",
		throttled.Load(), notFound.Load(), other.Load(), took.Seconds())
	res.kv = []string{fmt.Sprintf("wrong_codes_throttled=%d/%d", throttled.Load(), attempts)}
	return res, nil
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
