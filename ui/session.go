package ui

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/track"
)

// sessionScreen is the running duet's screen. Its fields belong to the
// UI goroutine (and u.mu), except cmds and ctx, set once.
type sessionScreen struct {
	ui   *UI
	s    Session
	host bool
	cmds chan<- func()   // the session's command worker
	ctx  context.Context // ends with the session

	status, partner, latency, safety *widget.Label
	details                          *widget.Label // what this side sends, the NTP cross-check
	light                            *canvas.Circle
	micMeter, partnerMeter           *widget.ProgressBar
	trackMeter                       *widget.ProgressBar
	mute                             *widget.Check

	trackName, trackPos, trackNote *widget.Label
	countIn                        *widget.Label // host: how Play starts the song
	transfer                       *widget.ProgressBar
	play                           *widget.Button
	position                       *widget.Slider
	moving                         bool // refresh moves the slider: not the singer
	dragging                       bool // the singer holds the slider

	record     *widget.Button
	recordInfo *widget.Label
	showFiles  *widget.Button

	state    app.State
	lastText string
	pending  []app.Event // events before the screen is shown
}

// event is the session's OnEvent: it runs on the session's goroutine.
func (sc *sessionScreen) event(e app.Event) {
	// The safety code has a line of its own: once is enough.
	e.Text = withoutSafetyCode(e.Text)
	sc.ui.do(func() {
		sc.lastText = e.Text
		if sc.status == nil {
			sc.pending = append(sc.pending, e)
			return
		}
		sc.apply(e)
	})
}

func (sc *sessionScreen) apply(e app.Event) {
	sc.status.SetText(e.Text)
	sc.state = e.State
}

// withoutSafetyCode drops the sentence that tells the safety code from a
// session's status text: the screen shows the code on its own line.
func withoutSafetyCode(text string) string {
	i := strings.Index(text, "Safety code ")
	if i < 0 {
		return text
	}
	rest := ""
	if j := strings.Index(text[i:], ". "); j >= 0 {
		rest = text[i+j+2:]
	}
	return strings.TrimSpace(strings.TrimSpace(text[:i]) + " " + rest)
}

// command runs f on the session's command worker; if the worker is still
// busy with earlier ones, the singer is told. UI goroutine only.
func (sc *sessionScreen) command(f func()) {
	select {
	case sc.cmds <- f:
	default:
		sc.status.SetText("Still busy with your last request; try again in a moment.")
	}
}

// report shows err (if any) as the status, from the command worker.
func (sc *sessionScreen) report(err error) {
	if err == nil {
		return
	}
	sc.ui.do(func() {
		if sc.ctx.Err() == nil {
			sc.status.SetText(sentence(err))
		}
	})
}

func (sc *sessionScreen) show(s Session) {
	sc.s = s
	u := sc.ui
	code := canvas.NewText(s.Code().String(), theme.Color(theme.ColorNameForeground))
	code.TextSize = 40
	code.TextStyle = fyne.TextStyle{Monospace: true}
	copyButton := widget.NewButtonWithIcon("Copy", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(s.Code().String())
	})
	sc.status = widget.NewLabel(sc.lastText)
	sc.status.Wrapping = fyne.TextWrapWord
	sc.partner = widget.NewLabel("Waiting for your partner.")
	sc.latency = small("Latency: measuring once your partner is connected.")
	sc.light = canvas.NewCircle(idleColor())
	sc.safety = small("")
	sc.details = small("")

	bar := func() *widget.ProgressBar {
		p := widget.NewProgressBar()
		p.TextFormatter = func() string { return "" }
		return p
	}
	sc.micMeter, sc.partnerMeter, sc.trackMeter = bar(), bar(), bar()
	meters := widget.NewForm(
		widget.NewFormItem("You", sc.micMeter),
		widget.NewFormItem("Partner", sc.partnerMeter),
		widget.NewFormItem("Track", sc.trackMeter),
	)

	gain := func(set func(float32)) *widget.Slider {
		sl := widget.NewSlider(0, 2)
		sl.Step = 0.05
		sl.Value = 1
		sl.OnChanged = func(v float64) { set(float32(v)) }
		return sl
	}
	sc.mute = widget.NewCheck("Mute me (M)", s.SetMuted)
	gains := widget.NewForm(
		widget.NewFormItem("Partner volume", gain(s.SetPartnerGain)),
		widget.NewFormItem("Hear yourself", gain(s.SetMonitor)),
	)

	settings := u.backend.Settings()
	speakers := widget.NewRadioGroup([]string{"Headphones", "Speakers"}, nil)
	speakers.Horizontal = true
	speakers.SetSelected(map[bool]string{false: "Headphones", true: "Speakers"}[settings.Speakers])
	speakers.OnChanged = func(v string) {
		if v == "" {
			return
		}
		st := u.backend.Settings()
		st.Speakers = v == "Speakers"
		if err := u.backend.SaveSettings(st); err != nil {
			sc.status.SetText(sentence(err))
		}
	}
	speakersNote := small("Headphones are better: nothing you hear reaches your microphone, so your partner never hears themself come back and no echo canceller adds delay. A change applies from your next session.")

	leave := widget.NewButtonWithIcon("Leave", theme.LogoutIcon(), u.Close)
	leave.Importance = widget.DangerImportance

	lightBox := container.NewGridWrap(fyne.NewSize(16, 16), sc.light)
	body := container.NewVBox(
		widget.NewLabel("Read this code to your partner:"),
		container.NewHBox(code, container.NewCenter(copyButton)),
		sc.status,
		widget.NewSeparator(),
		container.NewHBox(container.NewCenter(lightBox), sc.partner),
		sc.latency,
		sc.details,
		sc.safety,
		meters,
		container.NewHBox(sc.mute),
		gains,
		container.NewHBox(widget.NewLabel("You listen on"), speakers),
		speakersNote,
		widget.NewSeparator(),
		heading("Backing track"),
		sc.trackSection(),
	)
	if sc.host {
		body.Add(widget.NewSeparator())
		body.Add(heading("Recording"))
		body.Add(sc.recordSection(settings))
	}
	u.setContent(container.NewBorder(nil, container.NewPadded(container.NewHBox(leave)), nil, nil,
		container.NewVScroll(container.NewPadded(body))))
	u.w.Canvas().SetOnTypedRune(sc.key)
	for _, e := range sc.pending {
		sc.apply(e)
	}
	sc.pending = nil
}

// key handles the session's keys; the canvas only sees typed keys when no
// widget has the focus, and a text field never gives them up.
func (sc *sessionScreen) key(r rune) {
	if _, typing := sc.ui.w.Canvas().Focused().(*widget.Entry); typing {
		return
	}
	switch r {
	case 'm', 'M':
		sc.mute.SetChecked(!sc.mute.Checked)
	case ' ':
		if sc.host && !sc.play.Disabled() {
			sc.play.OnTapped()
		}
	case 'r', 'R':
		if sc.host {
			sc.record.OnTapped()
		}
	}
}

// trackSection is the backing track's part: the host loads, plays and
// seeks it; the guest watches it arrive and play.
func (sc *sessionScreen) trackSection() fyne.CanvasObject {
	sc.trackName = widget.NewLabel("No backing track.")
	sc.trackName.Wrapping = fyne.TextWrapWord
	sc.transfer = widget.NewProgressBar()
	sc.trackNote = small("")
	sc.trackPos = widget.NewLabel("")
	sc.position = widget.NewSlider(0, 1)
	sc.position.Step = 0.1
	sc.position.OnChanged = func(float64) {
		if !sc.moving {
			sc.dragging = true
		}
	}
	sc.position.OnChangeEnded = func(v float64) {
		if sc.moving {
			return
		}
		sc.dragging = false
		to := time.Duration(v * float64(time.Second))
		sc.command(func() { sc.report(sc.s.Seek(to)) })
	}
	if !sc.host {
		sc.position.Disable()
		return container.NewVBox(sc.trackName, sc.transfer, sc.trackPos, sc.trackNote)
	}
	load := widget.NewButtonWithIcon("Load track…", theme.FolderOpenIcon(), sc.chooseTrack)
	sc.play = widget.NewButtonWithIcon("Play (space)", theme.MediaPlayIcon(), func() {
		if sc.s.Track().Playing {
			sc.command(func() { sc.report(sc.s.Pause()) })
		} else {
			sc.command(func() { sc.report(sc.s.Play()) })
		}
	})
	sc.play.Disable()
	sc.position.Disable()
	sc.countIn = small(countInText(0))
	return container.NewVBox(
		container.NewBorder(nil, nil, load, nil, sc.trackName),
		sc.transfer,
		sc.trackNote,
		container.NewBorder(nil, nil, sc.play, sc.trackPos, sc.position),
		sc.countIn,
	)
}

// chooseTrack asks for a song file with Fyne's file dialog.
func (sc *sessionScreen) chooseTrack() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			sc.status.SetText(sentence(err))
			return
		}
		if r == nil {
			return // cancelled
		}
		path := r.URI().Path()
		r.Close()
		sc.loadTrack(path)
	}, sc.ui.w)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".wav", ".mp3", ".flac", ".opus", ".ogg"}))
	d.Show()
}

// loadTrack decodes the file at path on the command worker and makes it
// the session's backing track. UI goroutine.
func (sc *sessionScreen) loadTrack(path string) {
	name := filepath.Base(path)
	sc.trackName.SetText("Loading " + name + "…")
	sc.command(func() {
		t, err := track.Load(path)
		if err == nil {
			err = sc.s.SetTrack(t)
		}
		if err != nil {
			sc.ui.do(func() {
				if sc.ctx.Err() == nil {
					sc.trackName.SetText(fmt.Sprintf("Could not load %s: %s", name, sentence(err)))
				}
			})
		}
	})
}

// recordSection is the host's recording part.
func (sc *sessionScreen) recordSection(s app.Settings) fyne.CanvasObject {
	dir := recordDir(s)
	sc.recordInfo = widget.NewLabel("")
	sc.record = widget.NewButtonWithIcon("Record (R)", theme.MediaRecordIcon(), func() {
		if sc.s.Track().Recording {
			sc.command(func() { sc.report(sc.s.StopRecording()) })
			return
		}
		sc.command(func() {
			_, err := sc.s.Record(dir)
			sc.report(err)
		})
	})
	sc.showFiles = widget.NewButtonWithIcon("Show files", theme.FolderIcon(), func() {
		take := sc.s.Track().Take
		if take == "" {
			return
		}
		if err := sc.ui.openURL(&url.URL{Scheme: "file", Path: take}); err != nil {
			sc.status.SetText("Could not open the folder " + take + ": " + sentence(err))
		}
	})
	sc.showFiles.Disable()
	return container.NewVBox(
		container.NewHBox(sc.record, sc.recordInfo, sc.showFiles),
		small("Takes go to "+dir+" (change it in the settings): one folder per take, a file per voice, the track and the mix, lined up as if you sang in one room."),
	)
}

// refresh updates the figures and meters; it runs on the UI goroutine.
func (sc *sessionScreen) refresh() {
	if sc.s == nil || sc.ctx.Err() != nil {
		return
	}
	l := sc.s.Levels()
	sc.micMeter.SetValue(meterValue(l.Mic.Peak))
	sc.partnerMeter.SetValue(meterValue(l.Partner.Peak))
	sc.trackMeter.SetValue(meterValue(l.Track.Peak))
	st := sc.s.Stats()
	if st.SafetyCode != "" {
		sc.safety.SetText("Safety code " + st.SafetyCode + ": the same on your partner's screen means nobody listens in.")
	}
	sc.partner.SetText(partnerText(sc.state, st))
	sc.details.SetText(detailsText(sc.state, st))
	sc.refreshTrack(sc.s.Track())
	if sc.state == app.StateReconnecting && sc.light.FillColor != idleColor() {
		sc.light.FillColor = idleColor() // no figures while the connection is down
		sc.light.Refresh()
	}
	if st.Peer.PacketsReceived == 0 || sc.state != app.StateConnected {
		return
	}
	lat := sc.s.Latency()
	sc.latency.SetText(latencyText(lat, st.Peer.Relayed, st.EchoLatency))
	sc.light.FillColor = qualityColor(lat.Total())
	sc.light.Refresh()
}

func (sc *sessionScreen) refreshTrack(t app.TrackStatus) {
	switch {
	case t.Error != "":
		sc.trackName.SetText(sentence(fmt.Errorf("%s", t.Error)))
	case t.Name != "":
		sc.trackName.SetText(fmt.Sprintf("%s (%s)", t.Name, clock(t.Length)))
	case t.Size > 0 && !sc.host:
		sc.trackName.SetText("A backing track is on its way.")
	}
	if t.Size > 0 {
		sc.transfer.SetValue(float64(t.Transferred) / float64(t.Size))
	}
	switch {
	case t.Streamed:
		sc.trackNote.SetText("The track goes to your partner in the mix.")
	case sc.host && t.Name != "" && t.PartnerReady:
		sc.trackNote.SetText("Your partner has it.")
	case sc.host && t.Name != "" && t.Size > 0 && t.Transferred > 0:
		sc.trackNote.SetText("Sending it to your partner…")
	case sc.host && t.Name != "":
		sc.trackNote.SetText("Your partner gets it once connected.")
	case !sc.host && t.Playing:
		sc.trackNote.SetText(fmt.Sprintf("In step with the host's track within %.1f ms.", ms(abs(t.Skew))))
	case !sc.host && t.Ready && t.CountIn > 0:
		sc.trackNote.SetText("The host starts it, after a " + seconds(t.CountIn) + " count-in.")
	case !sc.host && t.Ready:
		sc.trackNote.SetText("The host starts it.")
	}
	if t.Playing && t.Position < 0 {
		sc.trackPos.SetText(fmt.Sprintf("count-in %s / %s", clock(t.Position), clock(t.Length)))
	} else if t.Length > 0 {
		sc.trackPos.SetText(clock(t.Position) + " / " + clock(t.Length))
	}
	if t.Length > 0 {
		sc.position.Max = t.Length.Seconds()
		if !sc.dragging {
			sc.moving = true
			sc.position.SetValue(max(0, t.Position.Seconds()))
			sc.moving = false
		}
	}
	if !sc.host {
		return
	}
	sc.countIn.SetText(countInText(t.CountIn))
	if t.Ready {
		sc.play.Enable()
		sc.position.Enable()
	}
	if t.Playing {
		sc.play.SetText("Pause (space)")
		sc.play.SetIcon(theme.MediaPauseIcon())
	} else {
		sc.play.SetText("Play (space)")
		sc.play.SetIcon(theme.MediaPlayIcon())
	}
	if t.Recording {
		sc.record.SetText("Stop (R)")
		sc.record.SetIcon(theme.MediaStopIcon())
		sc.recordInfo.SetText("Recording " + clock(t.Recorded))
	} else {
		sc.record.SetText("Record (R)")
		sc.record.SetIcon(theme.MediaRecordIcon())
		if t.Take != "" {
			sc.recordInfo.SetText("Last take: " + filepath.Base(t.Take))
		}
	}
	if t.Take != "" {
		sc.showFiles.Enable()
	}
}

// partnerText says where the partner is and how the connection goes,
// calling the partner by their name once they said it.
func partnerText(state app.State, st app.Stats) string {
	who := "your partner"
	if st.PartnerName != "" {
		who = st.PartnerName
	}
	switch state {
	case app.StateWaiting:
		return "Waiting for your partner to join."
	case app.StateConnecting:
		// A host's new guest has not said their name yet (the one known
		// may be the last guest's).
		return "Connecting to your partner…"
	case app.StateReconnecting:
		return "The connection to " + who + " dropped; reconnecting…"
	case app.StateConnected, app.StateDeviceLost:
		how := "directly"
		if st.Peer.Relayed {
			how = "through a relay"
		}
		if st.Peer.Candidate != "" {
			how += " (" + st.Peer.Candidate + ")"
		}
		return "Connected to " + who + " " + how + "."
	case app.StatePartnerLeft:
		if st.PartnerName != "" {
			return st.PartnerName + " is away; the room stays open for them."
		}
		return "Your partner is away; the room stays open for them."
	}
	return "The duet is over."
}

// detailsText is the session's small print: what this side sends while
// connected (Opus bitrate, redundancy against loss) and the NTP
// cross-check of this computer's clock.
func detailsText(state app.State, st app.Stats) string {
	var parts []string
	switch state {
	case app.StateConnected, app.StateReconnecting, app.StateDeviceLost:
		if st.Bitrate > 0 {
			parts = append(parts, sendingText(st.Codec, st.Bitrate, st.Redundancy))
		}
	}
	if n := ntpText(st.NTP); n != "" {
		parts = append(parts, n)
	}
	if len(parts) == 0 {
		return ""
	}
	text := strings.Join(parts, "; ") + "."
	return strings.ToUpper(text[:1]) + text[1:]
}

// sendingText tells the codec sent (app.Stats.Codec; Opus if not known
// yet), its bitrate (bits per second) and how many earlier frames each
// packet repeats.
func sendingText(codec string, bitrate, redundancy int) string {
	if codec == "" {
		codec = "Opus"
	}
	text := fmt.Sprintf("sending %s at %d kb/s", codec, (bitrate+500)/1000)
	switch {
	case redundancy == 1:
		text += ", each packet repeating the frame before it against loss"
	case redundancy > 1:
		text += fmt.Sprintf(", each packet repeating the %d frames before it against loss", redundancy)
	}
	return text
}

// ntpText tells how far this computer's clock is from the NTP server's;
// nothing while asking or when no server is set.
func ntpText(n app.NTPStatus) string {
	switch {
	case n.Server == "":
		return ""
	case n.Err != "":
		return "no NTP server reachable — fine on a LAN"
	}
	return "clock within " + duration(abs(n.Offset)) + " of " + n.Server
}

// countInText says how the host's Play starts the song.
func countInText(countIn time.Duration) string {
	if countIn <= 0 {
		return "Play starts the song for both of you at once."
	}
	return "Play counts in for " + seconds(countIn) + ", then the song starts for both of you at once."
}

// duration formats d in milliseconds to a tenth, or in seconds from one
// second on.
func duration(d time.Duration) string {
	if d >= time.Second {
		return seconds(d)
	}
	return fmt.Sprintf("%.1f ms", ms(d))
}

// seconds formats d in seconds to a tenth, without a trailing ".0".
func seconds(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", d.Seconds()), ".0") + " s"
}

// clock formats d as m:ss (with a minus sign before the start).
func clock(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "−", -d
	}
	s := int(d / time.Second)
	return fmt.Sprintf("%s%d:%02d", sign, s/60, s%60)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func abs(d time.Duration) time.Duration { return max(d, -d) }

// small is a label in a smaller, wrapping style for explanations.
func small(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	l.SizeName = theme.SizeNameCaptionText
	return l
}

func heading(text string) *widget.Label {
	return widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}
