package ui

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/signal"
)

// fakeSession runs until its context ends and remembers what it was told.
type fakeSession struct {
	code signal.Code

	mu       sync.Mutex
	muted    bool
	playing  bool
	plays    int
	records  []string
	track    app.TrackStatus
	gains    map[string]float32
	recorded bool
}

func (f *fakeSession) Code() signal.Code { return f.code }
func (f *fakeSession) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (f *fakeSession) Stats() app.Stats {
	return app.Stats{SafetyCode: "123 456"}
}
func (f *fakeSession) Levels() app.Levels {
	return app.Levels{Mic: meter.Level{Peak: -6}, Partner: meter.Level{Peak: -30}, Output: meter.Level{Peak: meter.Silent}, Track: meter.Level{Peak: meter.Silent}}
}
func (f *fakeSession) Latency() app.Latency { return app.Latency{} }
func (f *fakeSession) SetMuted(m bool)      { f.mu.Lock(); f.muted = m; f.mu.Unlock() }
func (f *fakeSession) Muted() bool          { f.mu.Lock(); defer f.mu.Unlock(); return f.muted }
func (f *fakeSession) setGain(k string, g float32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gains == nil {
		f.gains = map[string]float32{}
	}
	f.gains[k] = g
}
func (f *fakeSession) SetMonitor(g float32)     { f.setGain("monitor", g) }
func (f *fakeSession) SetPartnerGain(g float32) { f.setGain("partner", g) }
func (f *fakeSession) SetJitterBias(float64)    {}
func (f *fakeSession) Track() app.TrackStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.track
	t.Playing = f.playing
	t.Recording = f.recorded
	return t
}
func (f *fakeSession) SetTrack(*track.Track) error { return nil }
func (f *fakeSession) Play() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.playing = true
	f.plays++
	return nil
}
func (f *fakeSession) Pause() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.playing = false
	return nil
}
func (f *fakeSession) Seek(time.Duration) error { return nil }
func (f *fakeSession) Record(dir string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.records = append(f.records, dir)
	f.recorded, f.playing = true, true
	f.track.Take = dir + "/take-1"
	return f.track.Take, nil
}
func (f *fakeSession) StopRecording() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorded, f.playing = false, false
	return nil
}

type fakeBackend struct {
	mu       sync.Mutex
	joined   []signal.Code
	session  Session
	err      error
	settings app.Settings
	hosts    int
	checks   int // mic checks started
}

// newFake is a backend whose setup is done, with session s.
func newFake(s Session) *fakeBackend {
	return &fakeBackend{session: s, settings: app.Settings{SetupDone: true}}
}

func (b *fakeBackend) Settings() app.Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settings
}

func (b *fakeBackend) SaveSettings(s app.Settings) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settings = s
	return nil
}

func (b *fakeBackend) Devices() ([]string, []string, error) {
	return []string{"USB Mic"}, []string{"Headphones", "HDMI"}, nil
}

// MicCheck reports a steady −12 dBFS until ctx ends.
func (b *fakeBackend) MicCheck(ctx context.Context, s app.Settings, level func(meter.Level)) error {
	b.mu.Lock()
	b.checks++
	b.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			level(meter.Level{Peak: -12, RMS: -20})
		}
	}
}

// Calibrate goes through its progress and measures 12 ms.
func (b *fakeBackend) Calibrate(ctx context.Context, s app.Settings, progress func(float64)) (app.Calibration, error) {
	for _, f := range []float64{0.25, 0.5, 1} {
		if ctx.Err() != nil {
			return app.Calibration{}, ctx.Err()
		}
		progress(f)
	}
	return app.Calibration{InputDevice: s.InputDevice, OutputDevice: s.OutputDevice, Buffer: s.Buffer, RoundTrip: 12 * time.Millisecond, Confidence: 0.9}, nil
}

func (b *fakeBackend) Host(ctx context.Context, on func(app.Event)) (Session, error) {
	b.mu.Lock()
	b.hosts++
	b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	on(app.Event{State: app.StateWaiting, Text: "Room K7QM-3XRT is open."})
	return b.session, nil
}

func (b *fakeBackend) Join(ctx context.Context, code signal.Code, on func(app.Event)) (Session, error) {
	b.mu.Lock()
	b.joined = append(b.joined, code)
	b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	return b.session, nil
}

// find returns the first object under o for which match is true.
func find[T fyne.CanvasObject](o fyne.CanvasObject, match func(T) bool) (T, bool) {
	if t, ok := o.(T); ok && match(t) {
		return t, true
	}
	var children []fyne.CanvasObject
	switch c := o.(type) {
	case *fyne.Container:
		children = c.Objects
	case *widget.Form:
		for _, item := range c.Items {
			children = append(children, item.Widget)
		}
	case *container.Scroll:
		children = []fyne.CanvasObject{c.Content}
	}
	for _, child := range children {
		if t, ok := find(child, match); ok {
			return t, true
		}
	}
	var zero T
	return zero, false
}

func button(w fyne.Window, label string) *widget.Button {
	b, _ := find(w.Content(), func(b *widget.Button) bool { return b.Text == label })
	return b
}

func hasText(w fyne.Window, s string) bool {
	_, ok := find(w.Content(), func(l *widget.Label) bool { return strings.Contains(l.Text, s) })
	return ok
}

// formWidget is the widget of the form item labelled label.
func formWidget[T fyne.CanvasObject](w fyne.Window, label string) T {
	var found T
	find(w.Content(), func(f *widget.Form) bool {
		for _, item := range f.Items {
			if item.Text != label {
				continue
			}
			if t, ok := find(item.Widget, func(T) bool { return true }); ok {
				found = t
				return true
			}
		}
		return false
	})
	return found
}

// inUI runs fn as the UI goroutine would: serialised with the updates
// that come from the session's goroutines.
func inUI(u *UI, fn func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fn()
}

// eventually waits, up to five seconds, for cond to hold.
func eventually(t *testing.T, u *UI, what string, cond func() bool) {
	t.Helper()
	waitFor(t, u, 5*time.Second, what, cond)
}

// waitFor waits, up to d, for cond to hold; cond runs as on the UI
// goroutine.
func waitFor(t *testing.T, u *UI, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		inUI(u, func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newUI shows a UI for b in a test window; the test's end leaves the
// session and waits for the home screen.
func newUI(t *testing.T, b Backend) (*UI, fyne.Window) {
	test.NewTempApp(t)
	return newWindow(t, b)
}

// newWindow is newUI in one more window of the test app; with other
// windows, it shares their lock, as if they all ran on one UI goroutine.
func newWindow(t *testing.T, b Backend, others ...*UI) (*UI, fyne.Window) {
	w := test.NewTempWindow(t, nil)
	w.Resize(fyne.NewSize(560, 720))
	u := New(w, b)
	for _, o := range others {
		u.mu = o.mu // before any of u's goroutines: setup is done
	}
	t.Cleanup(func() {
		u.Close()
		// The home screen comes back from the session's goroutine: let
		// it, before the test app goes away.
		waitFor(t, u, 20*time.Second, "the session's end", func() bool { return u.done == nil })
	})
	return u, w
}

func TestHostShowsCodeAndMeters(t *testing.T) {
	b := newFake(&fakeSession{code: "K7QM3XRT"})
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Read this code to your partner") })
	eventually(t, u, "the event text", func() bool { return hasText(w, "Room K7QM-3XRT is open.") })
	eventually(t, u, "the safety code", func() bool { return hasText(w, "Safety code 123 456") })
	eventually(t, u, "the partner status", func() bool { return hasText(w, "Waiting for your partner to join.") })
	eventually(t, u, "the mic meter", func() bool {
		mic := formWidget[*widget.ProgressBar](w, "You")
		return mic != nil && mic.Value > 0.89 && mic.Value < 0.91 // -6 dBFS on a 60 dB scale
	})
}

func TestGainSliders(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT"}
	u, w := newUI(t, newFake(s))
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Read this code to your partner") })
	inUI(u, func() {
		formWidget[*widget.Slider](w, "Partner volume").SetValue(0.5)
		formWidget[*widget.Slider](w, "Hear yourself").SetValue(0)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gains["partner"] != 0.5 || s.gains["monitor"] != 0 {
		t.Fatalf("gains %v, want partner 0.5 and monitor 0", s.gains)
	}
}

func TestJoinAcceptsCodeAsReadAloud(t *testing.T) {
	b := newFake(&fakeSession{code: "K7QM3XRT"})
	u, w := newUI(t, b)
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "k7qm 3xrt")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the join", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.joined) == 1 && b.joined[0] == "K7QM3XRT"
	})
}

func TestJoinRefusesNonsense(t *testing.T) {
	b := newFake(&fakeSession{code: "K7QM3XRT"})
	u, w := newUI(t, b)
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "hello")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the explanation", func() bool { return hasText(w, "That is not a room code") })
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.joined) != 0 {
		t.Fatal("joined with a nonsense code")
	}
}

func TestErrorsReadAsSentences(t *testing.T) {
	b := newFake(nil)
	b.err = errors.New("room K7QM-3XRT is full: a duet has two singers")
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the error", func() bool { return hasText(w, "Room K7QM-3XRT is full: a duet has two singers.") })
	inUI(u, func() {
		if button(w, "Host a duet").Disabled() {
			t.Error("Host stays disabled after the error")
		}
	})
}

func TestMuteKeyAndLeave(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT"}
	u, w := newUI(t, newFake(s))
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Read this code to your partner") })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "m") })
	if !s.Muted() {
		t.Fatal("M did not mute")
	}
	var leave *widget.Button
	inUI(u, func() { leave = button(w, "Leave") })
	test.Tap(leave) // Leave waits for the session, which needs the lock
	eventually(t, u, "the home screen", func() bool { return button(w, "Host a duet") != nil })
}

// TestKeys: space plays and pauses, R records and stops, M mutes; not
// while a text field has the focus.
func TestKeys(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "song.wav", Length: time.Minute, Ready: true}}
	b := newFake(s)
	b.settings.RecordDir = t.TempDir()
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the play button", func() bool { b := button(w, "Play (space)"); return b != nil && !b.Disabled() })
	inUI(u, func() {
		// A text field with the focus keeps the keys.
		entry := widget.NewEntry()
		w.SetContent(container.NewVBox(w.Content(), entry))
		w.Canvas().Focus(entry)
		u.screen.key(' ')
		u.screen.key('m')
		w.Canvas().Unfocus()
	})
	if s.Muted() || s.Track().Playing {
		t.Fatal("keys acted while a text field had the focus")
	}
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), " ") })
	eventually(t, u, "playing", func() bool { return s.Track().Playing && button(w, "Pause (space)") != nil })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), " ") })
	eventually(t, u, "paused", func() bool { return !s.Track().Playing && button(w, "Play (space)") != nil })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "r") })
	eventually(t, u, "recording", func() bool { return s.Track().Recording && button(w, "Stop (R)") != nil })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "R") })
	eventually(t, u, "stopped", func() bool { return !s.Track().Recording && button(w, "Record (R)") != nil })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "M") })
	if !s.Muted() {
		t.Fatal("M did not mute")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.records) != 1 || s.records[0] != b.settings.RecordDir {
		t.Fatalf("recorded into %q, want one take in %q", s.records, b.settings.RecordDir)
	}
}

// TestGuestSeesNoHostControls: a guest's screen has no Play, Load or
// Record, and space does nothing.
func TestGuestSeesNoHostControls(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "song.wav", Length: time.Minute, Ready: true, Size: 100, Transferred: 50}}
	u, w := newUI(t, newFake(s))
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "K7QM3XRT")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the track's name", func() bool { return hasText(w, "song.wav (1:00)") })
	inUI(u, func() {
		for _, label := range []string{"Play (space)", "Load track…", "Record (R)"} {
			if button(w, label) != nil {
				t.Errorf("the guest sees %q", label)
			}
		}
		test.TypeOnCanvas(w.Canvas(), " ")
	})
	if s.Track().Playing {
		t.Fatal("space played the track on the guest's side")
	}
}

func TestLatencyQuality(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{20 * time.Millisecond, "green"}, {25 * time.Millisecond, "green"}, {35 * time.Millisecond, "amber"}, {40 * time.Millisecond, "amber"}, {80 * time.Millisecond, "red"}} {
		c := qualityColor(tc.d)
		r, g, _, _ := c.RGBA()
		got := map[bool]string{true: "green", false: "red"}[g > r]
		if r > 0xa000 && g > 0x9000 {
			got = "amber"
		}
		if got != tc.want {
			t.Errorf("%v shows %s, want %s", tc.d, got, tc.want)
		}
	}
}

func TestPartnerText(t *testing.T) {
	relayed := app.Stats{}
	relayed.Peer.Relayed, relayed.Peer.Candidate = true, "relay"
	for _, tc := range []struct {
		state app.State
		was   bool
		st    app.Stats
		want  string
	}{
		{app.StateConnecting, false, app.Stats{}, "Connecting to your partner…"},
		{app.StateConnecting, true, app.Stats{}, "Reconnecting to your partner…"},
		{app.StateConnected, true, relayed, "Connected through a relay (relay)."},
		{app.StatePartnerLeft, true, app.Stats{}, "Your partner is away; the room stays open for them."},
	} {
		if got := partnerText(tc.state, tc.was, tc.st); got != tc.want {
			t.Errorf("partnerText(%v, %v) = %q, want %q", tc.state, tc.was, got, tc.want)
		}
	}
}

// TestSettingsRemembered edits the settings and saves them through the
// backend.
func TestSettingsRemembered(t *testing.T) {
	b := newFake(nil)
	b.settings.Buffer = 256
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Settings")) })
	eventually(t, u, "the devices", func() bool {
		sel := formWidget[*widget.Select](w, "Microphone")
		return sel != nil && len(sel.Options) == 2
	})
	inUI(u, func() {
		test.Type(formWidget[*widget.Entry](w, "Rendezvous server"), "http://duet.example:3838")
		test.Type(formWidget[*widget.Entry](w, "Your name"), "Ana")
		test.Type(formWidget[*widget.Entry](w, "Time server (NTP)"), "ntp.example")
		test.Type(formWidget[*widget.Entry](w, "Recordings"), "/tmp/takes")
		formWidget[*widget.Select](w, "Microphone").SetSelected("USB Mic")
		formWidget[*widget.RadioGroup](w, "Frame").SetSelected("2.5 ms")
		formWidget[*widget.RadioGroup](w, "You listen on").SetSelected("Speakers")
		formWidget[*widget.Slider](w, "Jitter buffer").SetValue(-0.5)
		test.Tap(button(w, "Save"))
	})
	got := b.Settings()
	want := app.Settings{
		Server: "http://duet.example:3838", InputDevice: "USB Mic", Buffer: 256, Name: "Ana",
		NTPServer: "ntp.example", RecordDir: "/tmp/takes", Frame: 2500 * time.Microsecond,
		Speakers: true, JitterBias: -0.5, SetupDone: true,
	}
	if got != want {
		t.Fatalf("saved %+v\nwant  %+v", got, want)
	}
	eventually(t, u, "the home screen", func() bool { return hasText(w, "Settings saved.") && hasText(w, "Hello Ana.") })
	// And they come back.
	inUI(u, func() { test.Tap(button(w, "Settings")) })
	inUI(u, func() {
		if sel := formWidget[*widget.RadioGroup](w, "Frame"); sel.Selected != "2.5 ms" {
			t.Errorf("the frame shows %q", sel.Selected)
		}
		if sl := formWidget[*widget.Slider](w, "Jitter buffer"); sl.Value != -0.5 {
			t.Errorf("the jitter bias shows %v", sl.Value)
		}
	})
}

// TestSettingsMeasureLatency runs the measurement from the settings and
// keeps its result.
func TestSettingsMeasureLatency(t *testing.T) {
	b := newFake(nil)
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Settings")) })
	inUI(u, func() { test.Tap(button(w, "Measure my latency")) })
	eventually(t, u, "the result", func() bool { return hasText(w, "Your devices add 12.0 ms") })
	if c := b.Settings().Calibration; c == nil || c.RoundTrip != 12*time.Millisecond {
		t.Fatalf("saved calibration %+v", c)
	}
}

// TestFirstRun: without setup done, the window starts with the setup; the
// mic level moves, the singer chooses speakers, measures the latency and
// is done; the home screen follows and the settings keep it all.
func TestFirstRun(t *testing.T) {
	b := newFake(nil)
	b.settings.SetupDone = false
	u, w := newUI(t, b)
	eventually(t, u, "the setup", func() bool { return hasText(w, "Welcome to Duet") })
	eventually(t, u, "the mic level", func() bool {
		p := formWidget[*widget.ProgressBar](w, "Level")
		return p != nil && p.Value > 0.79 && p.Value < 0.81 // −12 dBFS
	})
	eventually(t, u, "the devices", func() bool { return len(formWidget[*widget.Select](w, "Headphones").Options) == 3 })
	inUI(u, func() {
		formWidget[*widget.Select](w, "Headphones").SetSelected("HDMI")
		test.Type(formWidget[*widget.Entry](w, "Your name"), "Ben")
		radio, _ := find(w.Content(), func(r *widget.RadioGroup) bool { return true })
		radio.SetSelected("Speakers")
	})
	eventually(t, u, "the check on the new device", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.checks >= 2
	})
	inUI(u, func() { test.Tap(button(w, "Measure my latency")) })
	eventually(t, u, "the measurement", func() bool { return hasText(w, "Your devices add 12.0 ms") })
	inUI(u, func() { test.Tap(button(w, "Done")) })
	eventually(t, u, "the home screen", func() bool { return hasText(w, "You are set up.") })
	got := b.Settings()
	if !got.SetupDone || !got.Speakers || got.OutputDevice != "HDMI" || got.Name != "Ben" || got.Calibration == nil || got.Calibration.OutputDevice != "HDMI" {
		t.Fatalf("saved %+v", got)
	}
}

// TestShowFilesOpensTheTake: "Show files" opens the latest take's folder.
func TestShowFilesOpensTheTake(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Take: "/music/take-1"}}
	u, w := newUI(t, newFake(s))
	var opened []string
	inUI(u, func() {
		u.openURL = func(l *url.URL) error { opened = append(opened, l.String()); return nil }
		test.Tap(button(w, "Host a duet"))
	})
	eventually(t, u, "Show files", func() bool { b := button(w, "Show files"); return b != nil && !b.Disabled() })
	inUI(u, func() { test.Tap(button(w, "Show files")) })
	if len(opened) != 1 || opened[0] != "file:///music/take-1" {
		t.Fatalf("opened %q", opened)
	}
}

// TestOneSessionAtATime: a second Host (or Enter in the code field) while
// a session opens or runs starts nothing, so every session can be left.
func TestOneSessionAtATime(t *testing.T) {
	b := newFake(&fakeSession{code: "K7QM3XRT"})
	u, w := newUI(t, b)
	inUI(u, func() {
		host := button(w, "Host a duet")
		test.Tap(host)
		test.Tap(host)
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "k7qm3xrt\n")
		entry.OnSubmitted(entry.Text)
	})
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Read this code to your partner") })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hosts != 1 || len(b.joined) != 0 {
		t.Fatalf("%d hosts and %d joins started, want one host", b.hosts, len(b.joined))
	}
}
