package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// defaultListen is the rendezvous server's default address: port 3838
// ("DUET" on a phone keypad) on every interface, since a server is there to
// be reached.
const defaultListen = ":3838"

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	listen := fs.String("listen", defaultListen, "`address` to listen on, host:port")
	roomTTL := fs.Duration("room-ttl", time.Hour, "how long a host may wait for a guest before the room expires")
	verbose := fs.Bool("v", false, "log every event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLogger(stderr, *verbose)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *listen, err)
	}
	fmt.Fprintln(stdout, signal.URL(ln.Addr()))
	err = signal.Serve(ctx, ln, signal.NewServer(signal.ServerConfig{Logger: log, RoomTTL: *roomTTL}))
	if err != nil {
		return fmt.Errorf("rendezvous server: %w", err)
	}
	return nil
}
