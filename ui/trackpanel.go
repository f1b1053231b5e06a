package ui

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/track"
)

// trackPanel is the backing track's part: the host loads, plays and
// seeks it; the guest watches it arrive and play. UI goroutine only.
type trackPanel struct {
	sc        *sessionScreen
	box       *fyne.Container
	transport *fyne.Container // play, position and time
	name      *widget.Label
	pos       *widget.Label
	note      *widget.Label // how it goes with the partner, and the count-in
	transfer  *widget.ProgressBar
	play      *keyButton // host
	position  *keySlider
	moving    bool // refresh moves the slider: not the singer
	dragging  bool // the singer holds the slider
}

func newTrackPanel(sc *sessionScreen) *trackPanel {
	p := &trackPanel{sc: sc, name: widget.NewLabel("No backing track."), pos: widget.NewLabel(""), note: small("")}
	p.name.Truncation = fyne.TextTruncateEllipsis
	p.transfer = widget.NewProgressBar()
	p.transfer.Hide()
	p.position = newKeySlider(0, 1, sc.key)
	p.position.Step = 0.1
	p.position.OnChanged = func(float64) {
		if !p.moving {
			p.dragging = true
		}
	}
	p.position.OnChangeEnded = func(v float64) {
		if p.moving {
			return
		}
		p.dragging = false
		to := time.Duration(v * float64(time.Second))
		sc.command(func() { sc.report(sc.s.Seek(to)) })
	}
	p.position.Disable()
	if !sc.host {
		p.transport = container.NewBorder(nil, nil, nil, p.pos, p.position)
		p.box = container.NewVBox(container.NewBorder(nil, nil, heading("Backing track"), nil, p.name), p.transfer, p.transport, p.note)
		return p
	}
	load := newKeyButton("Load track…", theme.FolderOpenIcon(), p.choose, sc.key)
	p.play = newKeyButton("Play (space)", theme.MediaPlayIcon(), func() {
		if sc.s.Track().Playing {
			sc.command(func() { sc.report(sc.s.Pause()) })
		} else {
			sc.command(func() { sc.report(sc.s.Play()) })
		}
	}, sc.key)
	p.play.Disable()
	p.note.SetText(countInText(0))
	p.transport = container.NewBorder(nil, nil, p.play, p.pos, p.position)
	p.box = container.NewVBox(
		container.NewBorder(nil, nil, heading("Backing track"), load, p.name),
		p.transfer,
		p.transport,
		p.note,
	)
	return p
}

// choose asks for a song file with Fyne's file dialog.
func (p *trackPanel) choose() {
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			p.sc.news.SetText(sentence(err))
			return
		}
		if r == nil {
			return // cancelled
		}
		path := r.URI().Path()
		r.Close()
		p.load(path)
	}, p.sc.ui.w)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".wav", ".mp3", ".flac", ".opus", ".ogg"}))
	d.Show()
}

// load decodes the file at path on the command worker and makes it the
// session's backing track. UI goroutine.
func (p *trackPanel) load(path string) {
	sc := p.sc
	name := filepath.Base(path)
	p.name.SetText("Loading " + name + "…")
	sc.command(func() {
		t, err := track.Load(path)
		if err == nil {
			err = sc.s.SetTrack(t)
		}
		if err != nil {
			sc.ui.do(func() {
				if sc.ctx.Err() == nil {
					p.name.SetText(fmt.Sprintf("Could not load %s: %s", name, sentence(err)))
				}
			})
		}
	})
}

func (p *trackPanel) refresh(t app.TrackStatus) {
	switch {
	case t.Error != "":
		p.name.SetText(sentence(fmt.Errorf("%s", t.Error)))
	case t.Name != "":
		p.name.SetText(fmt.Sprintf("%s (%s)", t.Name, clock(t.Length)))
	case t.Size > 0 && !p.sc.host:
		p.name.SetText("A backing track is on its way.")
	}
	if t.Size > 0 {
		p.transfer.SetValue(float64(t.Transferred) / float64(t.Size))
		if done := t.Transferred >= t.Size; done == p.transfer.Visible() {
			p.transfer.Hidden = done
			p.sc.relayout()
		}
	}
	p.note.SetText(p.noteText(t))
	pos := p.pos.Text
	if t.Playing && t.Position < 0 {
		pos = "count-in " + clock(t.Position)
	} else if t.Length > 0 {
		pos = clock(t.Position) + " / " + clock(t.Length)
	}
	if len(pos) != len(p.pos.Text) {
		p.pos.SetText(pos)
		p.transport.Refresh() // its width changed
	} else {
		p.pos.SetText(pos)
	}
	if t.Length > 0 {
		p.position.Max = t.Length.Seconds()
		if !p.dragging {
			p.moving = true
			p.position.SetValue(max(0, t.Position.Seconds()))
			p.moving = false
		}
	}
	if !p.sc.host {
		return
	}
	if t.Ready {
		p.play.Enable()
		p.position.Enable()
	}
	if t.Playing {
		setButton(p.play, "Pause (space)", theme.MediaPauseIcon(), p.transport)
	} else {
		setButton(p.play, "Play (space)", theme.MediaPlayIcon(), p.transport)
	}
}

// noteText says how the track goes with the partner and how Play starts
// it.
func (p *trackPanel) noteText(t app.TrackStatus) string {
	host := p.sc.host
	var parts []string
	switch {
	case t.Streamed:
		parts = append(parts, "The track goes to your partner in the mix.")
	case host && t.Name != "" && t.PartnerReady:
		parts = append(parts, "Your partner has it.")
	case host && t.Name != "" && t.Size > 0 && t.Transferred > 0:
		parts = append(parts, "Sending it to your partner…")
	case host && t.Name != "":
		parts = append(parts, "Your partner gets it once connected.")
	case !host && t.Playing:
		parts = append(parts, fmt.Sprintf("In step with the host's track within %.1f ms.", ms(abs(t.Skew))))
	case !host && t.Ready && t.CountIn > 0:
		parts = append(parts, "The host starts it, after a "+seconds(t.CountIn)+" count-in.")
	case !host && t.Ready:
		parts = append(parts, "The host starts it.")
	}
	if host {
		parts = append(parts, countInText(t.CountIn))
	}
	return strings.Join(parts, " ")
}

// recordPanel is the host's recording: Record and Stop, the time, and
// after a take its waveform, length and files, and Show files. UI
// goroutine only.
type recordPanel struct {
	sc        *sessionScreen
	box       *fyne.Container
	row       *fyne.Container // the button, the time and Show files
	record    *keyButton
	showFiles *keyButton
	info      *widget.Label
	take      *widget.Label
	wave      *waveform
	recording bool   // at the last refresh
	summarize string // a finished take to read, once the worker is free
}

func newRecordPanel(sc *sessionScreen, dir string) *recordPanel {
	p := &recordPanel{sc: sc, info: widget.NewLabel("Takes go to " + dir), take: small(""), wave: newWaveform()}
	p.info.Truncation = fyne.TextTruncateEllipsis
	p.record = newKeyButton("Record (R)", theme.MediaRecordIcon(), func() {
		if sc.s.Track().Recording {
			sc.command(func() { sc.report(sc.s.StopRecording()) })
			return
		}
		sc.command(func() {
			_, err := sc.s.Record(dir)
			sc.report(err)
		})
	}, sc.key)
	p.showFiles = newKeyButton("Show files", theme.FolderIcon(), p.open, sc.key)
	p.showFiles.Disable()
	p.wave.Hide()
	p.row = container.NewBorder(nil, nil, p.record, p.showFiles, p.info)
	p.box = container.NewVBox(heading("Recording"), p.row, p.wave, p.take)
	return p
}

// open shows the latest take's folder in the file manager.
func (p *recordPanel) open() {
	take := p.sc.s.Track().Take
	if take == "" {
		return
	}
	if err := p.sc.ui.openURL(&url.URL{Scheme: "file", Path: take}); err != nil {
		p.sc.news.SetText("Could not open the folder " + take + ": " + sentence(err))
	}
}

func (p *recordPanel) refresh(t app.TrackStatus) {
	if t.Recording {
		setButton(p.record, "Stop (R)", theme.MediaStopIcon(), p.row)
		p.info.SetText("Recording " + clock(t.Recorded))
	} else {
		setButton(p.record, "Record (R)", theme.MediaRecordIcon(), p.row)
		if t.Take != "" {
			p.info.SetText("Last take: " + filepath.Base(t.Take))
		}
	}
	if t.Take != "" {
		p.showFiles.Enable()
	}
	if p.recording && !t.Recording && t.Take != "" {
		p.summarize = t.Take
	}
	p.recording = t.Recording
	if p.summarize != "" {
		p.startSummary()
	}
}

// startSummary reads the finished take on the command worker, after the
// Stop that finished it; if the worker is busy, the next refresh tries
// again.
func (p *recordPanel) startSummary() {
	sc, dir := p.sc, p.summarize
	job := func() {
		sum, err := summarize(dir)
		sc.ui.do(func() {
			if sc.ctx.Err() != nil {
				return
			}
			if err != nil {
				p.take.SetText("The take is in " + dir + ", but " + strings.TrimSuffix(err.Error(), ".") + ".")
				return
			}
			p.take.SetText(sum.text())
			p.wave.set(sum.peaks)
			p.wave.Show()
			sc.relayout()
		})
	}
	select {
	case sc.cmds <- job:
		p.summarize = ""
	default:
	}
}

// setButton changes b's text and icon; if the text changed, row (which
// holds b) lays out again for its new width.
func setButton(b *keyButton, text string, icon fyne.Resource, row *fyne.Container) {
	if b.Text == text {
		return
	}
	b.Text, b.Icon = text, icon
	b.Refresh() // its min size follows the text once refreshed
	row.Refresh()
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
