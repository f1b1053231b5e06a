package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// partnerBurst is attack 3 of issue 12: in each of nine rooms the guest
// sends 99 candidates back to back (with its join, the per-socket burst of
// 100). It counts the trials in which the host got every candidate and was
// not dropped, and those in which the room was kept: a third singer's join
// then finds it full, not gone.
func partnerBurst(ctx context.Context, bin string, addrs *honestAddrs) (attackResult, error) {
	const trials, burst = 9, 99
	res := attackResult{name: "burst: a guest sends 99 candidates back to back (9 rooms)"}
	srv, err := startServer(ctx, bin)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pr := startProber(ctx, srv.url, addrs)
	var hostKept, roomKept int
	var seen []string
	for trial := range trials {
		host, room, err := burstTrial(ctx, srv.url, addrs, trial, burst)
		if err != nil {
			res.probe = pr.stop()
			return res, fmt.Errorf("trial %d: %w", trial, err)
		}
		if host {
			hostKept++
		}
		if room == "room-full" {
			roomKept++
		}
		seen = append(seen, room)
	}
	res.probe = pr.stop()
	res.result = fmt.Sprintf("host got all %d and stayed in %d/%d; room kept in %d/%d (a third join got: %v)",
		burst, hostKept, trials, roomKept, trials, seen)
	res.kv = []string{fmt.Sprintf("room_kept_under_burst=%d/%d", roomKept, trials)}
	return res, nil
}

// burstTrial runs one room: it reports whether the host received all n
// candidates, and what a third singer's join got afterwards: "room-full"
// (the room is kept), "room-not-found" (deleted), or "joined".
func burstTrial(ctx context.Context, url string, addrs *honestAddrs, trial, n int) (hostOK bool, third string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	host, err := signal.Dial(ctx, url, fromAddress(addrs.take().String()))
	if err != nil {
		return false, "", err
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		return false, "", fmt.Errorf("create: %w", err)
	}
	guest, err := signal.Dial(ctx, url, fromAddress(addrs.take().String()))
	if err != nil {
		return false, "", err
	}
	defer guest.Close()
	if err := guest.Join(ctx, code); err != nil {
		return false, "", fmt.Errorf("join: %w", err)
	}
	if m, err := host.Recv(ctx); err != nil || m.Type != signal.TypePeerJoined {
		return false, "", fmt.Errorf("waiting for peer-joined: %+v, %v", m, err)
	}
	for k := range n {
		if err := guest.Send(ctx, signal.Message{Type: signal.TypeCandidate, Candidate: labCandidate(trial, k, "g")}); err != nil {
			return false, "", fmt.Errorf("candidate %d: %w", k, err)
		}
	}
	got := 0
	for got < n {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := host.Recv(rctx)
		rcancel()
		if err != nil {
			break // dropped (or nothing more came): the host is out
		}
		if m.Type == signal.TypeCandidate {
			got++
		}
	}

	late, err := signal.Dial(ctx, url, fromAddress(addrs.take().String()))
	if err != nil {
		return false, "", err
	}
	defer late.Close()
	var e *signal.Error
	switch err := late.Join(ctx, code); {
	case err == nil:
		return got == n, "joined", nil
	case errors.As(err, &e):
		return got == n, e.Code, nil
	default:
		return false, "", fmt.Errorf("third join: %w", err)
	}
}
