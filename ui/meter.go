package ui

import (
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/audio/meter"
)

// A level meter's scale and ballistics, in dBFS and dB per second. The
// bar is linear in dB from meterFloor to 0 dBFS; its zones are green up
// to amberFrom (where a sung phrase's peaks belong), amber up to redFrom
// and red above, near full scale. The bar rises at once and falls at
// barFall; the peak mark holds the highest peak for holdTime, then falls
// at holdFall; the clip light stays lit for clipTime after a peak at or
// above clipAt. Below the floor, bar and mark show the level as it is, so
// silence reads −∞ at once instead of after a slow fall.
const (
	meterFloor = -60.0
	amberFrom  = -18.0
	redFrom    = -6.0
	clipAt     = -0.1
	barFall    = 24.0
	holdFall   = 20.0
	holdTime   = 1500 * time.Millisecond
	clipTime   = 3 * time.Second
)

// The meter's zones and the latency light's colours.
var (
	green = color.NRGBA{R: 0x2e, G: 0xa0, B: 0x43, A: 0xff}
	amber = color.NRGBA{R: 0xe0, G: 0xa0, B: 0x20, A: 0xff}
	red   = color.NRGBA{R: 0xd0, G: 0x30, B: 0x30, A: 0xff}
)

// dim is c faintly, for a zone the level does not reach and a clip light
// that is out.
func dim(c color.NRGBA) color.NRGBA {
	c.A = 0x38
	return c
}

// ballistics turns the peaks measured about twenty times a second into
// what the meter shows; now is passed in. The zero value has seen
// silence.
type ballistics struct {
	last      time.Time // the latest update
	bar       float64   // the bar's level
	held      float64   // the peak the mark holds
	heldAt    time.Time // when it was caught
	clipUntil time.Time // the clip light's end
}

func newBallistics() ballistics {
	return ballistics{bar: meter.Silent, held: meter.Silent}
}

// update takes the peak (dBFS) measured since the last update.
func (b *ballistics) update(peak float64, now time.Time) {
	peak = math.Max(peak, meter.Silent)
	dt := 0.0
	if !b.last.IsZero() {
		dt = now.Sub(b.last).Seconds()
	}
	b.last = now
	b.bar = math.Max(peak, b.bar-barFall*dt)
	if b.bar < meterFloor {
		b.bar = peak
	}
	if peak >= b.hold(now) {
		b.held, b.heldAt = peak, now
	}
	if peak >= clipAt {
		b.clipUntil = now.Add(clipTime)
	}
}

// hold is the peak mark's level at now: the held peak, falling once held
// for holdTime; below the floor it is silence.
func (b *ballistics) hold(now time.Time) float64 {
	v := b.held
	if over := now.Sub(b.heldAt) - holdTime; over > 0 {
		v -= holdFall * over.Seconds()
	}
	if v < meterFloor {
		return meter.Silent
	}
	return v
}

// clipping reports whether the clip light is lit at now.
func (b *ballistics) clipping(now time.Time) bool { return now.Before(b.clipUntil) }

// fraction is where dBFS v lies on the bar, 0…1.
func fraction(v float64) float32 {
	return float32(math.Max(0, math.Min(1, (v-meterFloor)/-meterFloor)))
}

// dbText is a level as the meter's readout shows it: −∞ for silence.
func dbText(v float64) string {
	if v <= meter.Silent {
		return "−∞"
	}
	s := fmt.Sprintf("%.1f", v)
	if s == "-0.0" {
		return "0.0"
	}
	return strings.Replace(s, "-", "−", 1)
}

// levelMeter is a horizontal peak meter: the bar over its green, amber
// and red zones, the peak mark, the held peak as a number and the clip
// light. Set it from the UI goroutine.
type levelMeter struct {
	widget.BaseWidget
	b   ballistics
	now time.Time // of the latest Set
}

func newLevelMeter() *levelMeter {
	m := &levelMeter{b: newBallistics()}
	m.ExtendBaseWidget(m)
	return m
}

// Set shows the peak (dBFS) measured since the last Set, at now.
func (m *levelMeter) Set(l meter.Level, now time.Time) {
	m.b.update(l.Peak, now)
	m.now = now
	m.Refresh()
}

// readout is the number the meter shows: the held peak.
func (m *levelMeter) readout() string { return dbText(m.b.hold(m.now)) }

func (m *levelMeter) CreateRenderer() fyne.WidgetRenderer {
	r := &meterRenderer{m: m, back: canvas.NewRectangle(color.Transparent)}
	r.objects = append(r.objects, r.back)
	for i, c := range []color.NRGBA{green, amber, red} {
		r.dim[i] = canvas.NewRectangle(dim(c))
		r.lit[i] = canvas.NewRectangle(c)
		r.objects = append(r.objects, r.dim[i], r.lit[i])
	}
	for range meterTicks {
		tick := canvas.NewRectangle(color.Transparent)
		r.ticks = append(r.ticks, tick)
		r.objects = append(r.objects, tick)
	}
	r.hold = canvas.NewRectangle(color.Transparent)
	r.readout = canvas.NewText("", color.Transparent)
	r.readout.TextStyle.Monospace = true
	r.readout.Alignment = fyne.TextAlignTrailing
	r.clip = canvas.NewCircle(dim(red))
	r.objects = append(r.objects, r.hold, r.readout, r.clip)
	r.Refresh()
	return r
}

// meterTicks are the scale's marks on the bar and under it, in dBFS.
var meterTicks = []float64{-48, -36, -24, -12, 0}

// meterGeometry lays a meter out in size: the bar's left edge and width,
// then the readout's and the clip light's left edges. The meter's scale
// uses it too, so marks and numbers line up.
func meterGeometry(size fyne.Size) (barX, barW, readoutX, lightX float32) {
	light := theme.Padding() * 3
	readout := fyne.MeasureText("−00.0", theme.TextSize(), fyne.TextStyle{Monospace: true}).Width
	lightX = size.Width - light
	readoutX = lightX - theme.Padding() - readout
	return 0, max(0, readoutX-theme.Padding()), readoutX, lightX
}

type meterRenderer struct {
	m        *levelMeter
	back     *canvas.Rectangle
	dim, lit [3]*canvas.Rectangle
	ticks    []*canvas.Rectangle
	hold     *canvas.Rectangle
	readout  *canvas.Text
	clip     *canvas.Circle
	objects  []fyne.CanvasObject
}

func (r *meterRenderer) MinSize() fyne.Size {
	_, _, readoutX, _ := meterGeometry(fyne.NewSize(0, 0))
	// readoutX is minus the width of the readout and the light.
	return fyne.NewSize(120-readoutX, theme.TextSize()+2*theme.Padding())
}

func (r *meterRenderer) Layout(size fyne.Size) {
	barX, barW, readoutX, lightX := meterGeometry(size)
	barH := theme.TextSize()
	y := (size.Height - barH) / 2
	r.back.Move(fyne.NewPos(barX, y))
	r.back.Resize(fyne.NewSize(barW, barH))
	edges := []float64{meterFloor, amberFrom, redFrom, 0}
	level := r.m.b.bar
	for i := range r.dim {
		x0, x1 := barX+barW*fraction(edges[i]), barX+barW*fraction(edges[i+1])
		r.dim[i].Move(fyne.NewPos(x0, y))
		r.dim[i].Resize(fyne.NewSize(x1-x0, barH))
		lit := max(0, min(x1, barX+barW*fraction(level))-x0)
		r.lit[i].Move(fyne.NewPos(x0, y))
		r.lit[i].Resize(fyne.NewSize(lit, barH))
	}
	for i, db := range meterTicks[:len(meterTicks)-1] {
		r.ticks[i].Move(fyne.NewPos(barX+barW*fraction(db), y))
		r.ticks[i].Resize(fyne.NewSize(1, barH))
	}
	hold := r.m.b.hold(r.m.now)
	r.hold.Move(fyne.NewPos(barX+barW*fraction(hold)-1, y-2))
	r.hold.Resize(fyne.NewSize(2, barH+4))
	r.hold.Hidden = hold < meterFloor
	r.readout.Move(fyne.NewPos(readoutX, 0))
	r.readout.Resize(fyne.NewSize(lightX-theme.Padding()-readoutX, size.Height))
	d := min(size.Width-lightX, barH)
	r.clip.Move(fyne.NewPos(lightX, (size.Height-d)/2))
	r.clip.Resize(fyne.NewSize(d, d))
}

func (r *meterRenderer) Refresh() {
	th := r.m.Theme()
	v := fyne.CurrentApp().Settings().ThemeVariant()
	r.back.FillColor = th.Color(theme.ColorNameInputBackground, v)
	for _, t := range r.ticks {
		t.FillColor = th.Color(theme.ColorNameBackground, v)
	}
	hold := r.m.b.hold(r.m.now)
	r.hold.FillColor = zoneColor(hold)
	r.readout.Text = r.m.readout()
	r.readout.Color = th.Color(theme.ColorNameForeground, v)
	r.readout.TextSize = theme.TextSize()
	r.clip.FillColor = dim(red)
	if r.m.b.clipping(r.m.now) {
		r.clip.FillColor = red
	}
	r.Layout(r.m.Size())
	canvas.Refresh(r.m)
}

func (r *meterRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *meterRenderer) Destroy()                     {}

// zoneColor is the colour of the zone level v lies in.
func zoneColor(v float64) color.NRGBA {
	switch {
	case v >= redFrom:
		return red
	case v >= amberFrom:
		return amber
	}
	return green
}

// meterScale is the dBFS scale under a column of meters as wide as it.
type meterScale struct {
	widget.BaseWidget
}

func newMeterScale() *meterScale {
	s := &meterScale{}
	s.ExtendBaseWidget(s)
	return s
}

func (s *meterScale) CreateRenderer() fyne.WidgetRenderer {
	r := &scaleRenderer{s: s}
	for _, db := range meterTicks {
		t := canvas.NewText(strings.Replace(fmt.Sprintf("%.0f", db), "-", "−", 1), color.Transparent)
		t.Alignment = fyne.TextAlignCenter
		r.labels = append(r.labels, t)
	}
	r.unit = canvas.NewText("dBFS", color.Transparent)
	r.Refresh()
	return r
}

type scaleRenderer struct {
	s      *meterScale
	labels []*canvas.Text
	unit   *canvas.Text
}

func (r *scaleRenderer) MinSize() fyne.Size {
	return fyne.NewSize(120, theme.CaptionTextSize()+theme.Padding())
}

func (r *scaleRenderer) Layout(size fyne.Size) {
	barX, barW, readoutX, _ := meterGeometry(size)
	for i, db := range meterTicks {
		w := fyne.MeasureText(r.labels[i].Text, theme.CaptionTextSize(), fyne.TextStyle{}).Width
		x := barX + barW*fraction(db) - w/2
		r.labels[i].Move(fyne.NewPos(min(x, barX+barW-w), 0))
		r.labels[i].Resize(fyne.NewSize(w, size.Height))
	}
	r.unit.Move(fyne.NewPos(readoutX, 0))
	r.unit.Resize(fyne.NewSize(size.Width-readoutX, size.Height))
}

func (r *scaleRenderer) Refresh() {
	c := r.s.Theme().Color(theme.ColorNameForeground, fyne.CurrentApp().Settings().ThemeVariant())
	for _, t := range append(r.labels, r.unit) {
		t.Color, t.TextSize = c, theme.CaptionTextSize()
	}
	r.Layout(r.s.Size())
	canvas.Refresh(r.s)
}

func (r *scaleRenderer) Objects() []fyne.CanvasObject {
	objs := []fyne.CanvasObject{r.unit}
	for _, t := range r.labels {
		objs = append(objs, t)
	}
	return objs
}
func (r *scaleRenderer) Destroy() {}
