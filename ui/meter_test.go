package ui

import (
	"math"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/tone"
)

// measured is what package meter makes of a sine of amplitude amp: the
// level a session's meter reports.
func measured(amp float64) meter.Level {
	m := meter.New()
	p := make([]float32, 2400) // 50 ms at 48 kHz: one refresh
	(&tone.Sine{Hz: 1000, Amp: float32(amp)}).Read(p)
	m.Write(p)
	return m.Level()
}

// litWidth is how far the meter's bar is lit, in its own units.
func litWidth(t *testing.T, m *levelMeter) float32 {
	r := test.WidgetRenderer(m).(*meterRenderer)
	var w float32
	for _, lit := range r.lit {
		w += lit.Size().Width
	}
	return w
}

func TestMeterSilence(t *testing.T) {
	test.NewTempApp(t)
	m := newLevelMeter()
	m.Resize(fyne.NewSize(300, 30))
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		m.Set(measured(0), t0.Add(time.Duration(i)*50*time.Millisecond))
	}
	if got := m.readout(); got != "−∞" {
		t.Errorf("silence reads %q, want −∞", got)
	}
	if w := litWidth(t, m); w != 0 {
		t.Errorf("silence lights %.1f of the bar", w)
	}
	if r := test.WidgetRenderer(m).(*meterRenderer); r.hold.Visible() {
		t.Error("silence shows a peak mark")
	}
}

// TestMeterTone: a −18 dBFS sine, measured as a session measures it,
// reads −18.0 and lights the bar to the amber zone's edge (42 of its 60
// dB), all in green.
func TestMeterTone(t *testing.T) {
	test.NewTempApp(t)
	m := newLevelMeter()
	m.Resize(fyne.NewSize(300, 30))
	m.Set(measured(math.Pow(10, -18.0/20)), time.Unix(1000, 0))
	if got := m.readout(); got != "−18.0" {
		t.Errorf("a −18 dBFS tone reads %q", got)
	}
	r := test.WidgetRenderer(m).(*meterRenderer)
	_, barW, _, _ := meterGeometry(m.Size())
	if w, want := litWidth(t, m), barW*42/60; math.Abs(float64(w-want)) > 1 {
		t.Errorf("lit %.1f of the bar's %.1f, want %.1f", w, barW, want)
	}
	if r.lit[1].Size().Width > 0.5 || r.lit[2].Size().Width > 0 {
		t.Errorf("amber lit %.1f, red %.1f: a −18 dBFS peak is green", r.lit[1].Size().Width, r.lit[2].Size().Width)
	}
	if r.clip.FillColor != dim(red) {
		t.Error("the clip light is on for −18 dBFS")
	}
}

// TestPeakHold: the mark holds a −6 dBFS peak for 1.5 s of quiet, then
// falls at 20 dB/s; below the floor it is gone and the readout says −∞.
// The bar falls at 24 dB/s meanwhile.
func TestPeakHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBallistics()
	b.update(-6, t0)
	quiet := -40.0
	for _, tc := range []struct {
		after    time.Duration
		hold     float64
		readout  string
		barAbove float64
	}{
		{500 * time.Millisecond, -6, "−6.0", -18.1},
		{1500 * time.Millisecond, -6, "−6.0", quiet},
		{2 * time.Second, -16, "−16.0", quiet},
		{2500 * time.Millisecond, -26, "−26.0", quiet},
		{3 * time.Second, -36, "−36.0", quiet},
	} {
		now := t0.Add(tc.after)
		b.update(quiet, now)
		if got := b.hold(now); math.Abs(got-tc.hold) > 1e-9 {
			t.Errorf("after %v the mark is at %.2f dBFS, want %.2f", tc.after, got, tc.hold)
		}
		if got := dbText(b.hold(now)); got != tc.readout {
			t.Errorf("after %v the readout is %q, want %q", tc.after, got, tc.readout)
		}
		if b.bar < tc.barAbove {
			t.Errorf("after %v the bar is at %.1f, below %.1f", tc.after, b.bar, tc.barAbove)
		}
	}
	// Quiet beats the falling mark from 3.2 s on: the mark follows it.
	b.update(quiet, t0.Add(4*time.Second))
	if got := b.hold(t0.Add(4 * time.Second)); got != quiet {
		t.Errorf("after 4 s the mark is at %.1f, want the level %.1f", got, quiet)
	}
	// Silence: the mark goes once below the floor.
	for i := range 100 {
		b.update(meter.Silent, t0.Add(4*time.Second+time.Duration(i)*50*time.Millisecond))
	}
	if got := dbText(b.hold(t0.Add(9 * time.Second))); got != "−∞" {
		t.Errorf("after 5 s of silence the readout is %q", got)
	}
}

func TestClipLight(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBallistics()
	b.update(-0.5, t0)
	if b.clipping(t0) {
		t.Fatal("−0.5 dBFS lit the clip light")
	}
	b.update(measured(1).Peak, t0.Add(time.Second))
	if !b.clipping(t0.Add(time.Second)) || !b.clipping(t0.Add(3900*time.Millisecond)) {
		t.Fatal("a full-scale peak did not keep the clip light on for 3 s")
	}
	if b.clipping(t0.Add(4100 * time.Millisecond)) {
		t.Fatal("the clip light stays on past 3 s")
	}
}

func TestDBText(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{meter.Silent, "−∞"}, {-120.5, "−∞"}, {-18.04, "−18.0"}, {-0.04, "0.0"}, {0, "0.0"}, {-59.96, "−60.0"}} {
		if got := dbText(tc.v); got != tc.want {
			t.Errorf("dbText(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

// TestMeterDrawn renders a meter with a −18 dBFS tone and checks the
// picture: green left of the amber edge, no green right of it.
func TestMeterDrawn(t *testing.T) {
	test.NewTempApp(t)
	m := newLevelMeter()
	w := test.NewTempWindow(t, m)
	w.Resize(fyne.NewSize(320, 40))
	m.Set(measured(math.Pow(10, -18.0/20)), time.Unix(1000, 0))
	img := w.Canvas().Capture()
	pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(m)
	barX, barW, _, _ := meterGeometry(m.Size())
	y := int(pos.Y + m.Size().Height/2)
	at := func(db float64) (r, g, b uint32) {
		x := int(pos.X + barX + barW*fraction(db))
		r, g, b, _ = img.At(x, y).RGBA()
		return r >> 8, g >> 8, b >> 8
	}
	if r, g, b := at(-30); !(g > 0x90 && r < 0x60 && b < 0x60) {
		t.Errorf("at −30 dBFS the bar is #%02x%02x%02x, want green", r, g, b)
	}
	if r, g, b := at(-12); g > 0x90 && r < 0x60 && b < 0x60 {
		t.Errorf("at −12 dBFS the bar is lit green (#%02x%02x%02x)", r, g, b)
	}
}
