// Package ui is Duet's desktop window, in Fyne v2: a home screen to host a
// duet or join one by its room code, and a session screen with the code to
// read aloud, the partner's status, the latency by stage with a quality
// light, level meters, mute and leave.
//
// The window only shows and asks. Sessions come from a Backend (package
// app, wired in cmd/duet); their events arrive on the session's goroutine
// and a refresh ticker polls levels and figures twenty times a second, and
// both touch widgets only through fyne.Do. Keys: M mutes you.
package ui

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
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
	"github.com/duetapp/duet/net/signal"
)

// Session is what the window shows and controls of a running duet;
// *app.Session is one.
type Session interface {
	Code() signal.Code
	Run(ctx context.Context) error
	Stats() app.Stats
	Levels() app.Levels
	Latency() app.Latency
	SetMuted(bool)
	Muted() bool
}

// Backend starts sessions and keeps the settings. onEvent is called from
// the session's goroutine.
type Backend interface {
	Host(ctx context.Context, onEvent func(app.Event)) (Session, error)
	Join(ctx context.Context, code signal.Code, onEvent func(app.Event)) (Session, error)
	Settings() app.Settings
	SaveSettings(app.Settings) error
	// Devices names the audio devices with inputs and with outputs.
	Devices() (inputs, outputs []string, err error)
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

	// mu serialises the updates that come from other goroutines. With a
	// real driver fyne.Do already runs them on the UI goroutine; Fyne's
	// test driver runs them where they are called, and tests hold mu too.
	mu sync.Mutex

	stop context.CancelFunc // leaves the current session, if any
	done chan struct{}      // closed when the session's goroutines are gone
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

// New shows the home screen in w.
func New(w fyne.Window, b Backend) *UI {
	u := &UI{w: w, backend: b}
	u.showHome("")
	return u
}

// Close leaves the session, if any, and waits until it has left the room
// and closed its device (the home screen follows on the UI goroutine).
func (u *UI) Close() {
	u.mu.Lock()
	stop, done := u.stop, u.done
	u.stop = nil
	u.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
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
		u.start(func(ctx context.Context, on func(app.Event)) (Session, error) { return u.backend.Host(ctx, on) },
			func(err error) { busy(false, sentence(err)) })
	})
	join = widget.NewButtonWithIcon("Join", theme.LoginIcon(), func() {
		c, err := signal.ParseCode(code.Text)
		if err != nil {
			errLabel.SetText("That is not a room code: it has eight letters and digits, like K7QM-3XRT.")
			return
		}
		busy(true, "Joining room "+c.String()+"…")
		u.start(func(ctx context.Context, on func(app.Event)) (Session, error) { return u.backend.Join(ctx, c, on) },
			func(err error) { busy(false, sentence(err)) })
	})
	settings = widget.NewButtonWithIcon("Settings", theme.SettingsIcon(), u.showSettings)
	code.OnSubmitted = func(string) {
		if !join.Disabled() {
			join.OnTapped()
		}
	}
	host.Importance = widget.HighImportance
	u.w.Canvas().SetOnTypedRune(nil)
	u.w.SetContent(container.NewPadded(container.NewVBox(
		title,
		widget.NewLabel("Sing a duet live with someone on another computer."),
		widget.NewSeparator(),
		host,
		widget.NewLabel("or join your partner's room:"),
		container.NewBorder(nil, nil, nil, join, code),
		errLabel,
		widget.NewLabel("Use headphones: with speakers your partner hears themself come back."),
		container.NewHBox(settings),
	)))
}

// defaultDevice is how the settings screen names the system's default.
const defaultDevice = "System default"

// showSettings shows the remembered settings for editing.
func (u *UI) showSettings() {
	s := u.backend.Settings()
	inputs, outputs, err := u.backend.Devices()
	note := widget.NewLabel("")
	note.Wrapping = fyne.TextWrapWord
	if err != nil {
		note.SetText(sentence(err))
	}
	pick := func(names []string, current string) *widget.Select {
		options := append([]string{defaultDevice}, names...)
		if current != "" && !slices.Contains(options, current) {
			options = append(options, current) // remembered, though not here now
		}
		sel := widget.NewSelect(options, nil)
		sel.SetSelected(defaultDevice)
		if current != "" {
			sel.SetSelected(current)
		}
		return sel
	}
	in, out := pick(inputs, s.InputDevice), pick(outputs, s.OutputDevice)
	buffer := widget.NewRadioGroup([]string{"64", "128", "256"}, nil)
	buffer.Horizontal = true
	frames := s.Buffer
	if frames == 0 {
		frames = 128
	}
	buffer.SetSelected(fmt.Sprint(frames))
	server := widget.NewEntry()
	server.SetText(s.Server)
	server.SetPlaceHolder("none: hosting starts one on this computer")
	device := func(sel *widget.Select) string {
		if sel.Selected == defaultDevice {
			return ""
		}
		return sel.Selected
	}
	save := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), func() {
		s.InputDevice, s.OutputDevice, s.Server = device(in), device(out), strings.TrimSpace(server.Text)
		fmt.Sscan(buffer.Selected, &s.Buffer)
		if err := u.backend.SaveSettings(s); err != nil {
			note.SetText(sentence(err))
			return
		}
		u.showHome("Settings saved.")
	})
	save.Importance = widget.HighImportance
	back := widget.NewButton("Back", func() { u.showHome("") })
	u.w.SetContent(container.NewPadded(container.NewVBox(
		widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		widget.NewForm(
			widget.NewFormItem("Microphone", in),
			widget.NewFormItem("Headphones", out),
			widget.NewFormItem("Buffer (frames)", buffer),
			widget.NewFormItem("Rendezvous server", server),
		),
		widget.NewLabel("Smaller buffers mean less delay; choose a larger one if you hear crackles."),
		note,
		container.NewHBox(save, back),
	)))
}

// start opens a session in the background and shows it; failed is told
// (on the UI goroutine) if it cannot be opened. It runs on the UI goroutine
// and starts nothing while a session is opening or running; Close stops
// the session from the moment start returns.
func (u *UI) start(open func(context.Context, func(app.Event)) (Session, error), failed func(error)) {
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
	screen := &sessionScreen{ui: u}
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
		ticks := time.NewTicker(50 * time.Millisecond)
		refreshDone := make(chan struct{})
		go func() {
			defer close(refreshDone)
			for {
				select {
				case <-ctx.Done():
					return
				case <-ticks.C:
					u.do(screen.refresh)
				}
			}
		}()
		err = s.Run(ctx)
		cancel()
		ticks.Stop()
		<-refreshDone
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

// sessionScreen is the running duet's screen.
type sessionScreen struct {
	ui       *UI
	s        Session
	status   *widget.Label
	latency  *widget.Label
	light    *canvas.Circle
	safety   *widget.Label
	meters   [3]*widget.ProgressBar
	mute     *widget.Check
	lastText string
	pending  []app.Event // events before the screen is shown
}

// event is the session's OnEvent: it runs on the session's goroutine.
func (sc *sessionScreen) event(e app.Event) {
	sc.ui.do(func() {
		sc.lastText = e.Text
		if sc.status == nil {
			sc.pending = append(sc.pending, e)
			return
		}
		sc.status.SetText(e.Text)
	})
}

func (sc *sessionScreen) show(s Session) {
	sc.s = s
	code := canvas.NewText(s.Code().String(), theme.Color(theme.ColorNameForeground))
	code.TextSize = 40
	code.TextStyle = fyne.TextStyle{Monospace: true}
	copyButton := widget.NewButtonWithIcon("Copy", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(s.Code().String())
	})
	sc.status = widget.NewLabel(sc.lastText)
	sc.status.Wrapping = fyne.TextWrapWord
	sc.latency = widget.NewLabel("Latency: measuring…")
	sc.light = canvas.NewCircle(color.Gray{Y: 0x80})
	sc.light.Resize(fyne.NewSize(16, 16))
	sc.safety = widget.NewLabel("")
	names := [3]string{"Your mic", "Your partner", "You hear"}
	meters := container.NewVBox()
	for i := range sc.meters {
		sc.meters[i] = widget.NewProgressBar()
		sc.meters[i].TextFormatter = func() string { return "" }
		meters.Add(container.NewBorder(nil, nil, widget.NewLabel(names[i]), nil, sc.meters[i]))
	}
	sc.mute = widget.NewCheck("Mute me (M)", s.SetMuted)
	leave := widget.NewButtonWithIcon("Leave", theme.LogoutIcon(), sc.ui.Close)
	leave.Importance = widget.DangerImportance
	sc.ui.w.Canvas().SetOnTypedRune(func(r rune) {
		if r == 'm' || r == 'M' {
			sc.mute.SetChecked(!sc.mute.Checked)
		}
	})
	lightBox := container.NewGridWrap(fyne.NewSize(16, 16), sc.light)
	sc.ui.w.SetContent(container.NewPadded(container.NewVBox(
		widget.NewLabel("Read this code to your partner:"),
		container.NewHBox(code, container.NewCenter(copyButton)),
		sc.status,
		widget.NewSeparator(),
		container.NewHBox(container.NewCenter(lightBox), sc.latency),
		sc.safety,
		meters,
		container.NewHBox(sc.mute, leave),
	)))
	for _, e := range sc.pending {
		sc.status.SetText(e.Text)
	}
	sc.pending = nil
}

// refresh updates the figures and meters; it runs on the UI goroutine.
func (sc *sessionScreen) refresh() {
	if sc.s == nil {
		return
	}
	l := sc.s.Levels()
	for i, lv := range []meter.Level{l.Mic, l.Partner, l.Output} {
		sc.meters[i].SetValue(meterValue(lv.Peak))
	}
	st := sc.s.Stats()
	if st.SafetyCode != "" {
		sc.safety.SetText("Safety code " + st.SafetyCode + ": the same on your partner's screen means nobody listens in.")
	}
	if st.Peer.PacketsReceived == 0 {
		return
	}
	lat := sc.s.Latency()
	sc.latency.SetText(latencyText(lat, st.Peer.Relayed))
	sc.light.FillColor = qualityColor(lat.Total())
	sc.light.Refresh()
}

// meterValue maps a dBFS level to a meter's 0…1 over a 60 dB range.
func meterValue(dbfs float64) float64 {
	return math.Max(0, math.Min(1, (dbfs+60)/60))
}

func latencyText(l app.Latency, relayed bool) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	how := "direct"
	if relayed {
		how = "relayed"
	}
	return fmt.Sprintf("Your partner → you: %s ms (network %s, %s; jitter buffer %s; codec %s; devices %s)",
		ms(l.Total()), ms(l.Network), how, ms(l.Jitter), ms(l.Codec), ms(l.Device))
}

func qualityColor(d time.Duration) color.Color {
	switch {
	case d <= goodLatency:
		return color.NRGBA{R: 0x2e, G: 0xa0, B: 0x43, A: 0xff}
	case d <= fairLatency:
		return color.NRGBA{R: 0xe0, G: 0xa0, B: 0x20, A: 0xff}
	}
	return color.NRGBA{R: 0xd0, G: 0x30, B: 0x30, A: 0xff}
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
