package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/cmplx"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/impair"
)

// Glitches as a listener hears them: each singer sings a steady tone
// through the whole chain (capture, codec, WebRTC, playout, resampler) and
// the partner's ear is searched for level dips and phase steps. On a clean
// path there should be none: every concealment and every change of the
// playout's rate must be inaudible or not happen.

// The tones: a whole number of samples a period, so that one period's
// window of the demodulation holds no ripple.
const (
	hostHz  = 750  // 64 samples
	guestHz = 1000 // 48 samples
)

// Thresholds of a glitch.
const (
	dipRatio    = 0.5                     // a level 6 dB below the running level…
	dipMin      = audio.SampleRate / 1000 // …for 1 ms or more
	phaseStep   = 2 * math.Pi / 16        // a jump of a 16th of a period (83 µs at 750 Hz) within a period
	glitchMerge = audio.SampleRate / 50   // flags less than 20 ms apart are one glitch
)

// glitchSeconds is how long each singer sings on each path.
const glitchSeconds = 30

// glitchReport is what one listener heard of the partner's tone.
type glitchReport struct {
	listened     time.Duration // the stretch searched
	dips, steps  int           // glitches that were level dips, phase steps (or both: counted as dips)
	deepestDB    float64       // the deepest dip, dB below the running level
	largestStep  time.Duration // the largest phase step, as time
	glitchesAt   []time.Duration
	concealments int64
	lost, late   int64
	// overruns counts the samples the partner's encoder was too slow to
	// take: a gap in what was sent, heard as a phase step.
	overruns int64
}

func (r glitchReport) glitches() int { return r.dips + r.steps }

// findGlitches searches p, which should hold a steady tone of hz (a whole
// number of samples a period), for level dips and phase steps, from a
// second after the tone starts to half a second before it ends.
func findGlitches(p []float32, hz int) glitchReport {
	period := audio.SampleRate / hz
	// S(n) = Σ x(k)·e^(−iωk) over the period ending at n: for a steady
	// tone its magnitude is the amplitude × period/2 and its angle the
	// tone's phase, with no ripple.
	n := len(p)
	s := make([]complex128, n)
	var acc complex128
	w := 2 * math.Pi * float64(hz) / audio.SampleRate
	for k := range n {
		acc += complex(float64(p[k]), 0) * cmplx.Exp(complex(0, -w*float64(k%period)))
		if k >= period {
			acc -= complex(float64(p[k-period]), 0) * cmplx.Exp(complex(0, -w*float64((k-period)%period)))
		}
		s[k] = acc
	}
	amp := make([]float64, n)
	for k := range s {
		amp[k] = 2 * cmplx.Abs(s[k]) / float64(period)
	}
	// Where the tone is: above half its median level.
	sorted := slices.Clone(amp)
	slices.Sort(sorted)
	median := sorted[n/2]
	first, last := 0, n-1
	for first < n && amp[first] < median/2 {
		first++
	}
	for last > first && amp[last] < median/2 {
		last--
	}
	from, to := first+audio.SampleRate, last-audio.SampleRate/2
	var r glitchReport
	if to <= from {
		return r
	}
	r.listened = audio.Duration(to - from)

	level := median // running level, followed outside dips
	drift := 0.0    // the phase's slow turn per period (a rate off 1)
	lastFlag := -glitchMerge - 1
	dipRun := 0
	isDip, isStep := false, false
	flush := func() {
		if isDip {
			r.dips++
		} else if isStep {
			r.steps++
		}
		isDip, isStep = false, false
	}
	for k := from; k < to; k++ {
		flag := false
		if amp[k] < level*dipRatio {
			dipRun++
			if dipRun >= dipMin {
				flag, isDip = true, true
				r.deepestDB = max(r.deepestDB, 20*math.Log10(level/max(amp[k], 1e-9)))
			}
		} else {
			dipRun = 0
			level += (amp[k] - level) / 4800 // 100 ms
			d := cmplx.Phase(s[k] / s[k-period])
			if e := math.Abs(d - drift); e > phaseStep && amp[k-period] >= level*dipRatio {
				flag, isStep = true, true
				r.largestStep = max(r.largestStep, time.Duration(e/(2*math.Pi)/float64(hz)*float64(time.Second)))
			} else {
				drift += (d - drift) / 4800
			}
		}
		if flag {
			if k-lastFlag > glitchMerge {
				r.glitchesAt = append(r.glitchesAt, audio.Duration(k))
			}
			lastFlag = k
		} else if k-lastFlag == glitchMerge+1 {
			flush()
		}
	}
	if to-lastFlag <= glitchMerge {
		flush()
	}
	return r
}

// glitchRun sings the tones over path (nil: a clean one) and reports what
// each singer heard of the other: the host first.
func glitchRun(ctx context.Context, path *impair.Profile, seconds int) (host, guest glitchReport, err error) {
	sine := func(hz float64) []float32 {
		p := make([]float32, seconds*audio.SampleRate)
		audio.ReadFull(&tone.Sine{Hz: hz, Amp: 0.3}, p)
		return p
	}
	res, err := lab.Run(ctx, lab.Config{HostVoice: sine(hostHz), GuestVoice: sine(guestHz), Network: path})
	if err != nil {
		return host, guest, err
	}
	report := func(heard []float32, hz int, st, partner app.Stats) glitchReport {
		r := findGlitches(heard, hz)
		r.concealments, r.lost, r.late = st.Voice.ConcealmentEvents, st.Voice.PacketsLost, st.Voice.PacketsDiscarded
		r.overruns = partner.CaptureOverruns
		return r
	}
	return report(res.HostHeard, guestHz, res.HostStats, res.GuestStats), report(res.GuestHeard, hostHz, res.GuestStats, res.HostStats), nil
}

// glitchLab measures glitches a minute on a clean path and on issue 16's
// lossy one (35 ± 12 ms, reordering, 3 % loss).
func glitchLab(ctx context.Context, w io.Writer) ([]string, error) {
	lossy := impair.Profile{Name: "lossy", Delay: 35 * time.Millisecond, Jitter: 12 * time.Millisecond, Reorder: true,
		Loss: impair.GilbertElliott{LossGood: 0.03}, Seed: 16}
	paths := []struct {
		name string
		p    *impair.Profile
	}{{"clean", nil}, {"lossy", &lossy}}
	fmt.Fprintf(w, "A steady tone each way (host %d Hz, guest %d Hz) for %d s; a glitch is a dip of 6 dB or more for 1 ms or more,\n"+
		"or a phase step of a 16th of a period or more (flags within 20 ms are one).\n\n", hostHz, guestHz, glitchSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tlistener\tlistened s\tglitches\tdips\tsteps\tdeepest dB\tlargest step ms\tper min\tconcealments\tlost\tlate\tpartner overruns\tat s\t")
	var kv []string
	for _, pa := range paths {
		host, guest, err := glitchRun(ctx, pa.p, glitchSeconds)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pa.name, err)
		}
		var n int
		var listened time.Duration
		for _, r := range []struct {
			who string
			r   glitchReport
		}{{"host", host}, {"guest", guest}} {
			g := r.r
			n += g.glitches()
			listened += g.listened
			var at []string
			for _, t := range g.glitchesAt[:min(len(g.glitchesAt), 8)] {
				at = append(at, fmt.Sprintf("%.2f", t.Seconds()))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d\t%.1f\t%.3f\t%.1f\t%d\t%d\t%d\t%d\t%v\t\n", pa.name, r.who, g.listened.Seconds(), g.glitches(), g.dips, g.steps,
				g.deepestDB, ms(g.largestStep), perMinute(g.glitches(), g.listened), g.concealments, g.lost, g.late, g.overruns, at)
		}
		kv = append(kv, fmt.Sprintf("%s_per_min=%.1f", pa.name, perMinute(n, listened)))
	}
	return kv, tw.Flush()
}

func perMinute(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Minutes()
}
