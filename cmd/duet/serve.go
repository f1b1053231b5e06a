package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	srv := signal.NewServer(signal.ServerConfig{Logger: log, RoomTTL: *roomTTL})
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintln(stdout, serverURL(ln.Addr()))

	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("rendezvous server: %w", err)
	case <-ctx.Done():
	}
	// http.Server.Shutdown does not track websockets: close them first.
	srv.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(shutdownCtx)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// serverURL is the URL clients use for addr; an unspecified IP (listening
// everywhere) is given as localhost.
func serverURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return "http://localhost:" + port
	}
	return "http://" + tcp.String()
}
