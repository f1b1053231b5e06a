package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// honestBlock is the loopback block (see loopbackAddr) honest singers come
// from: every probe's host and guest have addresses no attacker uses, and
// no earlier probe used, so that only the attack can stand in their way.
const honestBlock = 9

// honestAddrs hands out the honest singers' addresses. Safe for concurrent
// use.
type honestAddrs struct{ next atomic.Int64 }

func (h *honestAddrs) take() netip.Addr {
	return loopbackAddr(honestBlock, int(h.next.Add(1)))
}

// probeEvery is the pause between two honest probes during an attack.
const probeEvery = 250 * time.Millisecond

// probeTimeout bounds one honest create and join: past it, the singers
// have given up.
const probeTimeout = 5 * time.Second

// prober measures, while an attack runs, how long an honest host takes to
// create a room and an honest guest to join it, over and over until stop.
type prober struct {
	stop func() probeResult
}

// probeResult is what a prober saw.
type probeResult struct {
	lat    []time.Duration // of the probes that got in, sorted
	failed int
	errs   []string // distinct reasons probes failed, the first maxProbeErrs
}

// maxProbeErrs bounds the reasons a prober keeps: a network error names
// ports, so each can be new.
const maxProbeErrs = 8

func (r probeResult) tries() int { return len(r.lat) + r.failed }

// add merges o into r.
func (r *probeResult) add(o probeResult) {
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	r.failed += o.failed
	for _, e := range o.errs {
		if len(r.errs) < maxProbeErrs && !slices.Contains(r.errs, e) {
			r.errs = append(r.errs, e)
		}
	}
}

// quantile returns the q-quantile of the probes' latency (nearest rank), or
// false if none got in.
func (r probeResult) quantile(q float64) (time.Duration, bool) {
	return quantile(r.lat, q)
}

// quantile returns the q-quantile of sorted (nearest rank: the smallest
// value with at least q of them at or below it), or false if it is empty.
func quantile(sorted []time.Duration, q float64) (time.Duration, bool) {
	if len(sorted) == 0 {
		return 0, false
	}
	k := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)], true
}

// startProber probes the server at url until the returned prober's stop,
// which waits for the probe under way and returns the results.
func startProber(ctx context.Context, url string, addrs *honestAddrs) *prober {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu  sync.Mutex
		res probeResult
		wg  sync.WaitGroup
	)
	wg.Go(func() {
		for {
			d, err := honestJoin(ctx, url, addrs)
			if ctx.Err() != nil {
				return // cut short by stop: neither in nor refused
			}
			mu.Lock()
			if err != nil {
				res.failed++
				if e := err.Error(); len(res.errs) < maxProbeErrs && !slices.Contains(res.errs, e) {
					res.errs = append(res.errs, e)
				}
			} else {
				res.lat = append(res.lat, d)
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(probeEvery):
			}
		}
	})
	return &prober{stop: func() probeResult {
		cancel()
		wg.Wait()
		slices.Sort(res.lat)
		return res
	}}
}

// honestJoin has an honest host create a room and an honest guest join
// it, and returns how long that took: from the host's dial to the host
// hearing peer-joined.
func honestJoin(ctx context.Context, url string, addrs *honestAddrs) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	host, err := signal.Dial(ctx, url, fromAddress(addrs.take().String()))
	if err != nil {
		return 0, probeErr("host dial", err)
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		return 0, probeErr("create", err)
	}
	guest, err := signal.Dial(ctx, url, fromAddress(addrs.take().String()))
	if err != nil {
		return 0, probeErr("guest dial", err)
	}
	defer guest.Close()
	if err := guest.Join(ctx, code); err != nil {
		return 0, probeErr("join", err)
	}
	for {
		m, err := host.Recv(ctx)
		if err != nil {
			return 0, probeErr("peer-joined", err)
		}
		if m.Type == signal.TypePeerJoined {
			return time.Since(start), nil
		}
	}
}

// probeErr names the step that failed and why, briefly: an error reply by
// its code, a timeout as such, so that a table can list distinct reasons.
func probeErr(step string, err error) error {
	var e *signal.Error
	switch {
	case errors.As(err, &e):
		return fmt.Errorf("%s: %s", step, e.Code)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: timeout %v", step, probeTimeout)
	}
	return fmt.Errorf("%s: %w", step, err)
}
