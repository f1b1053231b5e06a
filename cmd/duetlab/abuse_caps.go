package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// manySockets is attack 4a of issue 12: 10,000 WebSockets from one address,
// all held open. It counts how many the server accepted and still holds,
// and the server process's resident memory with them open.
func manySockets(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, error) {
	const sockets = 10_000
	res := attackResult{name: "caps: 10,000 WebSockets from one address, held open"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	rssBefore, err := srv.rssMB()
	if err != nil {
		return res, err
	}

	from := loopbackAddr(3, 0)
	var (
		mu                sync.Mutex
		open              []*rawWS
		accepted, refused atomic.Int64
	)
	defer func() {
		for _, w := range open {
			w.abort()
		}
	}()
	pr := startProber(ctx, srv.url, addrs)
	start := time.Now()
	err = parallel(ctx, 100, sockets, func(ctx context.Context, i int) error {
		w, _, err := dialRaw(ctx, srv.addr, from, 10*time.Second)
		if err != nil {
			refused.Add(1) // a status other than 101, a reset or a timeout
			return nil
		}
		accepted.Add(1)
		w.conn.SetDeadline(time.Time{})
		mu.Lock()
		open = append(open, w)
		mu.Unlock()
		return nil
	})
	took := time.Since(start)
	if err != nil {
		res.probe = pr.stop()
		return res, err
	}
	// Still holding them, the honest singers go on a moment longer.
	time.Sleep(2 * time.Second)
	res.probe = pr.stop()
	rss, err := srv.rssMB()
	if err != nil {
		return res, err
	}
	held, err := srv.metric(ctx, "duet_signal_sockets")
	if err != nil {
		return res, err
	}
	res.result = fmt.Sprintf("%d accepted, %d refused, %.0f held (sockets gauge); server RSS %.0f MB (%.0f MB before); %.1f s",
		accepted.Load(), refused.Load(), held, rss, rssBefore, took.Seconds())
	res.kv = []string{fmt.Sprintf("rss_mb_10k_sockets=%.0f sockets_held_of_10k=%.0f", rss, held)}
	return res, nil
}

// idleConns is attack 4b: 2,000 keep-alive HTTP connections that each make
// one request (GET /healthz) and then say nothing. It waits up to bound
// for the server to close them and reports how many it closed and when
// the last of them went.
func idleConns(ctx context.Context, bin string, addrs *honestAddrs, bound time.Duration) (attackResult, error) {
	const conns = 2000
	res := attackResult{name: "timeouts: 2,000 idle keep-alive connections"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pr := startProber(ctx, srv.url, addrs)
	from := loopbackAddr(6, 0)
	start := time.Now()
	deadline := start.Add(bound)
	var (
		opened, closed atomic.Int64
		mu             sync.Mutex
		last           time.Duration
		wg             sync.WaitGroup
	)
	err = parallel(ctx, 100, conns, func(pctx context.Context, i int) error {
		c, err := idleRequest(pctx, srv.addr, from)
		if err != nil {
			return nil // not opened: counted by opened
		}
		opened.Add(1)
		// Wait for the server to close it, until the bound (or ctx,
		// not pctx, which ends with parallel).
		wg.Go(func() {
			defer c.Close()
			defer context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })()
			c.SetReadDeadline(deadline)
			if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
				return
			}
			closed.Add(1)
			mu.Lock()
			last = max(last, time.Since(start))
			mu.Unlock()
		})
		return nil
	})
	wg.Wait()
	res.probe = pr.stop()
	if err != nil {
		return res, err
	}
	n := closed.Load()
	when := fmt.Sprintf("the last after %.1f s", last.Seconds())
	if n == 0 {
		when = "none"
	}
	res.result = fmt.Sprintf("%d of %d opened were closed by the server within %v (%s)", n, opened.Load(), bound, when)
	res.kv = []string{fmt.Sprintf("idle_conns_closed=%d/%d", n, opened.Load())}
	return res, nil
}

// idleRequest opens a connection from from, makes one keep-alive request
// on it and reads the answer, and returns the connection, left idle.
func idleRequest(ctx context.Context, addr string, from netip.Addr) (net.Conn, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body) // "ok": within the reader's first fill
	resp.Body.Close()
	if resp.Close {
		c.Close()
		return nil, errors.New("the server did not keep the connection alive")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// slowBody is attack 4c: a POST that promises 100 kB and sends 3 bytes. It
// reports how long the server holds the connection, up to bound.
func slowBody(ctx context.Context, bin string, addrs *honestAddrs, bound time.Duration) (attackResult, error) {
	res := attackResult{name: "timeouts: a POST promising 100 kB that sends 3 bytes"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pr := startProber(ctx, srv.url, addrs)
	held, status, err := slowPost(ctx, srv.addr, loopbackAddr(7, 0), bound)
	res.probe = pr.stop()
	if err != nil {
		return res, err
	}
	answer := "no answer"
	if status != 0 {
		answer = fmt.Sprintf("answered %d", status)
	}
	if held < 0 {
		res.result = fmt.Sprintf("%s; held the connection past the bound of %v", answer, bound)
		res.kv = []string{fmt.Sprintf("slow_body_closed_s=>%.0f", bound.Seconds())}
		return res, nil
	}
	res.result = fmt.Sprintf("%s; closed the connection after %.1f s", answer, held.Seconds())
	res.kv = []string{fmt.Sprintf("slow_body_closed_s=%.1f", held.Seconds())}
	return res, nil
}

// slowPost sends the slow POST to /ws and returns how long until the
// server closed the connection (-1 if it held it past bound) and the
// status it answered, 0 for none.
func slowPost(ctx context.Context, addr string, from netip.Addr, bound time.Duration) (time.Duration, int, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	start := time.Now()
	c.SetDeadline(start.Add(bound))
	if _, err := fmt.Fprintf(c, "POST /ws HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"v", addr); err != nil {
		return 0, 0, err
	}
	r := bufio.NewReader(c)
	status := 0
	if resp, err := http.ReadResponse(r, nil); err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	} else if isTimeout(err) {
		return -1, 0, ctx.Err()
	}
	// Whatever the answer, the connection's end is what counts.
	if _, err := io.Copy(io.Discard, r); isTimeout(err) {
		return -1, status, ctx.Err()
	}
	return time.Since(start), status, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
