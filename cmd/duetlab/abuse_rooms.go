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

// roomsFlood is attack 7 of issue 12: 8,000 addresses each create rooms
// as fast as the server lets them, one socket per room, dropping each
// socket (no bye, no close handshake) once its room is made: abandoned
// rooms. (The 3,000 addresses made 15,000 rooms, which a cap of
// 20,000 would not show; 8,000 at the 3 rooms one address may hold make
// 24,000.) It counts the rooms made, those the server says are open and
// those it evicted for new ones, and the create refusals by error code; an
// eviction or a refusal other than rate-limited means a cap. Then abandoned.wait, in
// the background, times how long the rooms stay.
func roomsFlood(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, *abandoned, error) {
	const (
		addresses = 8000
		perAddr   = 10 // tries per address; the default burst is 5
	)
	res := attackResult{name: "rooms flood: 8,000 addresses create rooms as fast as allowed, then vanish"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, nil, err
	}
	create := wsFrame(opText, []byte(`{"v":1,"type":"create"}`), rawKey)
	var (
		mu      sync.Mutex
		created int
		refused = map[string]int{} // by error code, or HTTP status, or "error"
	)
	count := func(created1 int, why string) {
		mu.Lock()
		defer mu.Unlock()
		created += created1
		if why != "" {
			refused[why]++
		}
	}
	pr := startProber(ctx, srv.url, addrs)
	start := time.Now()
	err = parallel(ctx, 64, addresses, func(ctx context.Context, i int) error {
		from := loopbackAddr(5, i)
		for range perAddr {
			w, status, err := dialRaw(ctx, srv.addr, from, 5*time.Second)
			if err != nil {
				count(0, fmt.Sprintf("HTTP %d", status))
				return nil
			}
			typ, code, err := "", "", w.send(create, 5*time.Second)
			if err == nil {
				typ, code, err = w.recvCode(5 * time.Second)
			}
			w.abort()
			switch {
			case err != nil:
				count(0, "no answer")
				return nil
			case typ == "created":
				count(1, "")
			default:
				count(0, code)
				return nil // refused: this address is done
			}
		}
		return nil
	})
	took := time.Since(start)
	res.probe = pr.stop()
	if err != nil {
		srv.stop()
		return res, nil, err
	}
	rooms, err := srv.metric(ctx, "duet_signal_rooms")
	if err != nil {
		srv.stop()
		return res, nil, err
	}
	evicted, err := srv.metric(ctx, "duet_signal_rooms_evicted_total")
	if err != nil {
		srv.stop()
		return res, nil, err
	}
	capped := evicted > 0 // the cap held by evicting abandoned rooms
	var why []string
	for _, k := range slices.Sorted(maps.Keys(refused)) {
		why = append(why, fmt.Sprintf("%s ×%d", k, refused[k]))
		capped = capped || k != "rate-limited"
	}
	res.result = fmt.Sprintf("%d rooms made in %.1f s, %.0f open, %.0f abandoned ones evicted for new ones; refusals: %s",
		created, took.Seconds(), rooms, evicted, strings.Join(why, ", "))
	res.kv = []string{fmt.Sprintf("rooms_flood_made=%d rooms_flood_capped=%s rooms_flood_evicted=%.0f", created, yesNo(capped), evicted)}
	return res, &abandoned{srv: srv, since: time.Now(), rooms: rooms}, nil
}

// abandoned is the rooms flood's server, full of rooms whose hosts are gone.
type abandoned struct {
	srv   *serverProc
	since time.Time // when the flood ended
	rooms float64   // open then
}

// wait waits, up to bound since the flood ended, for the abandoned rooms
// to be gone, probing meanwhile, and stops the server.
func (a *abandoned) wait(ctx context.Context, addrs *honestAddrs, bound time.Duration) (attackResult, error) {
	defer a.srv.stop()
	res := attackResult{name: "rooms flood, after: how long abandoned rooms live"}
	pr := startProber(ctx, a.srv.url, addrs)
	rooms := a.rooms
	var err error
	for deadline := a.since.Add(bound); rooms > 1 && time.Now().Before(deadline) && ctx.Err() == nil; {
		// The gauge has no event to wait on; once a second is finer
		// than the server's expiry ticks.
		time.Sleep(time.Second)
		if rooms, err = a.srv.metric(ctx, "duet_signal_rooms"); err != nil {
			break
		}
	}
	res.probe = pr.stop()
	if err != nil {
		return res, err
	}
	// A room an honest probe has open for a moment may be counted: one
	// room left is the flood's rooms gone.
	if rooms > 1 {
		res.result = fmt.Sprintf("%.0f of %.0f abandoned rooms still open after %v", rooms, a.rooms, bound)
		res.kv = []string{fmt.Sprintf("abandoned_room_s=>%.0f", bound.Seconds())}
		return res, nil
	}
	s := time.Since(a.since).Seconds()
	res.result = fmt.Sprintf("all %.0f abandoned rooms gone %.0f s after the flood", a.rooms, s)
	res.kv = []string{fmt.Sprintf("abandoned_room_s=%.0f", s)}
	return res, nil
}
