package main

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/dsp/fourier"
)

// The analysis of a jack run: where each stretch of the played signal
// shows up in the recording (the port-to-port delay, every 50 ms), and
// which stretches of the recording are no stretch of it (what the listener
// heard instead of the singer: concealment, a dropout, a click).
//
// The signal is noise, band-limited to the voice's range: it never
// repeats, so a 20 ms stretch of it matches the recording at one lag only
// (a click train or a sung vowel is periodic, and a cross-correlation can
// take a period for the delay); and Opus keeps its waveform (2.5 ms
// stretches correlate above 0.9 through 5 ms frames at 96 kbit/s), while
// concealment makes up noise that does not correlate at all.
const (
	anaBlock     = 960   // samples: the stretch each delay estimate matches (20 ms)
	anaHop       = 2400  // samples between delay estimates (50 ms)
	anaMaxLag    = 14400 // samples: the longest delay looked for (300 ms)
	anaSub       = 120   // samples: the stretch judged heard or not (2.5 ms)
	anaMinScore  = 0.6   // a delay estimate counts from this correlation up
	anaHeardFrom = 0.5   // a stretch correlating less was not the singer
	anaMergeGap  = 4     // stretches: misses closer than this are one event
	settleBandMS = 0.5   // ms: settled means within this of the median
	settleHoldS  = 5.0   // s: … for this long
)

// jackNoise is the signal a lab singer sings: Gaussian noise low-passed
// at about 2.3 kHz and high-passed at about 100 Hz, RMS about 0.1 (peaks
// near 0.4, clear of the limiter), reproducible from seed.
func jackNoise(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x6a61636b))
	p := make([]float32, n)
	var lp, dc float64
	for i := range p {
		lp += 0.3 * (r.NormFloat64() - lp)
		dc += 0.013 * (lp - dc)
		p[i] = float32(0.25 * (lp - dc))
	}
	return p
}

// jackBlock is one delay estimate: the block of the played signal at
// sample at turned up lag samples later in the recording.
type jackBlock struct {
	at    int
	lag   float64
	score float64
}

// jackDropout is a stretch of the recording (samples) that was not the
// played signal.
type jackDropout struct{ at, length int }

// jackAnalysis is one direction of a run. Times are in seconds from the
// start of the recording, delays in ms.
type jackAnalysis struct {
	rate             int
	seconds          float64
	blocks           []jackBlock // the confident estimates, in order
	tried            int         // blocks with a signal to look for
	median, p10, p90 float64
	dropouts         []jackDropout
	heardSeconds     float64 // how much of the recording was judged
	missed           int     // samples the probe missed (xruns)
	// settle is when the delay came within settleBandMS of the median
	// and stayed there for settleHoldS; -1 if it never did.
	settle float64
	// excursions counts later runs of two or more estimates outside the
	// band; outside is the share of estimates after settling outside it
	// (of all of them if the delay never settled).
	excursions int
	outside    float64
}

// perMinute scales a count in this run to a rate.
func (a jackAnalysis) perMinute(n int) float64 {
	if a.heardSeconds == 0 {
		return 0
	}
	return float64(n) * 60 / a.heardSeconds
}

var errJackNothingHeard = errors.New("no stretch of the played signal came through")

// analyseJack finds ref (what was played, NaN where the player missed a
// cycle) in rec (what was recorded on the same frame clock, NaN where the
// recorder missed one), sampled at rate.
func analyseJack(ref, rec []float32, rate int) (jackAnalysis, error) {
	a := jackAnalysis{rate: rate, seconds: float64(len(rec)) / float64(rate), settle: -1}
	refOK, rec0 := anaClean(ref), anaClean(rec)
	recOK := anaPresent(rec)
	a.missed = len(rec) - anaCount(recOK)

	c := newAnaCorrelator(anaBlock + anaMaxLag)
	for at := 0; at+anaBlock <= len(ref); at += anaHop {
		win := refOK[at : at+anaBlock]
		if !anaAllPresent(ref[at:at+anaBlock]) || anaRMS(win) < 1e-4 {
			continue
		}
		end := min(len(rec0), at+anaBlock+anaMaxLag)
		if end-at < anaBlock || !anaMostlyPresent(recOK[at:end]) {
			continue
		}
		a.tried++
		lag, score := c.find(win, rec0[at:end])
		if score >= anaMinScore {
			a.blocks = append(a.blocks, jackBlock{at: at, lag: lag, score: score})
		}
	}
	if len(a.blocks) == 0 {
		return a, errJackNothingHeard
	}
	delays := make([]float64, len(a.blocks))
	for i, b := range a.blocks {
		delays[i] = a.ms(b.lag)
	}
	slices.Sort(delays)
	a.median, a.p10, a.p90 = anaQuantile(delays, 0.5), anaQuantile(delays, 0.1), anaQuantile(delays, 0.9)
	a.settleAndExcursions()
	a.findDropouts(refOK, ref, rec0, recOK)
	return a, nil
}

func (a *jackAnalysis) ms(lag float64) float64 { return lag * 1000 / float64(a.rate) }

// heardAt is when block b was heard, s from the start of the recording.
func (a *jackAnalysis) heardAt(b jackBlock) float64 {
	return (float64(b.at) + b.lag) / float64(a.rate)
}

func (a *jackAnalysis) settleAndExcursions() {
	in := func(b jackBlock) bool { return math.Abs(a.ms(b.lag)-a.median) <= settleBandMS }
	first := -1
	for i := range a.blocks {
		t0 := a.heardAt(a.blocks[i])
		if t0+settleHoldS > a.seconds {
			break // too late to tell
		}
		ok := in(a.blocks[i])
		for j := i + 1; ok && j < len(a.blocks) && a.heardAt(a.blocks[j]) < t0+settleHoldS; j++ {
			ok = in(a.blocks[j])
		}
		if ok {
			first = i
			break
		}
	}
	after := a.blocks
	if first >= 0 {
		a.settle = a.heardAt(a.blocks[first])
		after = a.blocks[first:]
	}
	out, run := 0, 0
	for _, b := range after {
		if in(b) {
			run = 0
			continue
		}
		out++
		run++
		if run == 2 {
			a.excursions++
		}
	}
	a.outside = float64(out) / float64(len(after))
}

// findDropouts judges the recording stretch by stretch: heard as sung if
// it correlates with the played signal at the delay of the estimates
// around it (±1 sample, for the playout's resampling between them).
func (a *jackAnalysis) findDropouts(ref0, ref, rec0 []float32, recOK []bool) {
	bi := 0
	var cur *jackDropout
	gap := 0
	for k := 0; k+anaSub <= len(rec0); k += anaSub {
		for bi+1 < len(a.blocks) && float64(a.blocks[bi+1].at)+a.blocks[bi+1].lag <= float64(k) {
			bi++
		}
		if !anaAllTrue(recOK[k : k+anaSub]) {
			continue
		}
		best, judged := math.Inf(-1), false
		for _, b := range a.blocks[max(0, bi-1):min(len(a.blocks), bi+2)] {
			for d := -1; d <= 1; d++ {
				j := k - int(math.Round(b.lag)) + d
				if j < 0 || j+anaSub > len(ref0) || !anaAllPresent(ref[j:j+anaSub]) {
					continue
				}
				w := ref0[j : j+anaSub]
				if anaRMS(w) < 1e-4 {
					continue
				}
				judged = true
				best = max(best, anaCorrelation(w, rec0[k:k+anaSub]))
			}
		}
		if !judged {
			continue
		}
		a.heardSeconds += float64(anaSub) / float64(a.rate)
		if best >= anaHeardFrom {
			if cur != nil {
				gap++
				if gap >= anaMergeGap {
					a.dropouts = append(a.dropouts, *cur)
					cur = nil
				}
			}
			continue
		}
		gap = 0
		if cur == nil {
			cur = &jackDropout{at: k}
		}
		cur.length = k + anaSub - cur.at
	}
	if cur != nil {
		a.dropouts = append(a.dropouts, *cur)
	}
}

// anaCorrelator finds a short reference in a longer signal by FFT
// cross-correlation, reusing its buffers.
type anaCorrelator struct {
	fft    *fourier.FFT
	a, b   []float64
	fa, fb []complex128
	corr   []float64
	cum    []float64
}

// newAnaCorrelator handles signals up to maxSig samples and references up to
// anaBlock.
func newAnaCorrelator(maxSig int) *anaCorrelator {
	n := 1
	for n < maxSig+anaBlock {
		n <<= 1
	}
	return &anaCorrelator{fft: fourier.NewFFT(n), a: make([]float64, n), b: make([]float64, n), cum: make([]float64, maxSig+1)}
}

// find returns the lag (refined to a fraction of a sample) at which sig
// best matches ref, 0 ≤ lag ≤ len(sig)-len(ref), and the normalised
// correlation there (1: the same shape).
func (c *anaCorrelator) find(ref, sig []float32) (lag, score float64) {
	clear(c.a)
	clear(c.b)
	for i, v := range sig {
		c.a[i] = float64(v)
	}
	for i, v := range ref {
		c.b[i] = float64(v)
	}
	c.fa = c.fft.Coefficients(c.fa, c.a)
	c.fb = c.fft.Coefficients(c.fb, c.b)
	for i := range c.fa {
		c.fa[i] *= complex(real(c.fb[i]), -imag(c.fb[i]))
	}
	c.corr = c.fft.Sequence(c.corr, c.fa)
	n := float64(len(c.a))
	var er float64
	for _, v := range ref {
		er += float64(v) * float64(v)
	}
	for i, v := range sig {
		c.cum[i+1] = c.cum[i] + float64(v)*float64(v)
	}
	maxLag := len(sig) - len(ref)
	norm := func(l int) float64 {
		es := c.cum[l+len(ref)] - c.cum[l]
		if es <= 1e-9*float64(len(ref)) {
			return 0
		}
		return c.corr[l] / n / math.Sqrt(er*es)
	}
	best, bestScore := 0, math.Inf(-1)
	for l := 0; l <= maxLag; l++ {
		if s := norm(l); s > bestScore {
			best, bestScore = l, s
		}
	}
	lag = float64(best)
	if best > 0 && best < maxLag {
		y0, y1, y2 := norm(best-1), bestScore, norm(best+1)
		if d := y0 - 2*y1 + y2; d < 0 {
			lag += 0.5 * (y0 - y2) / d
		}
	}
	return lag, bestScore
}

// anaCorrelation is the normalised correlation of two equal-length stretches.
func anaCorrelation(x, y []float32) float64 {
	var xy, xx, yy float64
	for i := range x {
		xy += float64(x[i]) * float64(y[i])
		xx += float64(x[i]) * float64(x[i])
		yy += float64(y[i]) * float64(y[i])
	}
	if xx == 0 || yy == 0 {
		return 0
	}
	return xy / math.Sqrt(xx*yy)
}

func anaRMS(p []float32) float64 {
	var s float64
	for _, v := range p {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(p)))
}

// anaClean copies p with NaN (a missed cycle) as silence.
func anaClean(p []float32) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		if !math.IsNaN(float64(v)) {
			out[i] = v
		}
	}
	return out
}

func anaPresent(p []float32) []bool {
	ok := make([]bool, len(p))
	for i, v := range p {
		ok[i] = !math.IsNaN(float64(v))
	}
	return ok
}

func anaAllPresent(p []float32) bool {
	return !slices.ContainsFunc(p, func(v float32) bool { return math.IsNaN(float64(v)) })
}

func anaAllTrue(b []bool) bool { return !slices.Contains(b, false) }

// anaMostlyPresent: a block's search range may include a missed cycle or two.
func anaMostlyPresent(b []bool) bool { return anaCount(b) >= len(b)*9/10 }

func anaCount(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// anaQuantile of sorted values, q in [0, 1], by linear interpolation.
func anaQuantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	x := q * float64(len(sorted)-1)
	i := int(x)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (x-float64(i))*(sorted[i+1]-sorted[i])
}
