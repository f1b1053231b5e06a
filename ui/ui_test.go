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
	"github.com/duetapp/duet/audio/jitter"
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
	stats    app.Stats
	latency  app.Latency
}

func (f *fakeSession) Code() signal.Code { return f.code }
func (f *fakeSession) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
func (f *fakeSession) Stats() app.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// setStats changes the figures the session reports.
func (f *fakeSession) setStats(change func(*app.Stats)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.stats)
}
func (f *fakeSession) Levels() app.Levels {
	return app.Levels{Mic: meter.Level{Peak: -6}, Partner: meter.Level{Peak: -30}, Output: meter.Level{Peak: meter.Silent}, Track: meter.Level{Peak: meter.Silent}}
}
func (f *fakeSession) Latency() app.Latency { f.mu.Lock(); defer f.mu.Unlock(); return f.latency }
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

// hostedFake is a host's fakeSession a browser can join (BrowserLinker).
type hostedFake struct {
	*fakeSession
	link string
	err  error
}

func (h hostedFake) BrowserLink() (string, error) { return h.link, h.err }

type fakeBackend struct {
	mu       sync.Mutex
	joined   []signal.Code
	session  Session
	err      error
	settings app.Settings
	hosts    int
	checks   int             // mic checks started
	on       func(app.Event) // the latest session's OnEvent
}

// emit tells the latest session's screen of e, as the session's goroutine
// would. Not from inUI: the screen takes the UI's lock.
func (b *fakeBackend) emit(e app.Event) {
	b.mu.Lock()
	on := b.on
	b.mu.Unlock()
	on(e)
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
	b.on = on
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
	b.on = on
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

// button is the button labelled label, a plain one or one of the
// session's keyButtons.
func button(w fyne.Window, label string) *widget.Button {
	var found *widget.Button
	find(w.Content(), func(o fyne.CanvasObject) bool {
		switch b := o.(type) {
		case *widget.Button:
			found = b
		case *keyButton:
			found = &b.Button
		default:
			return false
		}
		if found.Text != label {
			found = nil
		}
		return found != nil
	})
	return found
}

func hasText(w fyne.Window, s string) bool {
	_, ok := find(w.Content(), func(l *widget.Label) bool { return strings.Contains(l.Text, s) })
	return ok
}

// countLabels counts the labels that show s.
func countLabels(w fyne.Window, s string) int {
	n := 0
	find(w.Content(), func(l *widget.Label) bool {
		if strings.Contains(l.Text, s) {
			n++
		}
		return false
	})
	return n
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
	b := newFake(&fakeSession{code: "K7QM3XRT", stats: app.Stats{SafetyCode: "123 456"}})
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Room code: read it to your partner") })
	eventually(t, u, "the event text", func() bool { return hasText(w, "Room K7QM-3XRT is open.") })
	eventually(t, u, "the safety code", func() bool { return hasText(w, "Safety code 123 456") })
	eventually(t, u, "the partner status", func() bool { return hasText(w, "Waiting for your partner to join") })
	eventually(t, u, "the meters", func() bool {
		mic, partner, track := formWidget[*levelMeter](w, "You"), formWidget[*levelMeter](w, "Partner"), formWidget[*levelMeter](w, "Track")
		return mic != nil && mic.readout() == "−6.0" && partner.readout() == "−30.0" && track.readout() == "−∞"
	})
}

func TestGainSliders(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT"}
	u, w := newUI(t, newFake(s))
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Room code: read it to your partner") })
	inUI(u, func() {
		formWidget[*keySlider](w, "Partner volume").SetValue(0.5)
		formWidget[*keySlider](w, "Hear yourself").SetValue(0)
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
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Room code: read it to your partner") })
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
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "song.wav", Length: time.Minute, Ready: true, CountIn: 1500 * time.Millisecond}}
	b := newFake(s)
	b.settings.RecordDir = t.TempDir()
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the play button", func() bool { b := button(w, "Play (space)"); return b != nil && !b.Disabled() })
	eventually(t, u, "the count-in", func() bool { return hasText(w, "Play counts in for 1.5 s, then the song starts") })
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
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "song.wav", Length: time.Minute, Ready: true, Size: 100, Transferred: 50, CountIn: 2 * time.Second}}
	u, w := newUI(t, newFake(s))
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "K7QM3XRT")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the track's name", func() bool { return hasText(w, "song.wav (1:00)") })
	eventually(t, u, "the count-in", func() bool { return hasText(w, "The host starts it, after a 2 s count-in.") })
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
	ben := app.Stats{PartnerName: "Ben"}
	ben.Peer.Candidate = "host"
	for _, tc := range []struct {
		state app.State
		st    app.Stats
		want  string
	}{
		{app.StateWaiting, app.Stats{}, "Waiting for your partner to join"},
		{app.StateConnecting, app.Stats{}, "Connecting to your partner…"},
		{app.StateConnecting, ben, "Connecting to your partner…"}, // maybe the last guest's name
		{app.StateConnected, relayed, "Connected through a relay to your partner"},
		{app.StateConnected, ben, "Connected directly to Ben"},
		{app.StateDeviceLost, ben, "Connected directly to Ben"},
		{app.StateReconnecting, app.Stats{}, "Connection to your partner lost; reconnecting…"},
		{app.StateReconnecting, ben, "Connection to Ben lost; reconnecting…"},
		{app.StatePartnerLeft, app.Stats{}, "Your partner is away; the room stays open"},
		{app.StatePartnerLeft, ben, "Ben is away; the room stays open"},
		{app.StateEnded, ben, "The duet is over"},
	} {
		if got := partnerText(tc.state, tc.st); got != tc.want {
			t.Errorf("partnerText(%v, %q) = %q, want %q", tc.state, tc.st.PartnerName, got, tc.want)
		}
	}
}

func TestDetailsText(t *testing.T) {
	ntp := app.NTPStatus{Server: "pool.ntp.org", Offset: -1240 * time.Microsecond, RTT: 20 * time.Millisecond}
	for _, tc := range []struct {
		name  string
		state app.State
		st    app.Stats
		want  string
	}{
		{"nothing yet", app.StateWaiting, app.Stats{Bitrate: 96000}, ""},
		{"connected", app.StateConnected, app.Stats{Bitrate: 96000}, "Sending Opus at 96 kb/s."},
		{"opus custom", app.StateConnected, app.Stats{Codec: "Opus Custom 2.7 ms", Bitrate: 132000, PartnerCodec: "L16"}, "Sending Opus Custom 2.7 ms at 132 kb/s; receiving L16."},
		{"pcm", app.StateConnected, app.Stats{Codec: "L16", Bitrate: 768000}, "Sending L16 at 768 kb/s."},
		{"one frame again", app.StateConnected, app.Stats{Bitrate: 72000, Redundancy: 1, NTP: ntp},
			"Sending Opus at 72 kb/s, each packet repeating the frame before it against loss."},
		{"two frames again", app.StateReconnecting, app.Stats{Bitrate: 57600, Redundancy: 2},
			"Sending Opus at 58 kb/s, each packet repeating the 2 frames before it against loss."},
		{"partner left", app.StatePartnerLeft, app.Stats{Bitrate: 96000, NTP: ntp}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sendingLine(tc.state, tc.st); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		n    app.NTPStatus
		want string
	}{
		{app.NTPStatus{}, ""},
		{ntp, "Clock within 1.2 ms of pool.ntp.org."},
		{app.NTPStatus{Server: "ntp.example", Offset: 2500 * time.Millisecond}, "Clock within 2.5 s of ntp.example."},
		{app.NTPStatus{Server: "pool.ntp.org", Err: "ntpcheck: i/o timeout"}, "No NTP server reachable — fine on a LAN."},
	} {
		if got := clockText(tc.n); got != tc.want {
			t.Errorf("clockText(%+v) = %q, want %q", tc.n, got, tc.want)
		}
	}
	// This computer's own stalls are told apart from the network's loss,
	// and only when there were any.
	v := jitter.Stats{PacketsReceived: 990, PacketsLost: 10, PacketsRecovered: 4, ConcealedSamples: 480}
	calm := "Received 990 packets; lost 10 (1.00 %), 4 of them recovered from redundancy; 10.0 ms concealed."
	if got := lossText(v, 0); got != calm {
		t.Errorf("lossText without stalls = %q, want %q", got, calm)
	}
	if got := lossText(v, 3); !strings.HasPrefix(got, calm) || !strings.Contains(got, "This computer's audio ran late 3×") {
		t.Errorf("lossText with 3 stalls = %q", got)
	}
}

func TestConnectionText(t *testing.T) {
	direct := app.Stats{}
	direct.Peer.Candidate, direct.Peer.Address, direct.Peer.RTT = "host", "192.168.1.20:50123", 1500*time.Microsecond
	relayed := app.Stats{}
	relayed.Peer.Candidate, relayed.Peer.Relayed = "relay", true
	for _, tc := range []struct {
		state app.State
		st    app.Stats
		want  string
	}{
		{app.StateConnected, direct, "Connection: direct (host candidate) to 192.168.1.20:50123, round trip 1.5 ms."},
		{app.StateConnected, relayed, "Connection: through a TURN relay (relay candidate)."},
		{app.StateWaiting, direct, ""},
		{app.StateConnected, app.Stats{}, ""},
	} {
		if got := connectionText(tc.state, tc.st); got != tc.want {
			t.Errorf("connectionText(%v) = %q, want %q", tc.state, got, tc.want)
		}
	}
}

func TestNewsText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Connected to your partner directly (host candidate).", ""},
		{"Connected to your partner through a relay (relay candidate). You found this room's server on your local network.", "You found this room's server on your local network."},
		{"The connection to your partner is back.", "The connection to your partner is back."},
	} {
		if got := newsText(tc.in); got != tc.want {
			t.Errorf("newsText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLatencyText(t *testing.T) {
	l := app.Latency{Codec: 7 * time.Millisecond, Network: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Device: 8 * time.Millisecond}
	const base = "Your partner → you: 30 ms (network 10, direct; jitter buffer 5; codec 7; devices 8)"
	if got := latencyText(l, false, 0); got != base {
		t.Errorf("on headphones: %q", got)
	}
	want := base + ". Your echo canceller adds 10.7 ms to what your partner hears; headphones need none"
	if got := latencyText(l, false, 10700*time.Microsecond); got != want {
		t.Errorf("on speakers:\ngot  %q\nwant %q", got, want)
	}
}

func TestWithoutSafetyCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Connected to your partner directly (host candidate). Safety code 123 456: if your partner sees the same, nobody listens in.",
			"Connected to your partner directly (host candidate)."},
		{"Connected. Safety code 12-34: the same means nobody listens in. Keep singing.", "Connected. Keep singing."},
		{"The connection to your partner is back.", "The connection to your partner is back."},
	} {
		if got := withoutSafetyCode(tc.in); got != tc.want {
			t.Errorf("withoutSafetyCode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCountInText(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{2 * time.Second, "Play counts in for 2 s, then the song starts for both of you at once."},
		{1500 * time.Millisecond, "Play counts in for 1.5 s, then the song starts for both of you at once."},
		{0, "Play starts the song for both of you at once."},
	} {
		if got := countInText(tc.d); got != tc.want {
			t.Errorf("countInText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestConnectionStates follows a host's screen through the session's
// events: a guest connects and says their name, the connection drops and
// comes back, the rendezvous server goes and comes back, the guest leaves.
// The state reads in plain words, the news line does not repeat it, the
// technical words and every event's text are in the details, and the
// safety code shows once, in its row until compared, then in the details.
func TestConnectionStates(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT"}
	b := newFake(s)
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "waiting", func() bool { return hasText(w, "Waiting for your partner to join") })

	b.emit(app.Event{State: app.StateConnecting, Text: "A guest joined; connecting."})
	eventually(t, u, "connecting", func() bool { return hasText(w, "Connecting to your partner…") })

	s.setStats(func(st *app.Stats) {
		st.SafetyCode, st.PartnerName, st.Bitrate = "123 456", "Ben", 96000
		st.Peer.Candidate, st.Peer.PacketsReceived = "host", 100
		st.NTP = app.NTPStatus{Server: "pool.ntp.org", Offset: 1200 * time.Microsecond}
		st.EchoLatency = 10 * time.Millisecond
	})
	s.mu.Lock()
	s.latency = app.Latency{Codec: 7 * time.Millisecond, Network: time.Millisecond, Jitter: 5 * time.Millisecond}
	s.mu.Unlock()
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner directly (host candidate). Safety code 123 456: if your partner sees the same, nobody listens in."})
	eventually(t, u, "connected to Ben", func() bool {
		return hasText(w, "Connected directly to Ben") && hasText(w, "13 ms one way") &&
			hasText(w, "Sending Opus at 96 kb/s.") && hasText(w, "Clock within 1.2 ms of pool.ntp.org.") &&
			hasText(w, "Connection: direct (host candidate).") &&
			hasText(w, "Your echo canceller adds 10.0 ms") &&
			hasText(w, "Safety code 123 456: the same on Ben's screen")
	})
	inUI(u, func() {
		if got := u.screen.news.Text; got != "" {
			t.Errorf("the news line repeats the state: %q", got)
		}
		if !strings.Contains(u.screen.details.events.Text, "Connected to your partner directly (host candidate).") {
			t.Errorf("the details lack the event: %q", u.screen.details.events.Text)
		}
		if n := countLabels(w, "123 456"); n != 1 {
			t.Errorf("the safety code shows %d times", n)
		}
		if u.screen.light.FillColor == idleColor() {
			t.Error("the light stays grey while connected")
		}
		test.Tap(button(w, "Same on both screens"))
		if u.screen.safetyRow.Visible() || !hasText(w, "Safety code 123 456: compared") || countLabels(w, "123 456") != 1 {
			t.Error("the compared safety code did not move to the details")
		}
	})

	s.setStats(func(st *app.Stats) { st.Redundancy = 1 })
	b.emit(app.Event{State: app.StateReconnecting, Text: "The connection to your partner dropped; reconnecting. Keep singing: the duet goes on when it is back."})
	eventually(t, u, "reconnecting", func() bool {
		return hasText(w, "Connection to Ben lost; reconnecting…") &&
			u.screen.news.Text == "The connection to your partner dropped; reconnecting. Keep singing: the duet goes on when it is back." &&
			hasText(w, "each packet repeating the frame before it against loss") &&
			u.screen.light.FillColor == idleColor() && u.screen.total.Text == ""
	})

	b.emit(app.Event{State: app.StateConnected, Text: "The connection to your partner is back."})
	eventually(t, u, "back", func() bool {
		return hasText(w, "Connected directly to Ben") && hasText(w, "The connection to your partner is back.") &&
			u.screen.light.FillColor != idleColor()
	})

	// The rendezvous server comes and goes as an info event: the state
	// stays.
	b.emit(app.Event{State: app.StateConnected, Text: "Lost the rendezvous server; reconnecting to it. Your duet goes on meanwhile."})
	eventually(t, u, "the server lost", func() bool {
		return hasText(w, "Lost the rendezvous server") && hasText(w, "Connected directly to Ben")
	})
	b.emit(app.Event{State: app.StateConnected, Text: "Back in touch with the rendezvous server."})
	eventually(t, u, "the server back", func() bool {
		return hasText(w, "Back in touch with the rendezvous server.") && hasText(w, "Connected directly to Ben")
	})

	b.emit(app.Event{State: app.StatePartnerLeft, Text: "Your guest left; the room stays open for them."})
	eventually(t, u, "Ben gone", func() bool {
		return hasText(w, "Ben is away; the room stays open") && hasText(w, "Clock within 1.2 ms of pool.ntp.org.") &&
			!hasText(w, "Sending Opus")
	})
}

// TestGuestRejoins: a guest whose connection failed goes back into the
// room: reconnecting, then connecting, then connected again.
func TestGuestRejoins(t *testing.T) {
	s := &fakeSession{code: "K7QM3XRT", stats: app.Stats{PartnerName: "Ana", SafetyCode: "999 000"}}
	b := newFake(s)
	u, w := newUI(t, b)
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "K7QM3XRT")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the session screen", func() bool { return u.screen != nil && u.screen.news != nil })
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner directly (host candidate). Safety code 999 000: if your partner sees the same, nobody listens in."})
	eventually(t, u, "connected", func() bool { return hasText(w, "Connected directly to Ana") })
	b.emit(app.Event{State: app.StateReconnecting, Text: "The connection to the host failed; joining the room again."})
	eventually(t, u, "reconnecting", func() bool {
		return hasText(w, "Connection to Ana lost; reconnecting…") && hasText(w, "joining the room again")
	})
	b.emit(app.Event{State: app.StateConnecting, Text: "Joined the room; connecting to the host."})
	eventually(t, u, "connecting", func() bool { return hasText(w, "Connecting to your partner…") })
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner directly (host candidate). Safety code 999 000: if your partner sees the same, nobody listens in."})
	eventually(t, u, "connected again", func() bool { return hasText(w, "Connected directly to Ana") })
	inUI(u, func() {
		if n := countLabels(w, "999 000"); n != 1 {
			t.Errorf("the safety code shows %d times", n)
		}
	})
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
		formWidget[*widget.Select](w, "Codec").SetSelected("PCM 16-bit")
		formWidget[*widget.RadioGroup](w, "You listen on").SetSelected("Speakers")
		formWidget[*widget.Slider](w, "Jitter buffer").SetValue(-0.5)
		test.Tap(button(w, "Save"))
	})
	got := b.Settings()
	want := app.Settings{
		Server: "http://duet.example:3838", InputDevice: "USB Mic", Buffer: 256, Name: "Ana",
		NTPServer: "ntp.example", RecordDir: "/tmp/takes", Frame: 2500 * time.Microsecond, Codec: "l16",
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
		if sel := formWidget[*widget.Select](w, "Codec"); sel.Selected != "PCM 16-bit" {
			t.Errorf("the codec shows %q", sel.Selected)
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
		m := formWidget[*levelMeter](w, "Level")
		return m != nil && m.readout() == "−12.0"
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
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Room code: read it to your partner") })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hosts != 1 || len(b.joined) != 0 {
		t.Fatalf("%d hosts and %d joins started, want one host", b.hosts, len(b.joined))
	}
}

// TestBrowserLink: a host's screen has Copy link beside the room
// code, which puts the link a partner opens in a browser on the
// clipboard, and the details show the link; without a usable link the
// details say why; a guest's screen shows neither.
func TestBrowserLink(t *testing.T) {
	const link = "https://duet.example.org/j/K7QM-3XRT"
	for _, tc := range []struct {
		name    string
		session Session
		join    bool
		want    string // text shown; "" for none
	}{
		{"host with a link", hostedFake{fakeSession: &fakeSession{code: "K7QM3XRT"}, link: link}, false, link},
		{"host without", hostedFake{fakeSession: &fakeSession{code: "K7QM3XRT"}, err: errors.New("the server speaks plain HTTP")}, false, "No browser link: the server speaks plain HTTP."},
		{"guest", &fakeSession{code: "K7QM3XRT"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			test.NewTempApp(t)
			u, w := newWindow(t, newFake(tc.session))
			inUI(u, func() {
				if tc.join {
					entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
					test.Type(entry, "K7QM3XRT")
					test.Tap(button(w, "Join"))
				} else {
					test.Tap(button(w, "Host a duet"))
				}
			})
			eventually(t, u, "the session screen", func() bool { return u.screen != nil && u.screen.news != nil })
			inUI(u, func() {
				shown := findKeyButton(w, "Copy link")
				switch {
				case tc.want == link:
					if shown == nil {
						t.Fatalf("no Copy link beside the code")
					}
					if !u.screen.details.browser.Visible() || !strings.Contains(u.screen.details.browser.Text, link) {
						t.Errorf("the details say %q of the browser link", u.screen.details.browser.Text)
					}
					test.Tap(shown)
					if got := fyne.CurrentApp().Clipboard().Content(); got != link {
						t.Errorf("Copy link copied %q", got)
					}
				case tc.want != "":
					if u.screen.details.browser.Text != tc.want || shown != nil {
						t.Errorf("the details say %q, not %q, or a link is shown", u.screen.details.browser.Text, tc.want)
					}
				default:
					if shown != nil || u.screen.details.browser.Visible() {
						t.Errorf("a guest's screen speaks of a browser link")
					}
				}
			})
		})
	}
}
