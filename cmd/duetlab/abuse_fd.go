package main

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// fdLeak is attack 1 of issue 12: 1,000 sockets (from addresses of their
// own, so that no per-address cap hides the leak) each send 150 bye and
// close (a close frame, then the TCP close, without waiting for the
// server's close frame), 50 at a time. 150 is past the per-socket burst (100) and the
// server's queue of replies (64), so the server hangs up on each or drops
// it. It reports the server's descriptors after they settle against
// before, and its sockets gauge.
func fdLeak(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, error) {
	const (
		sockets = 1000
		byes    = 150
		settle  = 10 * time.Second
	)
	res := attackResult{name: "fd leak: 1,000 sockets × 150 bye, then close"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	before, err := srv.fds()
	if err != nil {
		return res, err
	}

	frames := bytes.Repeat(wsFrame(opText, []byte(`{"v":1,"type":"bye"}`), rawKey), byes)
	closeFrame := wsFrame(opClose, []byte{0x03, 0xe8}, rawKey) // 1000, normal closure
	var refused atomic.Int64
	pr := startProber(ctx, srv.url, addrs)
	start := time.Now()
	err = parallel(ctx, 50, sockets, func(ctx context.Context, i int) error {
		w, _, err := dialRaw(ctx, srv.addr, loopbackAddr(2, i), 5*time.Second)
		if err != nil {
			refused.Add(1)
			return nil
		}
		// The server may hang up mid-way: that is its answer, not a
		// failure of the attack.
		w.send(frames, 5*time.Second)
		w.send(closeFrame, time.Second)
		w.conn.Close()
		return nil
	})
	took := time.Since(start)
	res.probe = pr.stop()
	if err != nil {
		return res, err
	}

	// The server closes its side as it sees each close: wait, with a
	// deadline, for its descriptors to come back to where they were.
	after, err := srv.fds()
	for deadline := time.Now().Add(settle); err == nil && after > before && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // a /proc count has no event to wait on
		after, err = srv.fds()
	}
	if err != nil {
		return res, err
	}
	gauge, err := srv.metric(ctx, "duet_signal_sockets")
	if err != nil {
		return res, err
	}
	leaked := after - before
	res.result = fmt.Sprintf("descriptors %d before, %d after (%d leaked, waited up to %v); sockets gauge %.0f; %d of %d refused; %.1f s",
		before, after, leaked, settle, gauge, refused.Load(), sockets, took.Seconds())
	res.kv = []string{fmt.Sprintf("fd_leaked=%d", leaked)}
	return res, nil
}
