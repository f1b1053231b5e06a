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

// showSettings shows the remembered settings for editing.
func (u *UI) showSettings() {
	s := u.backend.Settings()
	note := widget.NewLabel("")
	note.Wrapping = fyne.TextWrapWord
	name := widget.NewEntry()
	name.SetText(s.Name)
	name.SetPlaceHolder("how your partner sees you")
	in, out := newDeviceChoice(s.InputDevice), newDeviceChoice(s.OutputDevice)
	buffer := widget.NewRadioGroup([]string{"64", "128", "256"}, nil)
	buffer.Horizontal = true
	frames := s.Buffer
	if frames == 0 {
		frames = 128
	}
	buffer.SetSelected(fmt.Sprint(frames))
	var frameLabels []string
	for _, f := range frameChoices {
		frameLabels = append(frameLabels, f.label)
	}
	frame := widget.NewRadioGroup(frameLabels, nil)
	frame.Horizontal = true
	frame.SetSelected("5 ms")
	for _, f := range frameChoices {
		if f.d == s.Frame {
			frame.SetSelected(f.label)
		}
	}
	var codecLabels []string
	for _, c := range codecChoices {
		codecLabels = append(codecLabels, c.label)
	}
	sendCodec := widget.NewSelect(codecLabels, nil)
	sendCodec.SetSelected(codecChoices[0].label)
	if k, err := app.ParseCodec(s.Codec); err == nil {
		for _, c := range codecChoices {
			if c.kind == k {
				sendCodec.SetSelected(c.label)
			}
		}
	}
	jitter := widget.NewSlider(-1, 1)
	jitter.Step = 0.1
	jitter.SetValue(s.JitterBias)
	listen := widget.NewRadioGroup([]string{"Headphones", "Speakers"}, nil)
	listen.Horizontal = true
	listen.SetSelected(map[bool]string{false: "Headphones", true: "Speakers"}[s.Speakers])
	server := widget.NewEntry()
	server.SetText(s.Server)
	server.SetPlaceHolder("none: hosting starts one here, joining looks on the network")
	ntp := widget.NewEntry()
	ntp.SetText(s.NTPServer)
	ntp.SetPlaceHolder("pool.ntp.org (\"off\": never ask)")
	folder := widget.NewEntry()
	folder.SetText(s.RecordDir)
	folder.SetPlaceHolder(recordDir(app.Settings{}))
	chooseFolder := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		dialog.ShowFolderOpen(func(l fyne.ListableURI, err error) {
			if err == nil && l != nil {
				folder.SetText(l.Path())
			}
		}, u.w)
	})

	// collect is what the form says now.
	collect := func() app.Settings {
		s.Name = strings.TrimSpace(name.Text)
		s.InputDevice, s.OutputDevice = in.device(), out.device()
		fmt.Sscan(buffer.Selected, &s.Buffer)
		for _, f := range frameChoices {
			if f.label == frame.Selected {
				s.Frame = f.d
			}
		}
		for _, c := range codecChoices {
			if c.label == sendCodec.Selected {
				s.Codec = ""
				if c.kind != app.Auto {
					s.Codec = app.CodecName(c.kind)
				}
			}
		}
		s.JitterBias = jitter.Value
		s.Speakers = listen.Selected == "Speakers"
		s.Server = strings.TrimSpace(server.Text)
		s.NTPServer = strings.TrimSpace(ntp.Text)
		s.RecordDir = strings.TrimSpace(folder.Text)
		return s
	}
	measure := u.newLatencyMeasure(collect, s.Calibration, func(c app.Calibration) {
		s.Calibration = &c
		if err := u.backend.SaveSettings(collect()); err != nil {
			note.SetText(sentence(err))
		}
	})
	save := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), func() {
		if err := u.backend.SaveSettings(collect()); err != nil {
			note.SetText(sentence(err))
			return
		}
		u.showHome("Settings saved.")
	})
	save.Importance = widget.HighImportance
	back := widget.NewButton("Back", func() { u.showHome("") })
	form := widget.NewForm(
		widget.NewFormItem("Your name", name),
		widget.NewFormItem("Microphone", in.sel),
		widget.NewFormItem("Headphones", out.sel),
		widget.NewFormItem("Buffer (frames)", buffer),
		widget.NewFormItem("Codec", sendCodec),
		widget.NewFormItem("Frame", frame),
		widget.NewFormItem("Jitter buffer", container.NewBorder(nil, nil, widget.NewLabel("tight"), widget.NewLabel("safe"), jitter)),
		widget.NewFormItem("You listen on", listen),
		widget.NewFormItem("Rendezvous server", server),
		widget.NewFormItem("Time server (NTP)", ntp),
		widget.NewFormItem("Recordings", container.NewBorder(nil, nil, nil, chooseFolder, folder)),
	)
	u.setContent(container.NewBorder(nil, container.NewPadded(container.NewHBox(save, back)), nil, nil,
		container.NewVScroll(container.NewPadded(container.NewVBox(
			heading("Settings"),
			form,
			small("Smaller buffers and frames mean less delay; choose larger ones if you hear crackles. Automatic sends Opus Custom to another Duet (the least delay a codec adds), uncompressed PCM on a clean local network, and Opus (the frame above) to anyone else or when the network loses much. A tight jitter buffer adds the least delay and drops out on a bumpy network; a safe one waits longer. Headphones are better than speakers: no echo to cancel. Device, frame and listening changes apply from your next session."),
			heading("Latency"),
			measure.box,
			note,
		)))))
	u.listDevices(note, in, out, nil)
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
	mic := widget.NewProgressBar()
	mic.TextFormatter = func() string { return "" }
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
			),
			small("Sing or speak: the level moves when the microphone hears you. If it stays still, choose another microphone."),
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

// micCheck shows the microphone's level in bar until ctx ends.
func (u *UI) micCheck(ctx context.Context, s app.Settings, bar *widget.ProgressBar, note *widget.Label) {
	err := u.backend.MicCheck(ctx, s, func(l meter.Level) {
		u.do(func() {
			if ctx.Err() == nil {
				bar.SetValue(meterValue(l.Peak))
			}
		})
	})
	u.do(func() {
		if ctx.Err() == nil && err != nil {
			note.SetText(sentence(err))
		}
	})
}
