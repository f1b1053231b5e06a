package signal

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves srv on ln until ctx is done, then shuts down gracefully:
// websockets are closed with "going away" (http.Server.Shutdown does not
// track hijacked connections), then the HTTP server drains for up to five
// seconds. With tc it serves HTTPS (wss). srv is closed when Serve returns.
func Serve(ctx context.Context, ln net.Listener, srv *Server, tc *tls.Config) error {
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tc}
	served := make(chan error, 1)
	go func() {
		if tc != nil {
			served <- hs.ServeTLS(ln, "", "")
			return
		}
		served <- hs.Serve(ln)
	}()
	select {
	case err := <-served:
		srv.Close()
		return err
	case <-ctx.Done():
	}
	srv.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if e := <-served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// URL is the address clients use to reach a server listening on addr
// (https when secure); an unspecified IP (listening everywhere) is given as
// localhost.
func URL(addr net.Addr, secure bool) string {
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return scheme + "localhost:" + port
	}
	return scheme + tcp.String()
}
