// Command duet-server is Duet's rendezvous server alone, for a community or
// a company to run for its singers: room codes and connection set-up, and
// with -turn a STUN/TURN relay, but no media otherwise (that goes peer to
// peer, encrypted end to end). It is pure Go: it builds with
// CGO_ENABLED=0 and links no audio or UI code (a test guards it), so it
// runs on any small server. "duet serve" is the same server, without -redis
// and /metrics (the desktop app links neither Redis nor Prometheus: a test
// guards that too).
//
//	duet-server [-listen :3838] [-turn :3478 [-public-ip IP] [-turn-secret-file F]] [-room-ttl 1h]
//	            [-redis HOST:PORT [-redis-prefix duet:]] [-tls-cert F -tls-key F]
//	            [-metrics-listen 127.0.0.1:9100] [-metrics-token T] [-trusted-proxy CIDR]...
//	            [-max-sockets N] [-max-sockets-per-address N] [-max-rooms N]
//	            [-turn-allocations N] [-turn-allocations-per-credential N] [-v]
//
// With -redis, several instances behind a load balancer share rooms, and a
// singer whose instance restarts resumes its seat on another. The TURN
// secret comes from -turn-secret-file or $DUET_TURN_SECRET (-turn-secret
// works too, but other users of the machine can read it in ps).
// -metrics-listen serves /metrics on a listener of its own (and not on
// -listen); -metrics-token (or $DUET_METRICS_TOKEN) makes it ask for a
// bearer token. -trusted-proxy names a reverse proxy whose X-Forwarded-For
// is believed. The -max-* and -turn-allocations* flags cap sockets, rooms
// and relay allocations (sockets and allocations are a file descriptor
// each). duet-server -h lists every flag.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	ossignal "os/signal"
	"syscall"

	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/rendezvous/serverextras"
)

func main() {
	o := rendezvous.Options{Extras: serverextras.New()}
	o.Register(flag.CommandLine)
	verbose := flag.Bool("v", false, "log every event")
	flag.Parse()
	o.FromEnv(os.Getenv)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := ossignal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := o.Run(ctx, os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "duet-server:", err)
		os.Exit(1)
	}
}
