// Package ui is Duet's desktop window, in Fyne v2: a home screen to host a
// duet or join one by its room code; a session screen a singer reads at a
// glance; a settings screen; and a short first-run setup.
//
// The session screen fits 800 × 600 without scrolling: the room code and
// the partner's state in plain words ("Connected directly to Ben") with
// the one-way latency and its green/amber/red light; until the singers
// compared it, the safety code; level meters (dBFS, peak hold, clip
// light) for you, your partner and the track, mute and the volumes; a
// plot of the last minute's latency by stage with loss and concealment;
// the backing track (load, transfer, play, seek) and the recording, with
// a finished take's length, files and waveform. The technical words
// (candidate types, codecs, bitrates, the clock, each event's text) are
// behind the Details button.
//
// The window only shows and asks. Sessions come from a Backend (package
// app, wired in cmd/duet), and so do device checks and the latency
// measurement. Anything that may block — a session's controls, decoding a
// track, reading a finished take, opening a device — runs on a goroutine
// the UI owns (a session's command worker, or the screen's task), never
// on the UI goroutine; their results, the session's events and a refresh
// ticker (twenty times a second; the plot takes a sample every half
// second) touch widgets only through fyne.Do. Levels are in dBFS, times
// passed to the widgets are the refresh's.
//
// Keys on the session screen, except while a text field has the focus:
// space plays or pauses the track (host; on a focused button or check it
// presses that), M mutes you, R starts or stops recording (host); Tab
// moves between the controls.
package ui

import (
	"context"
	"errors"
	"image/color"
	"net/url"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/signal"
)

// Session is what the window shows and controls of a running duet;
// *app.Session is one. The getters and setters that take no error are
// safe to call from any goroutine and do not block; the ones that return
// an error wait for the session's goroutine, so the UI calls them from its
// command worker.
type Session interface {
	Code() signal.Code
	Run(ctx context.Context) error
	Stats() app.Stats
	Levels() app.Levels
	Latency() app.Latency
	SetMuted(bool)
	Muted() bool
	SetMonitor(gain float32)
	SetPartnerGain(gain float32)
	SetJitterBias(bias float64)
	Track() app.TrackStatus
	SetTrack(*track.Track) error
	Play() error
	Pause() error
	Seek(time.Duration) error
	Record(dir string) (takeDir string, err error)
	StopRecording() error
}

// BrowserLinker is a hosted Session a partner without Duet can join from
// a web browser: the session screen shows its link beside the room code,
// or, with an error, why there is none.
type BrowserLinker interface {
	BrowserLink() (string, error)
}

// Backend starts sessions, keeps the settings and reaches the audio
// devices. onEvent is called from the session's goroutine. Every method
// may block: the UI calls them off its goroutine, except Settings and
// SaveSettings (a small file).
type Backend interface {
	Host(ctx context.Context, onEvent func(app.Event)) (Session, error)
	Join(ctx context.Context, code signal.Code, onEvent func(app.Event)) (Session, error)
	Settings() app.Settings
	SaveSettings(app.Settings) error
	// Devices names the audio devices with inputs and with outputs.
	Devices() (inputs, outputs []string, err error)
	// MicCheck opens the devices s names and reports the microphone's
	// level, about twenty times a second, until ctx ends; it plays
	// nothing.
	MicCheck(ctx context.Context, s app.Settings, level func(meter.Level)) error
	// Calibrate measures the round trip of the devices s names (a
	// loopback, or the speaker heard by the microphone), telling progress
	// (0…1) as it goes.
	Calibrate(ctx context.Context, s app.Settings, progress func(float64)) (app.Calibration, error)
}

// Quality thresholds for one-way mouth-to-ear latency, from the ensemble
// research: up to 25 ms singers keep time as in one room, up to 40 ms they
// adapt, beyond that they drag.
const (
	goodLatency = 25 * time.Millisecond
	fairLatency = 40 * time.Millisecond
)

// UI is the window's content. See the package doc.
type UI struct {
	w       fyne.Window
	backend Backend
	// openURL opens a folder in the desktop's file manager.
	openURL func(*url.URL) error
	// now is the clock the screens read: the meters' ballistics, the
	// plot's samples, the events' times. Set once.
	now func() time.Time

	// mu serialises the updates that come from other goroutines. With a
	// real driver fyne.Do already runs them on the UI goroutine; Fyne's
	// test driver runs them where they are called, and tests hold mu too
	// (one mu for all the windows of a test: Fyne's caches are shared).
	mu *sync.Mutex

	stop   context.CancelFunc // leaves the current session, if any
	done   chan struct{}      // closed when the session's goroutines are gone
	screen *sessionScreen     // the latest session's screen

	stopTask context.CancelFunc // stops the current screen's background task
	taskDone <-chan struct{}    // closed when the latest task has returned
	tasks    sync.WaitGroup     // the screens' background tasks
}

// do runs fn on the UI goroutine: every update from another goroutine
// goes through it.
func (u *UI) do(fn func()) {
	fyne.Do(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		fn()
	})
}

// New shows the home screen in w, or the first-run setup if the settings
// say it has not been done.
func New(w fyne.Window, b Backend) *UI {
	return newWithClock(w, b, time.Now)
}

// newWithClock is New with the screens' clock (the screenshots' runs faster).
func newWithClock(w fyne.Window, b Backend, now func() time.Time) *UI {
	u := &UI{w: w, backend: b, openURL: fyne.CurrentApp().OpenURL, now: now, mu: new(sync.Mutex)}
	if b.Settings().SetupDone {
		u.showHome("")
	} else {
		u.showSetup()
	}
	return u
}

// Close leaves the session, if any, stops the screen's background task,
// and waits until the session has left the room and closed its device and
// the task has stopped (the home screen follows on the UI goroutine).
func (u *UI) Close() {
	u.mu.Lock()
	stop, done := u.stop, u.done
	u.stop = nil
	u.cancelTask()
	u.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	u.tasks.Wait()
}

// runTask runs fn on a goroutine for the current screen, stopping the
// previous screen's task; showing another screen stops it (its context
// ends). A task starts once the one before it has returned. fn reports through u.do and checks ctx there: a task whose
// screen is gone shows nothing. UI goroutine only.
func (u *UI) runTask(fn func(ctx context.Context)) {
	u.cancelTask()
	ctx, cancel := context.WithCancel(context.Background())
	u.stopTask = cancel
	prev, done := u.taskDone, make(chan struct{})
	u.taskDone = done
	u.tasks.Go(func() {
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev // it may hold the audio device: let it close it first
		}
		if ctx.Err() == nil {
			fn(ctx)
		}
	})
}

// cancelTask stops the screen's task, if any, without waiting for it.
func (u *UI) cancelTask() {
	if u.stopTask != nil {
		u.stopTask()
		u.stopTask = nil
	}
}

// setContent shows a screen: the previous screen's task and keys stop.
func (u *UI) setContent(o fyne.CanvasObject) {
	u.cancelTask()
	u.w.Canvas().SetOnTypedRune(nil)
	u.w.SetContent(o)
}

func (u *UI) showHome(message string) {
	title := canvas.NewText("Duet", theme.Color(theme.ColorNameForeground))
	title.TextSize = 32
	title.TextStyle.Bold = true
	errLabel := widget.NewLabel(message)
	errLabel.Wrapping = fyne.TextWrapWord
	code := widget.NewEntry()
	code.SetPlaceHolder("Room code, e.g. K7QM-3XRT")
	var host, join, settings *widget.Button
	busy := func(b bool, what string) {
		for _, button := range []*widget.Button{host, join, settings} {
			if b {
				button.Disable()
			} else {
				button.Enable()
			}
		}
		errLabel.SetText(what)
	}
	host = widget.NewButtonWithIcon("Host a duet", theme.MediaRecordIcon(), func() {
		busy(true, "Opening a room…")
		u.start(true, func(ctx context.Context, on func(app.Event)) (Session, error) { return u.backend.Host(ctx, on) },
			func(err error) { busy(false, sentence(err)) })
	})
	join = widget.NewButtonWithIcon("Join", theme.LoginIcon(), func() {
		c, err := signal.ParseCode(code.Text)
		if err != nil {
			errLabel.SetText("That is not a room code: it has eight letters and digits, like K7QM-3XRT.")
			return
		}
		busy(true, "Joining room "+c.String()+"…")
		u.start(false, func(ctx context.Context, on func(app.Event)) (Session, error) { return u.backend.Join(ctx, c, on) },
			func(err error) { busy(false, sentence(err)) })
	})
	settings = widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), u.showSettings)
	code.OnSubmitted = func(string) {
		if !join.Disabled() {
			join.OnTapped()
		}
	}
	host.Importance = widget.HighImportance
	greeting := "Sing a duet live with someone on another computer."
	if name := u.backend.Settings().Name; name != "" {
		greeting = "Hello " + name + ". " + greeting
	}
	u.setContent(container.NewPadded(container.NewVBox(
		title,
		widget.NewLabel(greeting),
		widget.NewSeparator(),
		host,
		widget.NewLabel("or join your partner's room:"),
		container.NewBorder(nil, nil, nil, join, code),
		errLabel,
		widget.NewLabel("Use headphones: with speakers your partner hears themself come back."),
		container.NewHBox(settings),
	)))
}

// start opens a session in the background and shows it; failed is told
// (on the UI goroutine) if it cannot be opened. It runs on the UI goroutine
// and starts nothing while a session is opening or running; Close stops
// the session from the moment start returns.
//
// The session's goroutine owns two more: the refresh ticker and the
// command worker, which runs the session's blocking controls one at a time
// and stops with the session.
func (u *UI) start(host bool, open func(context.Context, func(app.Event)) (Session, error), failed func(error)) {
	if u.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	u.stop, u.done = cancel, done
	// ended runs on the UI goroutine once the session is over.
	ended := func(then func()) {
		u.do(func() {
			if u.done == done {
				u.stop, u.done = nil, nil
			}
			then()
		})
	}
	cmds := make(chan func(), 4)
	screen := &sessionScreen{ui: u, host: host, cmds: cmds, ctx: ctx}
	u.screen = screen
	go func() {
		s, err := open(ctx, screen.event)
		if err != nil {
			cancel()
			close(done)
			ended(func() { failed(err) })
			return
		}
		// Even if Close came while opening, Run leaves the room cleanly.
		u.do(func() { screen.show(s) })
		var helpers sync.WaitGroup
		helpers.Go(func() {
			ticks := time.NewTicker(50 * time.Millisecond)
			defer ticks.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-ticks.C:
					now := u.now()
					u.do(func() { screen.refresh(now) })
				}
			}
		})
		helpers.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case f := <-cmds:
					f()
				}
			}
		})
		err = s.Run(ctx)
		cancel()
		helpers.Wait()
		close(done)
		ended(func() {
			msg := screen.lastText
			if err != nil {
				msg = sentence(err)
			}
			u.showHome(msg)
		})
	}()
}

// idleColor is the quality light without figures: before the first, and
// while the connection is down.
func idleColor() color.Color { return color.Gray{Y: 0x80} }

func qualityColor(d time.Duration) color.Color {
	switch {
	case d <= goodLatency:
		return green
	case d <= fairLatency:
		return amber
	}
	return red
}

// sentence makes an error read like one: first letter up, a full stop.
func sentence(err error) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	s := err.Error()
	if s == "" {
		return ""
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
