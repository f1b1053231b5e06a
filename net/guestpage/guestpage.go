// Package guestpage is Duet's guest in a web browser: a page, served by
// the rendezvous server at /j/CODE, that joins the room CODE with the
// browser's own WebRTC, no install. The host's app shows the link (Link).
//
// The page is plain ES modules and a style sheet, embedded in the binary
// (web/): no Node and no network beyond the server at run time. It speaks
// the rendezvous protocol (package signal) as JSON text frames over /ws,
// answers the host's offer with the microphone, and shows the partner's
// status, the latency by stage, the safety code (as package peer derives
// it, from both DTLS fingerprints), meters, mute, the partner's volume and
// Leave. Browsers give the microphone only to a secure origin: serve the
// page over HTTPS (or on localhost).
//
// Handler is safe for concurrent use.
package guestpage

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/duetapp/duet/net/signal"
)

//go:embed web
var web embed.FS

// Prefix is where the page lives on the rendezvous server: Prefix+CODE.
const Prefix = "/j/"

// Handler serves the page at Prefix+CODE (any code: the page checks it
// and says so) and its modules at Prefix+"static/". Register it at Prefix
// (rendezvous server's Handle).
func Handler() http.Handler {
	files, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	static := http.StripPrefix(Prefix+"static/", http.FileServerFS(files))
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Only the page's own modules, style and the server's socket.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self' "+socketOrigins(r.Host)+"; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Permissions-Policy", "microphone=(self)")
		rest := strings.TrimPrefix(r.URL.Path, Prefix)
		if strings.HasPrefix(rest, "static/") {
			h.Set("Cache-Control", "no-cache")
			static.ServeHTTP(w, r)
			return
		}
		if rest == "" || strings.Contains(rest, "/") {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store") // the room behind a link comes and goes
		w.Write(index)
	})
}

// socketOrigins returns the WebSocket origins of host for a CSP
// connect-src ('self' covers them only in newer browsers), or "" for a
// host a header may not carry.
func socketOrigins(host string) string {
	for _, r := range host {
		if !(r == '.' || r == ':' || r == '-' || r == '[' || r == ']' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return ""
		}
	}
	if host == "" {
		return ""
	}
	return "ws://" + host + " wss://" + host
}

// Link returns the guest's link to room code on the rendezvous server at
// server (as given to duet host --server: http, https, ws or wss, with or
// without a path to /ws): http(s)://HOST/j/CODE.
func Link(server string, code signal.Code) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("guestpage: server URL %q: %w", server, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("guestpage: server URL %q: want http, https, ws or wss", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("guestpage: server URL %q has no host", server)
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: path.Join(Prefix, code.String())}).String(), nil
}
