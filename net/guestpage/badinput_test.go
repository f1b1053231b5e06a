package guestpage_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/peer/browsertest"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// TestBrowserBadInput: a page that cannot go on says why in words, not
// with a silent call: no microphone, a microphone refused, a link to a room
// that is gone, a link that is not a room's, a browser without WebRTC
// (told which browsers work). The microphone cases run in both browsers,
// the links (the same code in any) in Chromium, WebRTC turned off in
// Firefox (Chromium has no switch for it); the seven at once.
func TestBrowserBadInput(t *testing.T) {
	gone, err := signal.ParseCode("K7QM-3XRT")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		kinds   []browsertest.Kind
		mic     browsertest.Microphone
		noRTC   bool
		path    string // the link's path; "" for a room's
		problem string
	}{
		{"no microphone", browsertest.Kinds(), browsertest.NoMicrophone, false, "", "No microphone found"},
		{"microphone refused", browsertest.Kinds(), browsertest.DeniedMicrophone, false, "", "The microphone is blocked"},
		{"room gone", []browsertest.Kind{browsertest.Chromium}, browsertest.FakeMicrophone, false, "/j/" + gone.String(), "Could not join"},
		{"not a room link", []browsertest.Kind{browsertest.Chromium}, browsertest.FakeMicrophone, false, "/j/hello", "This is not a room link"},
		{"no WebRTC", []browsertest.Kind{browsertest.Firefox}, browsertest.FakeMicrophone, true, "", "This browser cannot join a duet"},
	} {
		for _, k := range tc.kinds {
			t.Run(tc.name+"/"+string(k), func(t *testing.T) {
				t.Parallel() // pages that stop at their first step: light
				srv := server.New(server.Config{})
				srv.Handle(guestpage.Prefix, guestpage.Handler())
				rep := &reporter{states: make(chan pageState, 1), problemsOK: true}
				mux := http.NewServeMux()
				mux.Handle("POST /report", rep)
				mux.Handle("/", srv)
				hs := httptest.NewServer(mux)
				defer func() { srv.Close(); hs.Close() }()
				path := tc.path
				if path == "" {
					host, err := signal.Dial(t.Context(), hs.URL)
					if err != nil {
						t.Fatal(err)
					}
					defer host.Close()
					code, err := host.Create(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					path = "/j/" + code.String()
				}
				browsertest.Start(t, k, hs.URL+path+"?auto=1&report=/report", browsertest.Options{Microphone: tc.mic, NoWebRTC: tc.noRTC})
				s := rep.await(t, 15*time.Second, "a problem shown", func(s pageState) bool { return s.Phase == "problem" })
				if !strings.Contains(s.Problem, tc.problem) {
					t.Errorf("the page shows %q, want %q", s.Problem, tc.problem)
				}
				if tc.noRTC && !strings.Contains(s.Problem, "WebRTC") {
					t.Errorf("the page shows %q, not what the browser lacks", s.Problem)
				}
			})
		}
	}
}
