// Package relaytest opens TURN allocations on a relay the way an attacker
// holding one credential would: each from a UDP socket of its own, until
// the relay refuses. Tests of net/relay and the lab's abuse scenario use
// it; it is no part of a server.
//
// Allocations are safe for one goroutine; Flood blocks until it is done.
package relaytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// Allocations are TURN allocations held open until Close.
type Allocations struct {
	clients []*turn.Client
	conns   []net.PacketConn // one socket per allocation, so one 5-tuple each
	relays  []net.PacketConn
}

// Len is the number of allocations held.
func (a *Allocations) Len() int { return len(a.relays) }

// CreatePermission asks the server, on allocation i, for a permission to
// exchange packets with peer: a request that needs a valid credential.
func (a *Allocations) CreatePermission(i int, peer net.Addr) error {
	return a.clients[i].CreatePermission(peer)
}

// Close releases every allocation (a Refresh with lifetime 0 each) and
// closes the sockets.
func (a *Allocations) Close() error {
	var errs []error
	for _, r := range a.relays {
		errs = append(errs, r.Close())
	}
	for _, c := range a.clients {
		c.Close()
	}
	for _, c := range a.conns {
		errs = append(errs, c.Close())
	}
	a.clients, a.conns, a.relays = nil, nil, nil
	return errors.Join(errs...)
}

// Flood opens allocations on the TURN server of url ("turn:host:port",
// optionally with "?transport=udp") with one credential, from sockets on
// local (e.g. "127.0.0.1:0"), until the server refuses one, limit are open
// or ctx ends. It returns the allocations it holds (never nil; the caller
// closes them) and what stopped it before limit: the server's refusal
// (see Code) or another error.
func Flood(ctx context.Context, url, username, credential, local string, limit int) (*Allocations, error) {
	a := &Allocations{}
	server, ok := strings.CutPrefix(url, "turn:")
	if !ok {
		return a, fmt.Errorf("relaytest: %q is not a turn: URL", url)
	}
	server, _, _ = strings.Cut(server, "?")
	for a.Len() < limit {
		conn, err := net.ListenPacket("udp4", local)
		if err != nil {
			return a, fmt.Errorf("relaytest: socket %d: %w", a.Len()+1, err)
		}
		c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: server, Username: username, Password: credential, Conn: conn})
		if err == nil {
			err = c.Listen()
		}
		if err != nil {
			conn.Close()
			return a, fmt.Errorf("relaytest: client: %w", err)
		}
		relayed, err := c.AllocateWithContext(ctx)
		if err != nil {
			c.Close()
			conn.Close()
			return a, fmt.Errorf("relaytest: allocation %d: %w", a.Len()+1, err)
		}
		a.clients, a.conns, a.relays = append(a.clients, c), append(a.conns, conn), append(a.relays, relayed)
	}
	return a, nil
}

// Code is the TURN error code with which a server refused a request in
// err (e.g. 486, Allocation Quota Reached; 401, Unauthorized), or 0.
func Code(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}
