// Package ntpcheck asks an NTP server how far this machine's wall clock is
// from it: a cross-check of the session clock and a source of wall-clock
// time (DESIGN.md §5). It is one SNTP query (RFC 5905 §8's four
// timestamps) through github.com/beevik/ntp, bounded by a timeout and the
// caller's context.
//
// An unreachable server is a normal outcome, not a failure: duets on an
// offline LAN never reach one, and the session clock does not need it.
// Check then returns an error wrapping ErrUnreachable, so callers can tell
// "no answer" from "a bad answer" (ErrBadResponse).
//
// Offsets are the server's clock minus this machine's, in the sign of
// net/clock (host minus guest): add Offset to a local wall-clock time to
// get the server's. Check is safe for concurrent use; it keeps no state.
package ntpcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/beevik/ntp"
)

// DefaultServer is asked when Config.Server is empty.
const DefaultServer = "pool.ntp.org"

// DefaultTimeout bounds a query when Config.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// Off as Config.Server means never ask (the settings' "off").
const Off = "off"

var (
	// ErrUnreachable wraps every failure to get an answer: no route, a
	// refused port, a name that does not resolve, a timeout.
	ErrUnreachable = errors.New("ntpcheck: server unreachable")
	// ErrBadResponse wraps answers unfit for time keeping: a kiss of
	// death, an unsynchronised server, a malformed reply.
	ErrBadResponse = errors.New("ntpcheck: unusable answer")
	// ErrOff is returned when Config.Server is Off.
	ErrOff = errors.New("ntpcheck: NTP check turned off")
)

// Config says whom to ask and how long to wait.
type Config struct {
	// Server is "host" (port 123) or "host:port"; empty is DefaultServer,
	// Off never asks.
	Server string
	// Timeout bounds the whole query, name lookup included; zero is
	// DefaultTimeout. The context's deadline, if sooner, wins.
	Timeout time.Duration
}

// Result is one answer.
type Result struct {
	// Server is the address asked, as configured.
	Server string
	// Offset is the server's clock minus this machine's wall clock.
	Offset time.Duration
	// RTT is the query's network round trip (the server's hold time
	// excluded); the offset is uncertain by up to half of it.
	RTT time.Duration
	// Stratum is the server's distance from a reference clock (1 is
	// attached to one).
	Stratum uint8
	// RootDistance is the server's own error bound to its reference; the
	// offset's total error bound is RTT/2 + RootDistance.
	RootDistance time.Duration
	// Time is the server's clock when the answer arrived.
	Time time.Time
}

// Check asks cfg.Server once. Errors wrap ErrUnreachable, ErrBadResponse
// or ErrOff, or are the context's.
func Check(ctx context.Context, cfg Config) (Result, error) {
	server := cfg.Server
	if server == "" {
		server = DefaultServer
	}
	if server == Off {
		return Result{}, ErrOff
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var stop func() bool // unhooks the context from the socket
	opts := ntp.QueryOptions{
		Timeout: time.Until(deadline),
		Dialer: func(local, remote string) (net.Conn, error) {
			d := net.Dialer{}
			if local != "" {
				d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
			}
			conn, err := d.DialContext(ctx, "udp", remote)
			if err != nil {
				return nil, err
			}
			// A cancelled context ends the wait for the answer at once.
			stop = context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
			return conn, nil
		},
	}
	resp, err := ntp.QueryWithOptions(server, opts)
	if stop != nil {
		stop()
	}
	if err != nil {
		if ctxErr := context.Cause(ctx); ctxErr != nil && !errors.Is(ctxErr, context.DeadlineExceeded) {
			return Result{}, fmt.Errorf("ntpcheck: %s: %w", server, ctxErr)
		}
		return Result{}, fmt.Errorf("%w: %s: %w", ErrUnreachable, server, err)
	}
	if err := resp.Validate(); err != nil {
		return Result{}, fmt.Errorf("%w: %s: %w", ErrBadResponse, server, err)
	}
	return Result{
		Server:       server,
		Offset:       resp.ClockOffset,
		RTT:          resp.RTT,
		Stratum:      resp.Stratum,
		RootDistance: resp.RootDistance,
		Time:         time.Now().Add(resp.ClockOffset),
	}, nil
}
