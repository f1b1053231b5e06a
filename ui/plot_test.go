package ui

import (
	"image"
	"image/color"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/jitter"
)

// TestPlotKeepsAMinute: after 90 s of samples, the history holds the
// last 60 s of them, oldest first.
func TestPlotKeepsAMinute(t *testing.T) {
	var h history
	t0 := time.Unix(1000, 0)
	for i := range 181 { // 0 … 90 s
		h.add(plotPoint{at: t0.Add(time.Duration(i) * plotEvery), ok: true})
	}
	last := t0.Add(90 * time.Second)
	if n := len(h.points); n != 121 {
		t.Errorf("%d points kept, want 121 (60 s at 2 a second, both ends)", n)
	}
	if first := h.points[0].at; first != last.Add(-plotSpan) {
		t.Errorf("the oldest is %v before the latest, want %v", last.Sub(first), plotSpan)
	}
	if h.points[len(h.points)-1].at != last {
		t.Error("the latest sample is missing")
	}
}

// TestPlotPoint: the loss and concealment shares come from the playout's
// counters between two samples; a new connection's counters start again.
func TestPlotPoint(t *testing.T) {
	l := app.Latency{Device: 4 * time.Millisecond, Codec: 3 * time.Millisecond, Network: 8 * time.Millisecond, Jitter: 5 * time.Millisecond}
	prev := jitter.Stats{PacketsReceived: 1000, PacketsLost: 10, ConcealedSamples: 480, PlayedSamples: 480000}
	cur := jitter.Stats{PacketsReceived: 1190, PacketsLost: 20, ConcealedSamples: 960, PlayedSamples: 504000}
	p := newPlotPoint(time.Unix(1000, 0), l, prev, cur)
	if p.total() != 20*time.Millisecond || p.stages != [4]time.Duration{l.Device, l.Codec, l.Network, l.Jitter} {
		t.Errorf("stages %v", p.stages)
	}
	if p.loss != 0.05 || p.conceal != 0.02 {
		t.Errorf("loss %.4f and concealment %.4f, want 0.05 (10 of 200) and 0.02 (480 of 24000)", p.loss, p.conceal)
	}
	again := newPlotPoint(time.Unix(1001, 0), l, cur, jitter.Stats{PacketsReceived: 100, PlayedSamples: 24000})
	if again.loss != 0 || again.conceal != 0 {
		t.Errorf("after a reconnect: loss %.2f, concealment %.2f", again.loss, again.conceal)
	}
}

// TestPlotDrawn draws a minute with a steady 20 ms on a 50 ms scale for
// the first half, a gap, then 45 ms with 5 % loss: the columns are the
// right height in the stages' colours, the gap is empty, the loss fills
// half the strip.
func TestPlotDrawn(t *testing.T) {
	var h history
	t0 := time.Unix(1000, 0)
	steady := [4]time.Duration{4 * time.Millisecond, 3 * time.Millisecond, 8 * time.Millisecond, 5 * time.Millisecond}
	worse := [4]time.Duration{4 * time.Millisecond, 3 * time.Millisecond, 28 * time.Millisecond, 10 * time.Millisecond}
	for i := range 121 {
		at := t0.Add(time.Duration(i) * plotEvery)
		switch {
		case i < 60:
			h.add(plotPoint{at: at, stages: steady, ok: true})
		case i < 70:
			h.add(plotPoint{at: at})
		default:
			h.add(plotPoint{at: at, stages: worse, loss: 0.05, ok: true})
		}
	}
	if top := h.top(); top != 50*time.Millisecond {
		t.Fatalf("scale to %v, want 50 ms", top)
	}
	back := color.NRGBA{A: 0xff}
	img := image.NewNRGBA(image.Rect(0, 0, 120, 100)) // a column a sample
	h.draw(img, t0.Add(60*time.Second), back)
	const plotH, strip = 78, 20 // 100 - 20 - 2
	column := func(x int) (stack, loss int, top color.Color) {
		for y := range plotH {
			if c := img.NRGBAAt(x, y); c != back && c != green && c != amber {
				stack++
				if top == nil {
					top = c
				}
			}
		}
		for y := plotH + 2; y < 100; y++ {
			if img.NRGBAAt(x, y) == lossColor {
				loss++
			}
		}
		return stack, loss, top
	}
	for _, tc := range []struct {
		x           int
		stack, loss int
		top         color.Color
	}{
		{10, 78 - 47, 0, stageColors[3]},  // 20 of 50 ms: the rows from 78-31 down
		{65, 0, 0, nil},                   // the gap
		{110, 78 - 8, 10, stageColors[3]}, // 45 of 50 ms; 5 % of 10 %
	} {
		stack, loss, top := column(tc.x)
		if stack != tc.stack || loss != tc.loss || top != tc.top {
			t.Errorf("column %d: %d rows of stages topped by %v and %d of loss; want %d, %v and %d", tc.x, stack, top, loss, tc.stack, tc.top, tc.loss)
		}
	}
}
