package main

import (
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

// synthRecording delays ref by delay(i) samples (piecewise constant, so
// the played signal comes through sample for sample between the steps),
// scaled by gain.
func synthRecording(ref []float32, gain float32, delay func(i int) int) []float32 {
	rec := make([]float32, len(ref))
	for i := range rec {
		if j := i - delay(i); j >= 0 {
			rec[i] = gain * ref[j]
		}
	}
	return rec
}

// TestAnalyseJack runs the analysis on a recording made up with a known
// delay: 10 ms for the first second (a playout starting high), then 5 ms,
// with a 2 s excursion to 7.5 ms at 10 s, three 5 ms stretches of other
// noise (concealment), and one cycle the probe missed (NaN), which is no
// dropout.
func TestAnalyseJack(t *testing.T) {
	const rate = 48000
	n := 20 * rate
	ref := jackNoise(n, 1)
	delay := func(i int) int {
		switch {
		case i < rate:
			return 480
		case i >= 10*rate && i < 12*rate:
			return 360
		}
		return 240
	}
	rec := synthRecording(ref, 0.7, delay)
	other := jackNoise(n, 99)
	drops := []int{5 * rate, 7*rate + rate/2, 15 * rate}
	for _, at := range drops {
		copy(rec[at:at+240], other[at:at+240])
	}
	for i := 8 * rate; i < 8*rate+128; i++ {
		rec[i] = float32(math.NaN())
	}

	a, err := analyseJack(ref, rec, rate)
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.3f ± %.3f", name, got, want, tol)
		}
	}
	near("median delay ms", a.median, 5, 0.01)
	near("p10 ms", a.p10, 5, 0.01)
	near("p90 ms", a.p90, 7.5, 0.01)
	near("settle s", a.settle, 1, 0.06)
	if a.excursions != 1 {
		t.Errorf("%d excursions, want 1 (10–12 s)", a.excursions)
	}
	near("share outside after settling", a.outside, 2.0/19, 0.01)
	if a.missed != 128 {
		t.Errorf("missed %d samples, want 128", a.missed)
	}
	if len(a.dropouts) != len(drops) {
		t.Fatalf("dropouts %+v, want %d at %v", a.dropouts, len(drops), drops)
	}
	for i, d := range a.dropouts {
		// Judged in 2.5 ms stretches: the stretch that holds the start.
		if d.at > drops[i] || d.at+anaSub <= drops[i] || d.length < 240 || d.length > 360 {
			t.Errorf("dropout %d at %d for %d samples, want %d for 240", i, d.at, d.length, drops[i])
		}
	}
	near("dropouts per minute", a.perMinute(len(a.dropouts)), 9, 0.2)
}

// TestAnalyseJackFractional: a delay between samples is found to a
// fraction of one (the playout resamples, so delays are not whole).
func TestAnalyseJackFractional(t *testing.T) {
	const rate = 48000
	ref := jackNoise(3*rate, 2)
	// Half a sample more than 300: the mean of two neighbours.
	rec := make([]float32, len(ref))
	for i := 301; i < len(rec); i++ {
		rec[i] = (ref[i-300] + ref[i-301]) / 2
	}
	a, err := analyseJack(ref, rec, rate)
	if err != nil {
		t.Fatal(err)
	}
	if want := 300.5 * 1000 / rate; math.Abs(a.median-want) > 0.003 {
		t.Errorf("median %.4f ms, want %.4f", a.median, want)
	}
	if len(a.dropouts) != 0 {
		t.Errorf("dropouts %+v in a clean recording", a.dropouts)
	}
}

// TestAnalyseJackNothing: a recording of something else is no delay.
func TestAnalyseJackNothing(t *testing.T) {
	const rate = 48000
	ref := jackNoise(2*rate, 3)
	if _, err := analyseJack(ref, jackNoise(2*rate, 4), rate); !errors.Is(err, errJackNothingHeard) {
		t.Errorf("unrelated noise: %v, want errJackNothingHeard", err)
	}
	if _, err := analyseJack(ref, make([]float32, 2*rate), rate); !errors.Is(err, errJackNothingHeard) {
		t.Errorf("silence: %v, want errJackNothingHeard", err)
	}
}

// TestAnalyseJackNeverSettles: a delay 2 ms higher for one second in every
// four never holds still for 5 s, and each such second is an excursion.
func TestAnalyseJackNeverSettles(t *testing.T) {
	const rate = 48000
	ref := jackNoise(20*rate, 5)
	rec := synthRecording(ref, 1, func(i int) int { return 240 + 96*(i/rate%4/3) })
	a, err := analyseJack(ref, rec, rate)
	if err != nil {
		t.Fatal(err)
	}
	if a.settle != -1 {
		t.Errorf("settled at %.2f s, want never", a.settle)
	}
	if a.excursions != 5 {
		t.Errorf("%d excursions, want 5", a.excursions)
	}
}

// TestJackReportAlone: the machine's own xruns, counted with the probe
// alone before each period's runs, are in the table and the summary
// (the worse period's), and left out when they were not measured.
func TestJackReportAlone(t *testing.T) {
	a := jackAnalysis{rate: 48000, heardSeconds: 60, median: 5, settle: 1}
	runs := []jackRun{
		{system: "Duet", period: 64, h2g: a, g2h: a, floorXruns: 172, load: [2]float64{0.1, 0.2}},
		{system: "Duet", period: 128, h2g: a, g2h: a, floorXruns: 276, xruns: 300, load: [2]float64{0.1, 0.2}},
	}
	var out strings.Builder
	kv := jackReport(&out, runs, 60)
	if !slices.Contains(kv, "alone_xruns_per_min=276.0") || !slices.Contains(kv, "xruns_per_min=300.0") {
		t.Errorf("summary %v: want alone_xruns_per_min=276.0 beside xruns_per_min=300.0", kv)
	}
	if !strings.Contains(out.String(), "172.0") {
		t.Errorf("the table does not show period 64's 172 xruns a minute alone:\n%s", out.String())
	}
	for i := range runs {
		runs[i].floorXruns = math.NaN()
	}
	for _, s := range jackReport(io.Discard, runs, 60) {
		if strings.HasPrefix(s, "alone_") {
			t.Errorf("summary has %s though nothing was measured alone", s)
		}
	}
}

// TestDuetOwnFigures reads a singer's status lines and closing line as
// cmd/duet prints them: the last latency, the concealments summed over
// the status lines, and from the closing line the concealed ms and the
// stalls of its own audio (none said: none).
func TestDuetOwnFigures(t *testing.T) {
	c := &jackChild{lines: []string{
		"duet: partner 8.5 ms away (codec 2.7 + network 0.2 + buffer 5.6 + device 0.0); lost 0, late 9, concealed 9× (24 ms); this computer's audio ran late 2×; sending L16 at 768 kb/s",
		"duet: partner 8.4 ms away (codec 2.7 + network 0.2 + buffer 5.5 + device 0.0); lost 0, late 1, concealed 1× (2 ms); sending L16 at 768 kb/s",
		"duet: sent 23500 packets, received 23505 (0 lost, 54 late); 197 ms of your partner concealed; this computer's audio ran late 5×",
	}}
	latency, events, concealed, stalls := duetOwnFigures(c)
	if latency != 8.4 || events != 10 || concealed != 197 || stalls != 5 {
		t.Errorf("got %.1f ms, %d events, %d ms concealed, %d stalls; want 8.4, 10, 197, 5", latency, events, concealed, stalls)
	}
	c.lines[2] = "duet: sent 23500 packets, received 23505 (0 lost, 54 late); 197 ms of your partner concealed"
	if _, _, _, stalls := duetOwnFigures(c); stalls != 0 {
		t.Errorf("a closing line without stalls gave %d, want 0", stalls)
	}
	c.lines = c.lines[:2]
	if _, _, concealed, stalls := duetOwnFigures(c); concealed != -1 || stalls != -1 {
		t.Errorf("no closing line gave %d ms and %d stalls, want -1 and -1", concealed, stalls)
	}
}
