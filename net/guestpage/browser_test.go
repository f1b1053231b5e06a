package guestpage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/peer/browsertest"
	"github.com/duetapp/duet/net/signal/server"
)

// pageState is what the page posts with ?report (guest.js's state).
type pageState struct {
	Phase   string `json:"phase"`
	Problem string `json:"problem"`
	Status  string `json:"status"`
	Partner string `json:"partner"`
	Safety  string `json:"safety"`
	Relayed bool   `json:"relayed"`
	Latency *struct {
		Codec, Network, Jitter, Device, Total float64
	} `json:"latency"`
	Stats *struct {
		PacketsReceived, PacketsLost, ConcealedSamples, TotalSamplesReceived int64
	} `json:"stats"`
	Tone *struct {
		Hz   float64   `json:"hz"`
		Amps []float64 `json:"amps"`
	} `json:"tone"`
	Track    *trackState `json:"track"`
	SungAtMS *float64    `json:"sungAtMS"` // lab.js's sing: when its voice began
	SungCtx  *float64    `json:"sungCtx"`  // and at what time of its AudioContext
	LabError string      `json:"labError"`
	Audio    string      `json:"audio"`
	Channels map[string]struct {
		State    string `json:"state"`
		Messages int    `json:"messages"`
	} `json:"channels"`
}

// reporter is the test's end of the page's ?report hook: the states the
// page posts, and the command to answer the next post with.
type reporter struct {
	states     chan pageState
	problemsOK bool // a problem the page shows is what the test waits for
	mu         sync.Mutex
	cmd        map[string]any
}

func (r *reporter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var s pageState
	if err := json.NewDecoder(req.Body).Decode(&s); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case r.states <- s:
	default: // the test looks at the newest only
		select {
		case <-r.states:
		default:
		}
		r.states <- s
	}
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		cmd = map[string]any{}
	}
	json.NewEncoder(w).Encode(cmd)
}

// do has the page do cmd at its next report.
func (r *reporter) do(cmd map[string]any) {
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
}

// await returns the first state the page posts for which ok holds, failing
// the test after d or on a problem the page shows.
func (r *reporter) await(t *testing.T, d time.Duration, what string, ok func(pageState) bool) pageState {
	t.Helper()
	deadline := time.After(d)
	var last pageState
	for {
		select {
		case s := <-r.states:
			if ok(s) {
				return s
			}
			if s.Phase == "problem" && !r.problemsOK {
				t.Fatalf("the page shows a problem: %s (%+v)", s.Problem, s)
			}
			last = s
		case <-deadline:
			b, _ := json.Marshal(last)
			t.Fatalf("the page did not get to %s within %v; last state %s", what, d, b)
		}
	}
}

// lockedBuffer is a log written from the host's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sink keeps what the host's device plays.
type sink struct {
	mu sync.Mutex
	p  []float32
}

func (s *sink) Write(p []float32) error {
	s.mu.Lock()
	s.p = append(s.p, p...)
	s.mu.Unlock()
	return nil
}

func (s *sink) Close() error { return nil }

// len returns how many samples have been played.
func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.p)
}

// from returns the samples played from the i-th on.
func (s *sink) from(i int) []float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.p[min(i, len(s.p)):])
}

// last returns the last n samples played.
func (s *sink) last(n int) []float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.p[max(len(s.p)-n, 0):])
}

// The tones: the host sings a sine at hostHz, the browser's fake
// microphone one at guestHz (Chromium plays the test's file, Firefox a
// sine of its own at 0.1).
const (
	hostHz, hostAmp = 440.0, 0.25
	guestHz         = 660.0
)

// TestBrowserGuest: a real browser opens the link a Duet host gives out,
// joins with the guest page and sings with the host (app.Host, with a
// file device): each hears the other's sine at its level, with no packet
// lost, both see the same safety code and the page shows the latency by
// stage; the page leaves and joins again, and the duet goes on.
func TestBrowserGuest(t *testing.T) {
	for _, k := range browsertest.Kinds() {
		t.Run(string(k), func(t *testing.T) { testBrowserGuest(t, k) })
	}
}

// duet is a Duet host (app.Host, singing a sine from a file device, on a
// rendezvous server that serves the guest page) and a browser on its link.
type duet struct {
	host  *app.Session
	rep   *reporter
	out   *sink
	start time.Time
	files string // served to the page at /files/
}

// startDuet starts a host configured by cfg and browser k on its link;
// both stop when the test ends.
func startDuet(t *testing.T, k browsertest.Kind, cfg func(*app.Config)) *duet {
	d := &duet{start: time.Now(), rep: &reporter{states: make(chan pageState, 1)}, out: &sink{}, files: t.TempDir()}
	srv := server.New(server.Config{})
	srv.Handle(guestpage.Prefix, guestpage.Handler())
	mux := http.NewServeMux()
	mux.Handle("POST /report", d.rep)
	mux.Handle("GET /files/", http.StripPrefix("/files/", http.FileServer(http.Dir(d.files))))
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); hs.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the host's log:\n%s", logs.String())
		}
	})
	c := app.Config{
		Server:   hs.URL,
		Device:   filedev.New(filedev.Config{Input: &tone.Sine{Hz: hostHz, Amp: hostAmp}, Output: d.out}),
		Loopback: true,
		Name:     "Host",
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if cfg != nil {
		cfg(&c)
	}
	host, err := app.Host(ctx, c)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	d.host = host
	var running sync.WaitGroup
	var runErr error
	running.Go(func() { runErr = host.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		running.Wait()
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			t.Errorf("host: %v", runErr)
		}
	})

	link, err := guestpage.Link(hs.URL, host.Code())
	if err != nil {
		t.Fatal(err)
	}
	wav := filepath.Join(t.TempDir(), "mic.wav")
	pcm := make([]float32, audio.SampleRate) // whole periods: Chromium loops it
	(&tone.Sine{Hz: guestHz, Amp: float32(guestAmp[k])}).Read(pcm)
	if err := wavfile.WriteFile(wav, pcm); err != nil {
		t.Fatal(err)
	}
	launch(t, k, d.rep, link+"?auto=1&report=/report", browsertest.Options{AudioFile: wav, ToneHz: guestHz})
	return d
}

// launch starts browser k on url and waits until its page has started
// its audio and left setup. A page whose browser could not start its audio
// within 10 s ("The sound does not start": Firefox's, through the test's
// PulseAudio, took 1-2 s on an idle machine, more under load, and about
// one start in six never came on a loaded 2-core machine, its page
// sometimes stalled meanwhile) is launched again, up to three times, each
// said in the log.
func launch(t *testing.T, k browsertest.Kind, rep *reporter, url string, o browsertest.Options) {
	t.Helper()
	for try := 1; ; try++ {
		b := browsertest.Start(t, k, url, o)
		if started(rep, 25*time.Second) {
			return
		}
		if try == 3 {
			t.Fatalf("%s could not start its audio in 3 launches", k)
		}
		t.Logf("%s could not start its audio (launch %d); launching it again", k, try)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		select { // the closed one's last word
		case <-rep.states:
		default:
		}
	}
}

// started reports whether the page leaves setup with its audio running
// within d; the state that says so stays for the test to read.
func started(rep *reporter, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case s := <-rep.states:
			if strings.HasPrefix(s.Problem, "The sound does not start") {
				return false
			}
			if s.Phase != "setup" && s.Phase != "" && s.Status != "Starting the sound…" {
				select {
				case rep.states <- s:
				default:
				}
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// guestAmp is each browser's microphone level: Chromium plays the test's
// file, Firefox its own sine.
var guestAmp = map[browsertest.Kind]float64{browsertest.Chromium: 0.25, browsertest.Firefox: 0.1}

// firefoxAudio skips a test of the guest page that needs Firefox's audio
// running, unless DUET_FIREFOX_AUDIO is set. Measured by hand on this
// 2-core machine under a load of 5-9: Firefox's audio through the test's
// PulseAudio null sink stalls in about one run in three (the
// AudioContext never starts, or its clock stops at a fraction of a
// second and the page's media, data channels and timers stall with it, or
// the page stops for over 5 s once a track plays), more often with the
// page's meters repainting; when it runs, the page works (TestBrowserGuest
// passed 14 of 20 such runs, the stalls its only failures; the track's
// skew was -9 to +15 ms median, 19 to 98 ms worst, its rate at the 0.1 %
// limit). Chromium runs these tests always; Firefox runs TestRealBrowser
// (net/peer) and the bad-input pages, which need no audio from it.
func firefoxAudio(t *testing.T, k browsertest.Kind) {
	if k == browsertest.Firefox && os.Getenv("DUET_FIREFOX_AUDIO") == "" {
		t.Skip("Firefox's audio through the test's PulseAudio stalls under load; DUET_FIREFOX_AUDIO=1 runs this")
	}
}

func testBrowserGuest(t *testing.T, k browsertest.Kind) {
	firefoxAudio(t, k)
	d := startDuet(t, k, nil)
	host, rep, out, start, guestAmp := d.host, d.rep, d.out, d.start, guestAmp[k]
	for round := range 2 {
		s := rep.await(t, 20*time.Second, "connected", func(s pageState) bool {
			return s.Phase == "connected" && s.Partner == "Host" && s.Latency != nil
		})
		connected := time.Now()
		t.Logf("round %d: %s connected after %v: %q, safety code %s, latency %+v", round, k,
			time.Since(start).Round(time.Millisecond), s.Status, s.Safety, *s.Latency)
		st := host.Stats()
		if s.Safety == "" || s.Safety != st.SafetyCode {
			t.Errorf("safety codes: the page shows %q, the host %q", s.Safety, st.SafetyCode)
		}
		if st.PartnerName != "Guest" {
			t.Errorf("the host calls its partner %q, want Guest (the page's default)", st.PartnerName)
		}

		// The host's sine as the page hears it.
		rep.do(map[string]any{"do": "tone", "hz": hostHz})
		s = rep.await(t, 10*time.Second, "a tone measured", func(s pageState) bool { return s.Tone != nil && len(s.Tone.Amps) > 0 })
		heard := median(s.Tone.Amps)
		t.Logf("%s hears the host's %.0f Hz sine of %.2f at %.3f (windows %.3f); stats %+v", k, hostHz, hostAmp, heard, s.Tone.Amps, *s.Stats)
		if db := 20 * math.Log10(heard/hostAmp); math.Abs(db) > 1.5 {
			t.Errorf("%s hears the host's sine %.1f dB off", k, db)
		}
		if s.Stats.PacketsLost != 0 {
			t.Errorf("%s lost %d packets on loopback", k, s.Stats.PacketsLost)
		}

		// The page's sine as the host hears it, over a second from 1 s
		// after the page connected (the host's playout measures the new
		// connection's packets for 0.1 s before it plays them).
		rep.await(t, 10*time.Second, "2 s connected", func(pageState) bool { return time.Since(connected) > 2*time.Second })
		got := out.last(audio.SampleRate)
		var amps []float64
		for i := 0; i+4800 <= len(got); i += 4800 {
			amps = append(amps, measure.Tone(got[i:i+4800], guestHz, audio.SampleRate))
		}
		st = host.Stats()
		t.Logf("the host hears %s's %.0f Hz sine of %.2f at %.3f (windows %.3f); %s; voice: %+v; %d padding packets skipped",
			k, guestHz, guestAmp, median(amps), amps, st.PartnerCodec, st.Voice, st.Peer.PaddingReceived)
		if db := 20 * math.Log10(median(amps)/guestAmp); math.Abs(db) > 1.5 {
			t.Errorf("the host hears %s's sine %.1f dB off", k, db)
		}
		if st.Voice.PacketsLost != 0 {
			t.Errorf("the host lost %d of %s's packets on loopback", st.Voice.PacketsLost, k)
		}

		if round == 0 {
			// Leave, then come back to the same room.
			rep.do(map[string]any{"do": "leave"})
			rep.await(t, 10*time.Second, "left", func(s pageState) bool { return s.Phase == "left" })
			rep.do(map[string]any{"do": "join"})
		}
	}
	t.Logf("%s: done after %v", k, time.Since(start).Round(time.Millisecond))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}
