package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duetapp/duet/net/relay/relaytest"
	"github.com/duetapp/duet/net/signal"
)

// turnFlood is attack 6 of issue 12: a server with its TURN relay (as
// "duet serve -turn" runs it), a host and a guest in a room, and the
// host's credential opening allocations, each from a UDP socket of its
// own, until the relay refuses one or 1,000 are open. It also reports
// whether a bare create (no partner yet) already gets a credential, and
// whether the credential still opens an allocation once both singers
// have left.
func turnFlood(ctx context.Context, bin string, addrs *honestAddrs) (res attackResult, err error) {
	const limit = 1000
	res.name = "TURN: one credential opens allocations until refused"
	srv, err := startServer(ctx, bin, "-turn", "127.0.0.1:0", "-public-ip", "127.0.0.1", "-relay-private")
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pr := startProber(ctx, srv.url, addrs)
	defer func() { res.probe = pr.stop() }()

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	host, err := signal.Dial(ctx, srv.url, fromAddress(addrs.take().String()))
	if err != nil {
		return res, err
	}
	defer host.Close()
	code, err := host.Create(ctx)
	if err != nil {
		return res, fmt.Errorf("create: %w", err)
	}
	_, _, _, bare := turnOf(host.ICEServers())
	guest, err := signal.Dial(ctx, srv.url, fromAddress(addrs.take().String()))
	if err != nil {
		return res, err
	}
	defer guest.Close()
	if err := guest.Join(ctx, code); err != nil {
		return res, fmt.Errorf("join: %w", err)
	}
	url, user, cred, ok := turnOf(guest.ICEServers())
	if !ok {
		// The host's may come with peer-joined's news instead.
		if m, err := host.Recv(ctx); err != nil || m.Type != signal.TypePeerJoined {
			return res, fmt.Errorf("waiting for peer-joined: %+v, %v", m, err)
		}
		if url, user, cred, ok = turnOf(host.ICEServers()); !ok {
			return res, errors.New("no TURN credential reached either singer")
		}
	}

	start := time.Now()
	allocs, err := relaytest.Flood(ctx, url, user, cred, "127.0.0.1:0", limit)
	took := time.Since(start)
	n := allocs.Len()
	allocs.Close()
	stopped := fmt.Sprintf("refused with %d", relaytest.Code(err))
	switch {
	case err == nil:
		stopped = fmt.Sprintf("never refused (the flood stops at %d)", limit)
	case relaytest.Code(err) == 0:
		return res, fmt.Errorf("flood: %w", err)
	}

	// Both leave: a credential given up with its seat opens nothing more.
	host.Close()
	guest.Close()
	after, err := relaytest.Flood(ctx, url, user, cred, "127.0.0.1:0", 1)
	afterLeave := after.Len() == 1
	after.Close()
	if err != nil && relaytest.Code(err) == 0 {
		return res, fmt.Errorf("allocation after leaving: %w", err)
	}
	res.result = fmt.Sprintf("%d allocations in %.2f s, %s; credential with a bare create: %s; allocates after both left: %s",
		n, took.Seconds(), stopped, yesNo(bare), yesNo(afterLeave))
	res.kv = []string{fmt.Sprintf("turn_allocs_per_cred=%d turn_cred_on_bare_create=%s turn_allocs_after_leave=%s", n, yesNo(bare), yesNo(afterLeave))}
	return res, nil
}

// turnOf returns the first TURN server among servers: its turn: URL, user
// name and credential.
func turnOf(servers []signal.ICEServer) (url, user, cred string, ok bool) {
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") && s.Username != "" {
				return u, s.Username, s.Credential, true
			}
		}
	}
	return "", "", "", false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
