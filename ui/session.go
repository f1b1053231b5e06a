package ui

import (
	"context"
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/jitter"
)

// sessionScreen is the running duet's screen, laid out to be read at a
// glance mid-song and to fit 800 × 600 without scrolling: the room code
// and the partner's state on top; the meters, mute, volumes and the
// recording on the left; on the right the latency plot (or, behind the
// Details button, the technical details) and the backing track; the keys
// and Leave at the bottom. Its fields belong to the UI goroutine (and
// u.mu), except cmds and ctx, set once.
type sessionScreen struct {
	ui   *UI
	s    Session
	host bool
	cmds chan<- func()   // the session's command worker
	ctx  context.Context // ends with the session

	partner, total, news *widget.Label
	light                *canvas.Circle
	root, safetyRow      *fyne.Container
	safety               *widget.Label
	compared             string            // the safety code the singers compared
	linkRow              fyne.CanvasObject // copies a host's browser link

	levels        *levelsPanel
	plot          *latencyPlot
	legend        *plotLegend
	plotCard      fyne.CanvasObject
	card          *fyne.Container // the plot or the details
	details       *detailsPanel
	detailsButton *keyButton
	leave         *keyButton
	help          *widget.Label // the keys
	track         *trackPanel
	rec           *recordPanel // the host's; nil for a guest

	state      app.State
	lastText   string
	pending    []app.Event  // events before the screen is shown
	voice      jitter.Stats // the playout's counters at the plot's last sample
	nextSample time.Time
}

// event is the session's OnEvent: it runs on the session's goroutine.
func (sc *sessionScreen) event(e app.Event) {
	// The safety code has a line of its own: once is enough.
	e.Text = withoutSafetyCode(e.Text)
	at := sc.ui.now()
	sc.ui.do(func() {
		sc.lastText = e.Text
		if sc.news == nil {
			sc.pending = append(sc.pending, e)
			return
		}
		sc.apply(e, at)
	})
}

func (sc *sessionScreen) apply(e app.Event, at time.Time) {
	sc.news.SetText(newsText(e.Text))
	sc.details.log(e.Text, at)
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

// newsText is an event's text as the line under the partner's state
// shows it: without its first sentence if that only says how the partner
// is connected ("Connected to your partner directly (host candidate)."),
// which the state above says in plain words; the details keep it whole.
func newsText(text string) string {
	if !strings.HasPrefix(text, "Connected to your partner ") {
		return text
	}
	if i := strings.Index(text, ". "); i >= 0 {
		return text[i+2:]
	}
	return ""
}

// command runs f on the session's command worker; if the worker is still
// busy with earlier ones, the singer is told. UI goroutine only.
func (sc *sessionScreen) command(f func()) {
	select {
	case sc.cmds <- f:
	default:
		sc.news.SetText("Still busy with your last request; try again in a moment.")
	}
}

// report shows err (if any) as the news, from the command worker.
func (sc *sessionScreen) report(err error) {
	if err == nil {
		return
	}
	sc.ui.do(func() {
		if sc.ctx.Err() == nil {
			sc.news.SetText(sentence(err))
		}
	})
}

// show builds the screen for s and shows it.
func (sc *sessionScreen) show(s Session) {
	sc.s = s
	u := sc.ui
	settings := u.backend.Settings()
	sc.levels = newLevelsPanel(s, sc.key)
	sc.details = newDetailsPanel(u, sc.host, settings, sc.key)
	sc.details.showBrowserLink(sc.browserLink())
	sc.plot, sc.legend = newLatencyPlot(), newPlotLegend()
	sc.plotCard = container.NewBorder(small("Latency from your partner to you, last minute, by stage (ms)"), sc.legend.box, nil, nil, sc.plot)
	sc.track = newTrackPanel(sc)
	left := container.NewVBox(sc.levels.box)
	if sc.host {
		sc.rec = newRecordPanel(sc, recordDir(settings))
		left.Add(widget.NewSeparator())
		left.Add(sc.rec.box)
	}
	sc.details.box.Hide()
	sc.card = container.NewStack(sc.plotCard, sc.details.box)
	columns := container.NewGridWithColumns(2, left, container.NewBorder(nil, sc.track.box, nil, nil, sc.card))
	sc.root = container.NewBorder(sc.header(), sc.footer(), nil, nil, columns)
	u.setContent(container.NewPadded(sc.root))
	u.w.Canvas().SetOnTypedRune(sc.key)
	for _, e := range sc.pending {
		sc.apply(e, u.now())
	}
	sc.pending = nil
}

// header is the room code, the partner's state with the latency light
// and total, the latest news and, until compared, the safety code.
func (sc *sessionScreen) header() fyne.CanvasObject {
	code := canvas.NewText(sc.s.Code().String(), theme.Color(theme.ColorNameForeground))
	code.TextSize = 28
	code.TextStyle = fyne.TextStyle{Monospace: true}
	copyButton := newKeyButton("Copy", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(sc.s.Code().String())
	}, sc.key)
	sc.partner = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	sc.partner.SizeName = theme.SizeNameSubHeadingText
	sc.partner.Truncation = fyne.TextTruncateEllipsis
	sc.total = widget.NewLabelWithStyle("", fyne.TextAlignTrailing, fyne.TextStyle{Bold: true})
	sc.total.SizeName = theme.SizeNameSubHeadingText
	sc.light = canvas.NewCircle(idleColor())
	// The news gets two lines, then an ellipsis (the details keep it
	// whole): wrapped, a label's height would follow a long text.
	sc.news = small(sc.lastText)
	sc.news.Truncation = fyne.TextTruncateEllipsis
	twoLines := canvas.NewRectangle(color.Transparent)
	twoLines.SetMinSize(fyne.NewSize(0, 2*theme.CaptionTextSize()*1.4+2*theme.InnerPadding()))
	sc.safety = widget.NewLabel("")
	sc.safety.Truncation = fyne.TextTruncateEllipsis
	same := newKeyButton("Same on both screens", theme.ConfirmIcon(), sc.compare, sc.key)
	sc.safetyRow = container.NewBorder(nil, nil, nil, same, sc.safety)
	sc.safetyRow.Hide()
	light := container.NewCenter(container.NewGridWrap(fyne.NewSquareSize(18), sc.light))
	sc.linkRow = sc.browserLinkButton()
	return container.NewVBox(
		container.NewBorder(nil, nil,
			container.NewVBox(small("Room code: read it to your partner"), container.NewHBox(code, container.NewCenter(copyButton), container.NewCenter(sc.linkRow))),
			nil,
			container.NewVBox(container.NewBorder(nil, nil, light, sc.total, sc.partner), container.NewStack(twoLines, sc.news))),
		sc.safetyRow,
		widget.NewSeparator(),
	)
}

// browserLink is the link a partner without Duet opens in a browser to
// join this host's room, or why there is none; a guest has neither.
func (sc *sessionScreen) browserLink() (link string, hosting bool, err error) {
	linker, ok := sc.s.(BrowserLinker)
	if !ok {
		return "", false, nil
	}
	link, err = linker.BrowserLink()
	return link, true, err
}

// browserLinkButton copies the browser link, beside the room code's
// Copy; nothing without a link (the details show the link, or say why
// there is none).
func (sc *sessionScreen) browserLinkButton() fyne.CanvasObject {
	link, _, err := sc.browserLink()
	if link == "" || err != nil {
		return layout.NewSpacer()
	}
	return newKeyButton("Copy link", theme.ContentCopyIcon(), func() {
		fyne.CurrentApp().Clipboard().SetContent(link)
	}, sc.key)
}

// showSafety shows the safety code's row until the singers say they
// compared the code.
func (sc *sessionScreen) showSafety(st app.Stats) {
	if st.SafetyCode == "" || st.SafetyCode == sc.compared {
		return
	}
	sc.safety.SetText("Safety code " + st.SafetyCode + ": the same on " + possessive(st.PartnerName) + " screen means nobody listens in.")
	if !sc.safetyRow.Visible() {
		sc.safetyRow.Show()
		sc.relayout()
	}
}

// compare moves the safety code from its row into the details: the
// singers compared it.
func (sc *sessionScreen) compare() {
	sc.compared = sc.s.Stats().SafetyCode
	sc.safetyRow.Hide()
	sc.safety.SetText("")
	sc.relayout()
	sc.details.safety.SetText("Safety code " + sc.compared + ": compared, the same on both screens.")
}

// relayout lays the screen out again after a part was shown or hidden.
// (Fyne's window does it by itself on its next frame; its test driver
// does not.)
func (sc *sessionScreen) relayout() { sc.root.Refresh() }

// footer lists the keys and holds Details and Leave.
func (sc *sessionScreen) footer() fyne.CanvasObject {
	keys := "Keys: M mute · Tab moves between controls"
	if sc.host {
		keys = "Keys: Space play / pause · M mute · R record / stop · Tab moves between controls"
	}
	sc.help = small(keys)
	sc.help.Wrapping = fyne.TextWrapOff
	sc.help.Truncation = fyne.TextTruncateEllipsis
	sc.detailsButton = newKeyButton("Details", theme.InfoIcon(), sc.toggleDetails, sc.key)
	sc.leave = newKeyButton("Leave", theme.LogoutIcon(), sc.ui.Close, sc.key)
	sc.leave.Importance = widget.DangerImportance
	return container.NewVBox(widget.NewSeparator(),
		container.NewBorder(nil, nil, nil, container.NewHBox(sc.detailsButton, sc.leave), sc.help))
}

// toggleDetails shows the details instead of the latency plot, or back.
func (sc *sessionScreen) toggleDetails() {
	if sc.details.box.Visible() {
		sc.details.box.Hide()
		sc.plotCard.Show()
		sc.detailsButton.SetText("Details")
	} else {
		sc.plotCard.Hide()
		sc.details.box.Show()
		sc.detailsButton.SetText("Hide details")
	}
	sc.relayout()
}

// key handles the session's keys; the canvas sees typed keys when no
// widget has the focus, the session's controls pass them on, and a text
// field keeps them.
func (sc *sessionScreen) key(r rune) {
	if _, typing := sc.ui.w.Canvas().Focused().(*widget.Entry); typing {
		return
	}
	switch r {
	case 'm', 'M':
		sc.levels.mute.SetChecked(!sc.levels.mute.Checked)
	case ' ':
		if sc.host && !sc.track.play.Disabled() {
			sc.track.play.OnTapped()
		}
	case 'r', 'R':
		if sc.host {
			sc.rec.record.OnTapped()
		}
	}
}

// refresh updates the figures, meters and plot; it runs on the UI
// goroutine, about twenty times a second.
func (sc *sessionScreen) refresh(now time.Time) {
	if sc.s == nil || sc.ctx.Err() != nil {
		return
	}
	sc.levels.refresh(sc.s.Levels(), now)
	st := sc.s.Stats()
	sc.partner.SetText(partnerText(sc.state, st))
	sc.showSafety(st)
	var lat app.Latency
	live := st.Peer.PacketsReceived > 0 && sc.state == app.StateConnected
	if live {
		lat = sc.s.Latency()
	}
	sc.refreshLight(live, lat)
	sc.sample(now, live, lat, st)
	sc.details.refresh(sc.state, st, live, lat)
	t := sc.s.Track()
	sc.track.refresh(t)
	if sc.rec != nil {
		sc.rec.refresh(t)
	}
}

// refreshLight colours the light and the total by the latency; grey and
// empty without figures (before the first, and while reconnecting).
func (sc *sessionScreen) refreshLight(live bool, lat app.Latency) {
	c, text, importance := idleColor(), "", widget.MediumImportance
	if live {
		d := lat.Total()
		c, text = qualityColor(d), latencyTotal(d)
		importance = map[bool]widget.Importance{true: widget.SuccessImportance, false: widget.WarningImportance}[d <= goodLatency]
		if d > fairLatency {
			importance = widget.DangerImportance
		}
	}
	if sc.light.FillColor != c {
		sc.light.FillColor = c
		sc.light.Refresh()
	}
	if sc.total.Text != text || sc.total.Importance != importance {
		sc.total.Importance = importance
		sc.total.SetText(text)
	}
}

// sample adds a point to the plot every plotEvery.
func (sc *sessionScreen) sample(now time.Time, live bool, lat app.Latency, st app.Stats) {
	if now.Before(sc.nextSample) {
		return
	}
	sc.nextSample = now.Add(plotEvery)
	p := plotPoint{at: now}
	if live {
		p = newPlotPoint(now, lat, sc.voice, st.Voice.Stats)
		sc.voice = st.Voice.Stats
	}
	sc.plot.add(p)
	sc.legend.set(p)
}

// levelsPanel is the left column: the meters, mute and the volumes.
type levelsPanel struct {
	box                 fyne.CanvasObject
	mic, partner, track *levelMeter
	mute                *keyCheck
	partnerVol, monitor *keySlider
}

func newLevelsPanel(s Session, keys func(rune)) *levelsPanel {
	p := &levelsPanel{mic: newLevelMeter(), partner: newLevelMeter(), track: newLevelMeter()}
	gain := func(set func(float32)) *keySlider {
		sl := newKeySlider(0, 2, keys)
		sl.Step, sl.Value = 0.05, 1
		sl.OnChanged = func(v float64) { set(float32(v)) }
		return sl
	}
	p.mute = newKeyCheck("Mute me (M)", s.SetMuted, keys)
	p.partnerVol, p.monitor = gain(s.SetPartnerGain), gain(s.SetMonitor)
	p.box = container.NewVBox(
		heading("Levels"),
		widget.NewForm(
			widget.NewFormItem("You", p.mic),
			widget.NewFormItem("Partner", p.partner),
			widget.NewFormItem("Track", p.track),
			widget.NewFormItem("", newMeterScale()),
		),
		p.mute,
		widget.NewForm(
			widget.NewFormItem("Partner volume", p.partnerVol),
			widget.NewFormItem("Hear yourself", p.monitor),
		),
	)
	return p
}

func (p *levelsPanel) refresh(l app.Levels, now time.Time) {
	p.mic.Set(l.Mic, now)
	p.partner.Set(l.Partner, now)
	p.track.Set(l.Track, now)
}

// possessive is "Ben's", or "your partner's" before they said a name.
func possessive(name string) string {
	if name == "" {
		return "your partner's"
	}
	return name + "'s"
}
