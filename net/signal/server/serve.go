package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// Bounds of the HTTP server that NewHTTPServer returns. They end at the
// upgrade: a WebSocket has no deadline of net/http (the hijack clears
// them) and is kept by pings (Config.PingTimeout).
const (
	// ReadHeaderTimeout bounds the reading of a request's headers, and
	// ReadTimeout the whole request.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 15 * time.Second
	// WriteTimeout bounds the writing of a response.
	WriteTimeout = 15 * time.Second
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout = 30 * time.Second
	// MaxHeaderBytes bounds a request's headers (net/http's default is
	// 1 MB); a WebSocket handshake needs well under 1 kB.
	MaxHeaderBytes = 16 << 10
)

// NewHTTPServer returns an http.Server for h (a Server, or a metrics handler)
// with the timeouts and header limit above. Request bodies need no limit
// of their own: Server refuses every request that has one.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Serve serves srv on ln, with NewHTTPServer, until ctx is done, then shuts
// down gracefully: websockets are closed with "going away"
// (http.Server.Shutdown does not track hijacked connections), then the
// HTTP server drains for up to five seconds. With tc it serves HTTPS
// (wss). srv is closed when Serve returns.
func Serve(ctx context.Context, ln net.Listener, srv *Server, tc *tls.Config) error {
	hs := NewHTTPServer(srv)
	hs.TLSConfig = tc
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
