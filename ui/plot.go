package ui

import (
	"fmt"
	"image"
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/jitter"
)

// The latency plot shows the last plotSpan, a sample every plotEvery.
// Its loss strip reads 0 to lossScale of the partner's packets lost (or
// of the played sound concealed) in each sample's half second.
const (
	plotSpan  = 60 * time.Second
	plotEvery = 500 * time.Millisecond
	lossScale = 0.10
	// staleAfter is how long a sample stands for the moments after it
	// when the next is late.
	staleAfter = 5 * time.Second
)

// The stages of one-way latency as the plot stacks them, bottom up, with
// their colours; loss and concealment in the strip under it.
var (
	stageNames  = [4]string{"devices", "codec", "network", "jitter buffer"}
	stageColors = [4]color.NRGBA{
		{R: 0x8a, G: 0x8f, B: 0x98, A: 0xff},
		{R: 0x2b, G: 0xb3, B: 0xa6, A: 0xff},
		{R: 0x3d, G: 0x7e, B: 0xe0, A: 0xff},
		{R: 0x9a, G: 0x5c, B: 0xe6, A: 0xff},
	}
	lossColor    = red
	concealColor = color.NRGBA{R: 0xf0, G: 0x8c, B: 0x24, A: 0xff}
)

// plotPoint is one sample of the connection.
type plotPoint struct {
	at      time.Time
	stages  [4]time.Duration // as stageNames
	loss    float64          // share of the partner's packets lost since the last sample
	conceal float64          // share of the played sound concealed since the last sample
	ok      bool             // connected, with figures; a point without leaves a gap
}

// newPlotPoint is a connected sample at now; prev and cur are the
// playout's counters at the last sample and now (a new connection starts
// them again from zero).
func newPlotPoint(now time.Time, l app.Latency, prev, cur jitter.Stats) plotPoint {
	share := func(part, whole int64) float64 {
		if part <= 0 || whole <= 0 {
			return 0
		}
		return min(1, float64(part)/float64(whole))
	}
	if cur.PacketsReceived < prev.PacketsReceived || cur.PlayedSamples < prev.PlayedSamples {
		prev = jitter.Stats{}
	}
	lost := cur.PacketsLost - prev.PacketsLost
	return plotPoint{
		at:      now,
		stages:  [4]time.Duration{l.Device, l.Codec, l.Network, l.Jitter},
		loss:    share(lost, lost+cur.PacketsReceived-prev.PacketsReceived),
		conceal: share(cur.ConcealedSamples-prev.ConcealedSamples, cur.PlayedSamples-prev.PlayedSamples),
		ok:      true,
	}
}

func (p plotPoint) total() time.Duration {
	var t time.Duration
	for _, s := range p.stages {
		t += s
	}
	return t
}

// history holds the samples of the last plotSpan, oldest first.
type history struct {
	points []plotPoint
}

// add appends p (no older than the last) and forgets what is older than
// plotSpan before it.
func (h *history) add(p plotPoint) {
	h.points = append(h.points, p)
	cut := p.at.Add(-plotSpan)
	i := 0
	for i < len(h.points) && h.points[i].at.Before(cut) {
		i++
	}
	h.points = append(h.points[:0], h.points[i:]...)
}

// top is the plot's full height: room for the highest total, at least
// past the amber threshold, in steps of 25 ms.
func (h *history) top() time.Duration {
	top := fairLatency + 10*time.Millisecond
	for _, p := range h.points {
		top = max(top, p.total())
	}
	const step = 25 * time.Millisecond
	return (top + step - 1) / step * step
}

// draw paints the samples up to now into img: stacked stages over the top
// three quarters, loss and concealment in the strip under them, the good
// and fair thresholds as dotted lines. Each column shows the latest
// sample at or before its moment, unless that is older than staleAfter
// (the UI stalled) or says the connection was down: then it is empty.
func (h *history) draw(img *image.NRGBA, now time.Time, back color.Color) {
	b := img.Bounds()
	w, ht := b.Dx(), b.Dy()
	strip := max(ht/5, 1)
	plotH := ht - strip - 2
	fill := func(x, y0, y1 int, c color.Color) {
		for y := max(y0, 0); y < min(y1, ht); y++ {
			img.Set(b.Min.X+x, b.Min.Y+y, c)
		}
	}
	top := h.top()
	level := func(d time.Duration) int { return plotH - int(float64(plotH)*float64(d)/float64(top)) }
	j := 0
	for x := range w {
		fill(x, 0, plotH, back)
		fill(x, plotH+2, ht, back)
		at := now.Add(-plotSpan + time.Duration(float64(plotSpan)*float64(x+1)/float64(w)))
		for j+1 < len(h.points) && !h.points[j+1].at.After(at) {
			j++
		}
		if x%4 < 2 {
			img.Set(b.Min.X+x, b.Min.Y+level(goodLatency), green)
			img.Set(b.Min.X+x, b.Min.Y+level(fairLatency), amber)
		}
		if j >= len(h.points) || h.points[j].at.After(at) || at.Sub(h.points[j].at) > staleAfter || !h.points[j].ok {
			continue
		}
		p := h.points[j]
		var sum time.Duration
		for i, d := range p.stages {
			fill(x, level(sum+d), level(sum), stageColors[i])
			sum += d
		}
		bar := func(share float64) int { return ht - int(float64(strip)*min(1, share/lossScale)+0.5) }
		fill(x, bar(p.conceal), ht, concealColor)
		fill(x, bar(p.loss), ht, lossColor)
	}
}

// latencyPlot shows the history with its scale. UI goroutine only.
type latencyPlot struct {
	widget.BaseWidget
	h   history
	now time.Time // the latest sample's
}

func newLatencyPlot() *latencyPlot {
	p := &latencyPlot{}
	p.ExtendBaseWidget(p)
	return p
}

// add takes a sample.
func (p *latencyPlot) add(pt plotPoint) {
	p.h.add(pt)
	p.now = pt.at
	p.Refresh()
}

func (p *latencyPlot) CreateRenderer() fyne.WidgetRenderer {
	r := &plotRenderer{p: p}
	r.raster = canvas.NewRaster(func(w, h int) image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		th := p.Theme()
		p.h.draw(img, p.now, th.Color(theme.ColorNameInputBackground, fyne.CurrentApp().Settings().ThemeVariant()))
		return img
	})
	for _, s := range []string{"", "25", "40", "−60 s", "now", "lost"} {
		r.texts = append(r.texts, canvas.NewText(s, color.Transparent))
	}
	r.Refresh()
	return r
}

type plotRenderer struct {
	p      *latencyPlot
	raster *canvas.Raster
	texts  []*canvas.Text // top, good, fair, start, now, strip
}

func (r *plotRenderer) MinSize() fyne.Size {
	return fyne.NewSize(200, 5*theme.CaptionTextSize())
}

func (r *plotRenderer) Layout(size fyne.Size) {
	text := theme.CaptionTextSize() + 2
	area := fyne.NewSize(size.Width, size.Height-text)
	r.raster.Resize(area)
	strip := max(area.Height/5, 1)
	plotH := area.Height - strip - 2
	top := r.p.h.top()
	y := func(d time.Duration) float32 { return plotH - plotH*float32(d)/float32(top) }
	place := func(t *canvas.Text, x, y float32, align fyne.TextAlign) {
		w := fyne.MeasureText(t.Text, t.TextSize, t.TextStyle).Width
		switch align {
		case fyne.TextAlignTrailing:
			x -= w
		}
		t.Move(fyne.NewPos(x, y))
		t.Resize(fyne.NewSize(w, text))
	}
	pad := theme.Padding()
	place(r.texts[0], pad, 0, fyne.TextAlignLeading)
	place(r.texts[1], size.Width-pad, y(goodLatency)-text, fyne.TextAlignTrailing)
	place(r.texts[2], size.Width-pad, y(fairLatency)-text, fyne.TextAlignTrailing)
	place(r.texts[3], 0, area.Height, fyne.TextAlignLeading)
	place(r.texts[4], size.Width, area.Height, fyne.TextAlignTrailing)
	place(r.texts[5], pad, plotH+2, fyne.TextAlignLeading)
}

func (r *plotRenderer) Refresh() {
	th, v := r.p.Theme(), fyne.CurrentApp().Settings().ThemeVariant()
	r.texts[0].Text = fmt.Sprintf("%.0f ms", ms(r.p.h.top()))
	r.texts[5].Text = fmt.Sprintf("lost, concealed (0–%.0f %%)", lossScale*100)
	for i, t := range r.texts {
		t.TextSize = theme.CaptionTextSize()
		t.Color = th.Color(theme.ColorNameForeground, v)
		switch i {
		case 1:
			t.Color = green
		case 2:
			t.Color = amber
		}
	}
	r.Layout(r.p.Size())
	r.raster.Refresh()
}

func (r *plotRenderer) Objects() []fyne.CanvasObject {
	objs := []fyne.CanvasObject{r.raster}
	for _, t := range r.texts {
		objs = append(objs, t)
	}
	return objs
}

func (r *plotRenderer) Destroy() {}

// plotLegend names the plot's colours with the latest figures.
type plotLegend struct {
	box    *fyne.Container
	labels [6]*widget.Label // the stages, then loss and concealment
}

func newPlotLegend() *plotLegend {
	l := &plotLegend{box: container.NewGridWithColumns(3)}
	colors := append(stageColors[:], lossColor, concealColor)
	for i, c := range colors {
		swatch := canvas.NewRectangle(c)
		swatch.SetMinSize(fyne.NewSquareSize(theme.CaptionTextSize()))
		l.labels[i] = small("")
		l.labels[i].Wrapping = fyne.TextWrapOff
		l.box.Add(container.NewHBox(container.NewCenter(swatch), l.labels[i]))
	}
	l.set(plotPoint{})
	return l
}

// set shows p's figures; without figures, only the names.
func (l *plotLegend) set(p plotPoint) {
	for i, name := range stageNames {
		if p.ok {
			name += fmt.Sprintf(" %.0f", ms(p.stages[i]))
		}
		l.labels[i].SetText(name)
	}
	lost, concealed := "lost", "concealed"
	if p.ok {
		lost += fmt.Sprintf(" %.1f %%", 100*p.loss)
		concealed += fmt.Sprintf(" %.1f %%", 100*p.conceal)
	}
	l.labels[4].SetText(lost)
	l.labels[5].SetText(concealed)
}
