package guestpage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/duetapp/duet/net/signal"
)

func TestLink(t *testing.T) {
	code, err := signal.ParseCode("k7qm3xrt")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ server, want string }{
		{"http://127.0.0.1:3838", "http://127.0.0.1:3838/j/K7QM-3XRT"},
		{"https://duet.example.org", "https://duet.example.org/j/K7QM-3XRT"},
		{"wss://duet.example.org/ws", "https://duet.example.org/j/K7QM-3XRT"},
		{"ws://[::1]:3838/ws", "http://[::1]:3838/j/K7QM-3XRT"},
		{"ftp://x", ""},
		{"duet.example.org", ""},
	} {
		got, err := Link(tc.server, code)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("Link(%q) = %q, %v; want %q", tc.server, got, err, tc.want)
		}
	}
}

// TestHandler: the page at /j/CODE for any code, its modules as
// JavaScript, nothing else, and a policy that lets the page load only its
// own code.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, body  string
	}{
		{"GET", "/j/K7QM-3XRT", 200, "text/html", `src="/j/static/guest.js"`},
		{"GET", "/j/not-a-code", 200, "text/html", "<title>"}, // the page says so
		{"HEAD", "/j/K7QM-3XRT", 200, "text/html", ""},
		{"GET", "/j/static/guest.js", 200, "text/javascript", "import"},
		{"GET", "/j/static/signal.js", 200, "text/javascript", "parseCode"},
		{"GET", "/j/static/style.css", 200, "text/css", "body"},
		{"GET", "/j/static/nope.js", 404, "", ""},
		{"GET", "/j/", 404, "", ""},
		{"GET", "/j/a/b", 404, "", ""},
		{"POST", "/j/K7QM-3XRT", 405, "", ""},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
			continue
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, ct, tc.ctype)
		}
		if !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.body)
		}
		if tc.status == 200 {
			csp := res.Header.Get("Content-Security-Policy")
			host := strings.TrimPrefix(srv.URL, "http://")
			for _, want := range []string{"script-src 'self'", "ws://" + host, "default-src 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s %s: Content-Security-Policy %q lacks %q", tc.method, tc.path, csp, want)
				}
			}
		}
	}
}

func TestSocketOrigins(t *testing.T) {
	for host, want := range map[string]string{
		"127.0.0.1:3838":  "ws://127.0.0.1:3838 wss://127.0.0.1:3838",
		"[::1]:80":        "ws://[::1]:80 wss://[::1]:80",
		"a.b; script-src": "",
		"":                "",
	} {
		if got := socketOrigins(host); got != want {
			t.Errorf("socketOrigins(%q) = %q, want %q", host, got, want)
		}
	}
}
