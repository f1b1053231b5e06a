// Command duet-server is Duet's rendezvous server alone, for a community or
// a company to run for its singers: room codes and connection set-up, no
// media (that goes peer to peer, encrypted end to end). It is pure Go: it
// builds with CGO_ENABLED=0 and links no audio or UI code (a test guards
// it), so it runs on any small server. "duet serve" is the same server.
//
//	duet-server [-listen :3838] [-room-ttl 1h] [-v]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	ossignal "os/signal"
	"syscall"
	"time"

	"github.com/duetapp/duet/net/signal"
)

func main() {
	listen := flag.String("listen", ":3838", "`address` to listen on, host:port")
	roomTTL := flag.Duration("room-ttl", time.Hour, "how long a host may wait for a guest before the room expires")
	verbose := flag.Bool("v", false, "log every event")
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := ossignal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "duet-server: cannot listen on %s: %v\n", *listen, err)
		os.Exit(1)
	}
	fmt.Println(signal.URL(ln.Addr()))
	if err := signal.Serve(ctx, ln, signal.NewServer(signal.ServerConfig{Logger: log, RoomTTL: *roomTTL})); err != nil {
		fmt.Fprintln(os.Stderr, "duet-server:", err)
		os.Exit(1)
	}
}
