package ui

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/net/signal"
)

// fakeSession runs until its context ends.
type fakeSession struct {
	code  signal.Code
	mu    sync.Mutex
	muted bool
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
	return app.Levels{Mic: meter.Level{Peak: -6}, Partner: meter.Level{Peak: -30}, Output: meter.Level{Peak: meter.Silent}}
}
func (f *fakeSession) Latency() app.Latency { return app.Latency{} }
func (f *fakeSession) SetMuted(m bool)      { f.mu.Lock(); f.muted = m; f.mu.Unlock() }
func (f *fakeSession) Muted() bool          { f.mu.Lock(); defer f.mu.Unlock(); return f.muted }

type fakeBackend struct {
	mu       sync.Mutex
	joined   []signal.Code
	session  *fakeSession
	err      error
	settings app.Settings
	hosts    int
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

// inUI runs fn as the UI goroutine would: serialised with the updates
// that come from the session's goroutines.
func inUI(u *UI, fn func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fn()
}

// eventually waits, with a deadline, for cond to hold.
func eventually(t *testing.T, u *UI, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ok bool
		inUI(u, func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newUI(t *testing.T, b Backend) (*UI, fyne.Window) {
	test.NewTempApp(t)
	w := test.NewTempWindow(t, nil)
	u := New(w, b)
	t.Cleanup(func() {
		u.Close()
		// The home screen comes back from the session's goroutine: let
		// it, before the test app goes away.
		eventually(t, u, "the home screen", func() bool { return button(w, "Host a duet") != nil })
	})
	return u, w
}

func TestHostShowsCodeAndMeters(t *testing.T) {
	b := &fakeBackend{session: &fakeSession{code: "K7QM3XRT"}}
	u, w := newUI(t, b)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return hasText(w, "Read this code to your partner") })
	eventually(t, u, "the event text", func() bool { return hasText(w, "Room K7QM-3XRT is open.") })
	eventually(t, u, "the safety code", func() bool { return hasText(w, "Safety code 123 456") })
	eventually(t, u, "the mic meter", func() bool {
		bars := 0
		var mic float64
		find(w.Content(), func(p *widget.ProgressBar) bool {
			if bars == 0 {
				mic = p.Value
			}
			bars++
			return false
		})
		return bars == 3 && mic > 0.89 && mic < 0.91 // -6 dBFS on a 60 dB scale
	})
}

func TestJoinAcceptsCodeAsReadAloud(t *testing.T) {
	b := &fakeBackend{session: &fakeSession{code: "K7QM3XRT"}}
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
	b := &fakeBackend{session: &fakeSession{code: "K7QM3XRT"}}
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
	b := &fakeBackend{err: errors.New("room K7QM-3XRT is full: a duet has two singers")}
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
	u, w := newUI(t, &fakeBackend{session: s})
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

func TestLatencyQuality(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{20 * time.Millisecond, "green"}, {35 * time.Millisecond, "amber"}, {80 * time.Millisecond, "red"}} {
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

// TestSettingsRemembered edits the settings and saves them through the
// backend.
func TestSettingsRemembered(t *testing.T) {
	b := &fakeBackend{settings: app.Settings{Buffer: 256}}
	u, w := newUI(t, b)
	inUI(u, func() {
		test.Tap(button(w, "Settings"))
		server, ok := find(w.Content(), func(e *widget.Entry) bool { return true })
		sel, ok2 := find(w.Content(), func(s *widget.Select) bool { return len(s.Options) == 2 })
		if !ok || !ok2 {
			t.Fatal("the settings screen has no server entry or microphone choice")
		}
		test.Type(server, "http://duet.example:3838")
		sel.SetSelected("USB Mic")
		test.Tap(button(w, "Save"))
	})
	got := b.Settings()
	if got.Server != "http://duet.example:3838" || got.InputDevice != "USB Mic" || got.OutputDevice != "" || got.Buffer != 256 {
		t.Fatalf("saved %+v", got)
	}
	eventually(t, u, "the home screen", func() bool { return hasText(w, "Settings saved.") })
}

// TestOneSessionAtATime: a second Host (or Enter in the code field) while
// a session opens or runs starts nothing, so every session can be left.
func TestOneSessionAtATime(t *testing.T) {
	b := &fakeBackend{session: &fakeSession{code: "K7QM3XRT"}}
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
