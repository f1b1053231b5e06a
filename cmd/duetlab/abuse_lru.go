package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// addressTable is attack 5 of issue 12: 101,000 addresses, one join (with
// a wrong code) each, to fill the server's table of per-address limits
// (100,000) past full; then an honest guest from yet another address must
// still get in, not be rate-limited. The addresses are spread over
// 127.0.0.0/8 (the server trusts no proxy, so X-Forwarded-For would be
// ignored, rightly), 128 sockets at a time. The server forgets addresses
// idle for a minute, so the attack must make its joins faster than that.
func addressTable(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, error) {
	const addresses = 101_000
	res := attackResult{name: "address table: 101,000 addresses, one join each"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	var (
		mu      sync.Mutex
		replies = map[string]int{} // by error code, or what went wrong
	)
	count := func(k string) {
		mu.Lock()
		replies[k]++
		mu.Unlock()
	}
	pr := startProber(ctx, srv.url, addrs)
	start := time.Now()
	err = parallel(ctx, 128, addresses, func(ctx context.Context, i int) error {
		w, status, err := dialRaw(ctx, srv.addr, loopbackAddr(20, i), 5*time.Second)
		if err != nil {
			count(fmt.Sprintf("HTTP %d", status))
			return nil
		}
		defer w.abort()
		join := wsFrame(opText, fmt.Appendf(nil, `{"v":1,"type":"join","room":"%08d"}`, i), rawKey)
		if err := w.send(join, 5*time.Second); err != nil {
			count("send failed")
			return nil
		}
		if _, code, err := w.recvCode(5 * time.Second); err != nil {
			count("no answer")
		} else {
			count(code)
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		res.probe = pr.stop()
		return res, err
	}
	// The honest guest after the attack, from an address the table has
	// never seen.
	_, honestErr := honestJoin(ctx, srv.url, addrs)
	res.probe = pr.stop()
	var got []string
	for _, k := range slices.Sorted(maps.Keys(replies)) {
		got = append(got, fmt.Sprintf("%s ×%d", k, replies[k]))
	}
	after := "got in"
	if honestErr != nil {
		after = fmt.Sprintf("failed (%v)", honestErr)
	}
	res.result = fmt.Sprintf("%d joins in %.1f s (%.0f/s): %s; an honest singer afterwards %s",
		addresses, took.Seconds(), addresses/took.Seconds(), strings.Join(got, ", "), after)
	res.kv = []string{fmt.Sprintf("lru_honest_ok=%t lru_attack_s=%.0f", honestErr == nil, took.Seconds())}
	return res, nil
}
