package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/meter"
)

// defaultDevice is how the device choices name the system's default.
const defaultDevice = "System default"

// The frame sizes a singer may choose, as shown and as kept.
var frameChoices = []struct {
	label string
	d     time.Duration
}{{"2.5 ms", 2500 * time.Microsecond}, {"5 ms", 5 * time.Millisecond}, {"10 ms", 10 * time.Millisecond}}

// The codecs a singer may choose, as shown and as kept (app.ParseCodec's
// names; empty is automatic).
var codecChoices = []struct {
	label string
	kind  codec.Kind
}{{"Automatic", app.Auto}, {"Opus Custom", codec.OpusCustom}, {"PCM 16-bit", codec.L16}, {"PCM 24-bit", codec.L24}, {"Opus", codec.Opus}}

// recordDir is where takes go: the settings' folder, or ~/Music/Duet.
func recordDir(s app.Settings) string {
	if s.RecordDir != "" {
		return s.RecordDir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "Duet")
	}
	return filepath.Join(home, "Music", "Duet")
}

// deviceChoice is a microphone or output choice, filled in once the
// devices are listed (off the UI goroutine).
type deviceChoice struct {
	sel     *widget.Select
	current string
}

func newDeviceChoice(current string) *deviceChoice {
	d := &deviceChoice{current: current}
	d.sel = widget.NewSelect(nil, nil)
	d.setOptions(nil)
	return d
}

// setOptions offers the system default, names, and the remembered device
// even if it is not here now.
func (d *deviceChoice) setOptions(names []string) {
	options := append([]string{defaultDevice}, names...)
	if d.current != "" && !slices.Contains(options, d.current) {
		options = append(options, d.current)
	}
	d.sel.SetOptions(options)
	if d.sel.Selected == "" {
		d.sel.SetSelected(defaultDevice)
		if d.current != "" {
			d.sel.SetSelected(d.current)
		}
	}
}

// device is the chosen device's name, "" for the default.
func (d *deviceChoice) device() string {
	if d.sel.Selected == defaultDevice {
		return ""
	}
	return d.sel.Selected
}

// listDevices lists the devices in the background and offers them in
// the choices; then, if then is set, it goes on with it in the same task.
func (u *UI) listDevices(note *widget.Label, in, out *deviceChoice, then func(ctx context.Context)) {
	u.runTask(func(ctx context.Context) {
		inputs, outputs, err := u.backend.Devices()
		u.do(func() {
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				note.SetText(sentence(err))
			}
			in.setOptions(inputs)
			out.setOptions(outputs)
		})
		if then != nil && ctx.Err() == nil {
			then(ctx)
		}
	})
}

// latencyMeasure is the "measure my latency" control: a button, a
// progress bar and the result; result is called with a good measurement
// on the UI goroutine.
type latencyMeasure struct {
	box fyne.CanvasObject
}

func (u *UI) newLatencyMeasure(settings func() app.Settings, current *app.Calibration, result func(app.Calibration)) *latencyMeasure {
	progress := widget.NewProgressBar()
	progress.Hide()
	text := small("Measures what your sound card and its drivers add. Hold the microphone to the speaker or headphones (or connect the output to the input with a cable), keep quiet, and it takes about three seconds.")
	if current != nil {
		text.SetText(fmt.Sprintf("Measured: %.1f ms round trip. ", ms(current.RoundTrip)) + text.Text)
	}
	var button *widget.Button
	button = widget.NewButtonWithIcon("Measure my latency", theme.MediaPlayIcon(), func() {
		s := settings()
		button.Disable()
		progress.SetValue(0)
		progress.Show()
		text.SetText("Measuring: keep quiet…")
		u.runTask(func(ctx context.Context) {
			cal, err := u.backend.Calibrate(ctx, s, func(f float64) {
				u.do(func() {
					if ctx.Err() == nil {
						progress.SetValue(f)
					}
				})
			})
			u.do(func() {
				if ctx.Err() != nil {
					return
				}
				button.Enable()
				progress.Hide()
				if err != nil {
					text.SetText(sentence(err))
					return
				}
				text.SetText(fmt.Sprintf("Your devices add %.1f ms from output to input (confidence %.2f). Duet counts it in the latency and lines your voice up in recordings.", ms(cal.RoundTrip), cal.Confidence))
				result(cal)
			})
		})
	})
	return &latencyMeasure{box: container.NewVBox(container.NewHBox(button), progress, text)}
}

// settingsForm is the settings screen's fields, filled from the
// remembered settings.
type settingsForm struct {
	s                     app.Settings // as remembered, then as collected
	name, server, ntp     *widget.Entry
	folder                *widget.Entry
	in, out               *deviceChoice
	buffer, frame, listen *widget.RadioGroup
	codec                 *widget.Select
	jitter                *widget.Slider
}

func newSettingsForm(s app.Settings) *settingsForm {
	f := &settingsForm{s: s, in: newDeviceChoice(s.InputDevice), out: newDeviceChoice(s.OutputDevice)}
	entry := func(text, placeholder string) *widget.Entry {
		e := widget.NewEntry()
		e.SetText(text)
		e.SetPlaceHolder(placeholder)
		return e
	}
	f.name = entry(s.Name, "how your partner sees you")
	f.server = entry(s.Server, "none: hosting starts one here, joining looks on the network")
	f.ntp = entry(s.NTPServer, "pool.ntp.org (\"off\": never ask)")
	f.folder = entry(s.RecordDir, recordDir(app.Settings{}))
	radio := func(options []string, selected string) *widget.RadioGroup {
		r := widget.NewRadioGroup(options, nil)
		r.Horizontal = true
		r.SetSelected(selected)
		return r
	}
	frames := s.Buffer
	if frames == 0 {
		frames = 128
	}
	f.buffer = radio([]string{"64", "128", "256"}, fmt.Sprint(frames))
	f.frame = radio(nil, "")
	for _, c := range frameChoices {
		f.frame.Append(c.label)
		if c.d == s.Frame {
			f.frame.SetSelected(c.label)
		}
	}
	if f.frame.Selected == "" {
		f.frame.SetSelected("5 ms")
	}
	f.codec = widget.NewSelect(nil, nil)
	k, err := app.ParseCodec(s.Codec)
	for _, c := range codecChoices {
		f.codec.Options = append(f.codec.Options, c.label)
		if err == nil && c.kind == k {
			f.codec.SetSelected(c.label)
		}
	}
	if f.codec.Selected == "" {
		f.codec.SetSelected(codecChoices[0].label)
	}
	f.jitter = widget.NewSlider(-1, 1)
	f.jitter.Step = 0.1
	f.jitter.SetValue(s.JitterBias)
	f.listen = radio([]string{"Headphones", "Speakers"}, map[bool]string{false: "Headphones", true: "Speakers"}[s.Speakers])
	return f
}

// collect is what the form says now.
func (f *settingsForm) collect() app.Settings {
	s := &f.s
	s.Name = strings.TrimSpace(f.name.Text)
	s.InputDevice, s.OutputDevice = f.in.device(), f.out.device()
	fmt.Sscan(f.buffer.Selected, &s.Buffer)
	for _, c := range frameChoices {
		if c.label == f.frame.Selected {
			s.Frame = c.d
		}
	}
	for _, c := range codecChoices {
		if c.label == f.codec.Selected {
			s.Codec = ""
			if c.kind != app.Auto {
				s.Codec = app.CodecName(c.kind)
			}
		}
	}
	s.JitterBias = f.jitter.Value
	s.Speakers = f.listen.Selected == "Speakers"
	s.Server = strings.TrimSpace(f.server.Text)
	s.NTPServer = strings.TrimSpace(f.ntp.Text)
	s.RecordDir = strings.TrimSpace(f.folder.Text)
	return *s
}

// items lays the fields out; chooseFolder sits beside the folder.
func (f *settingsForm) items(chooseFolder fyne.CanvasObject) *widget.Form {
	return widget.NewForm(
		widget.NewFormItem("Your name", f.name),
		widget.NewFormItem("Microphone", f.in.sel),
		widget.NewFormItem("Headphones", f.out.sel),
		widget.NewFormItem("Buffer (frames)", f.buffer),
		widget.NewFormItem("Codec", f.codec),
		widget.NewFormItem("Frame", f.frame),
		widget.NewFormItem("Jitter buffer", container.NewBorder(nil, nil, widget.NewLabel("tight"), widget.NewLabel("safe"), f.jitter)),
		widget.NewFormItem("You listen on", f.listen),
		widget.NewFormItem("Rendezvous server", f.server),
		widget.NewFormItem("Time server (NTP)", f.ntp),
		widget.NewFormItem("Recordings", container.NewBorder(nil, nil, nil, chooseFolder, f.folder)),
	)
}

// showSettings shows the remembered settings for editing.
func (u *UI) showSettings() {
	f := newSettingsForm(u.backend.Settings())
	note := widget.NewLabel("")
	note.Wrapping = fyne.TextWrapWord
	chooseFolder := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		dialog.ShowFolderOpen(func(l fyne.ListableURI, err error) {
			if err == nil && l != nil {
				f.folder.SetText(l.Path())
			}
		}, u.w)
	})
	measure := u.newLatencyMeasure(f.collect, f.s.Calibration, func(c app.Calibration) {
		f.s.Calibration = &c
		if err := u.backend.SaveSettings(f.collect()); err != nil {
			note.SetText(sentence(err))
		}
	})
	save := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), func() {
		if err := u.backend.SaveSettings(f.collect()); err != nil {
			note.SetText(sentence(err))
			return
		}
		u.showHome("Settings saved.")
	})
	save.Importance = widget.HighImportance
	back := widget.NewButton("Back", func() { u.showHome("") })
	u.setContent(container.NewBorder(nil, container.NewPadded(container.NewHBox(save, back)), nil, nil,
		container.NewVScroll(container.NewPadded(container.NewVBox(
			heading("Settings"),
			f.items(chooseFolder),
			small("Smaller buffers and frames mean less delay; choose larger ones if you hear crackles. Automatic sends Opus Custom to another Duet (the least delay a codec adds), uncompressed PCM on a clean local network, and Opus (the frame above) to anyone else or when the network loses much. A tight jitter buffer adds the least delay and drops out on a bumpy network; a safe one waits longer. Headphones are better than speakers: no echo to cancel. Device, frame and listening changes apply from your next session."),
			heading("Latency"),
			measure.box,
			note,
		)))))
	u.listDevices(note, f.in, f.out, nil)
}

// showSetup is the first-run setup: devices, a look at the microphone's
// level, headphones or speakers, and an optional latency measurement.
// Done remembers it all and that setup is done.
func (u *UI) showSetup() {
	s := u.backend.Settings()
	note := widget.NewLabel("")
	note.Wrapping = fyne.TextWrapWord
	name := widget.NewEntry()
	name.SetText(s.Name)
	name.SetPlaceHolder("your name, for your partner")
	in, out := newDeviceChoice(s.InputDevice), newDeviceChoice(s.OutputDevice)
	mic := newLevelMeter()
	listen := widget.NewRadioGroup([]string{"Headphones", "Speakers"}, nil)
	listen.Horizontal = true
	listen.SetSelected(map[bool]string{false: "Headphones", true: "Speakers"}[s.Speakers])

	collect := func() app.Settings {
		s.Name = strings.TrimSpace(name.Text)
		s.InputDevice, s.OutputDevice = in.device(), out.device()
		s.Speakers = listen.Selected == "Speakers"
		return s
	}
	// check shows the chosen microphone's level until the screen goes or
	// another device is chosen; it runs in the screen's task, with the
	// choices as they were when it started.
	check := func(st app.Settings) func(ctx context.Context) {
		return func(ctx context.Context) { u.micCheck(ctx, st, mic, note) }
	}
	onDevice := func(string) { u.runTask(check(collect())) }
	measure := u.newLatencyMeasure(collect, s.Calibration, func(c app.Calibration) {
		s.Calibration = &c
		u.runTask(check(collect())) // the measurement had the device: watch the mic again
	})
	done := widget.NewButtonWithIcon("Done", theme.ConfirmIcon(), func() {
		st := collect()
		st.SetupDone = true
		if err := u.backend.SaveSettings(st); err != nil {
			note.SetText(sentence(err))
			return
		}
		u.showHome("You are set up. Host a duet, or type the code your partner reads you.")
	})
	done.Importance = widget.HighImportance
	u.setContent(container.NewBorder(nil, container.NewPadded(container.NewHBox(done)), nil, nil,
		container.NewVScroll(container.NewPadded(container.NewVBox(
			heading("Welcome to Duet"),
			widget.NewLabel("A minute to set up, then you can sing."),
			widget.NewForm(widget.NewFormItem("Your name", name)),
			heading("1. Your microphone and headphones"),
			widget.NewForm(
				widget.NewFormItem("Microphone", in.sel),
				widget.NewFormItem("Headphones", out.sel),
				widget.NewFormItem("Level", mic),
				widget.NewFormItem("", newMeterScale()),
			),
			small("Sing or speak: the level moves when the microphone hears you. Loud notes may reach the amber; if they reach the red, or the light at its end comes on, turn the microphone down. If it stays still, choose another microphone."),
			heading("2. Headphones or speakers?"),
			listen,
			small("Headphones are better: with speakers your partner hears themself come back, and the echo canceller that removes it adds delay."),
			heading("3. Your latency (optional)"),
			measure.box,
			note,
		)))))
	u.listDevices(note, in, out, check(collect()))
	// Chosen after the list arrives, so the first check is not restarted.
	in.sel.OnChanged, out.sel.OnChanged = onDevice, onDevice
}

// micCheck shows the microphone's level in m until ctx ends.
func (u *UI) micCheck(ctx context.Context, s app.Settings, m *levelMeter, note *widget.Label) {
	err := u.backend.MicCheck(ctx, s, func(l meter.Level) {
		now := u.now()
		u.do(func() {
			if ctx.Err() == nil {
				m.Set(l, now)
			}
		})
	})
	u.do(func() {
		if ctx.Err() == nil && err != nil {
			note.SetText(sentence(err))
		}
	})
}
