package jitter

// expander conceals a voiced stretch by repeating its last pitch period,
// as NetEQ's expand does, instead of the decoder's own concealment: CELT's
// fades by a fifth every frame it conceals, made for 20 ms frames, so in
// Opus Custom's 1.3 ms frames a 10 ms stall (a sender's thread held up)
// sank the voice 11-20 dB, a dip a listener hears. Repeating the period
// keeps the level for holdSamples, then fades out over fadeSamples; a
// steady tone goes on in phase, so a packet after the gap joins it without
// a step. Where the voice has no clear period (noise, consonants) the
// decoder's concealment stays. The decoder is always asked to conceal too,
// so its state follows the gap; its first samples are faded into the
// repetition, and what is decoded after the gap is faded in from it.
//
// All lengths are samples at 48 kHz. Owned by the audio thread; it never
// allocates.
type expander struct {
	hist   [histLen]float32 // the last samples played, a ring
	histAt int              // where the next sample goes
	filled int              // samples in hist, ≤ histLen

	active bool // concealing now, or just was: the next decode fades in
	voiced bool // a period was found for this run
	period int
	pos    int  // the next sample's place in the period
	resume int  // samples of the fade into decoded audio still to go
	join   bool // the decoder's concealment is faded into the repetition
	run    int  // samples concealed in this run
	tmpl   [maxPeriod]float32
	// scratch holds the history in order for the period search.
	scratch [corrLen + maxPeriod + 1]float32
}

const (
	histLen     = 1024
	minPeriod   = 32  // 1.5 kHz
	maxPeriod   = 640 // 75 Hz
	corrLen     = 256 // samples compared at each period tried
	holdSamples = 960 // 20 ms at full level
	fadeSamples = 1920
	// resumeSamples is the crossfade from the repetition into what is
	// decoded after it: the first frame after a gap comes out quiet (CELT's
	// energies decayed with its own concealment; PCM fades in from where
	// its concealment faded to); over 4 ms the repetition, in phase,
	// covers it.
	resumeSamples = 192
	// joinSamples is the crossfade from the decoder's concealment into the
	// repetition, where they agree (see agrees); else the repetition
	// starts at once, a period on from the last samples played.
	joinSamples = 48
	// minCorr is the normalised correlation a period must reach to count
	// as voiced.
	minCorr = 0.7
)

// reset forgets the history: a new stream.
func (e *expander) reset() {
	e.filled, e.histAt, e.active, e.resume = 0, 0, false, 0
}

// stop ends a run without a fade-in: the stream stopped.
func (e *expander) stop() { e.active, e.resume = false, 0 }

// push notes samples that will play.
func (e *expander) push(p []float32) {
	for len(p) > 0 {
		n := copy(e.hist[e.histAt:], p)
		p = p[n:]
		e.histAt = (e.histAt + n) % histLen
		e.filled = min(histLen, e.filled+n)
	}
}

// at returns the sample k back from the newest (k ≥ 1).
func (e *expander) at(k int) float32 {
	return e.hist[(e.histAt-k+histLen)%histLen]
}

// begin starts a run: finds the period of what played last.
func (e *expander) begin() {
	e.active, e.voiced, e.run, e.pos, e.period = true, false, 0, 0, 0
	const n = corrLen + maxPeriod + 1 // t+1 of the longest period
	if e.filled < n {
		return
	}
	// x[i] is the sample n-i back: x[:corrLen] the newest, compared with
	// x[t:t+corrLen] for each period t.
	x := e.scratch[:n]
	for i := range x {
		x[i] = e.at(i + 1)
	}
	energy := dot(x[:corrLen], x[:corrLen])
	if energy < 1e-9 {
		return
	}
	// corr returns the squared normalised correlation at period t, 0 if
	// negative.
	corr := func(t int) float64 {
		xy := dot(x[:corrLen], x[t:t+corrLen])
		yy := dot(x[t:t+corrLen], x[t:t+corrLen])
		if xy <= 0 || yy <= 0 {
			return 0
		}
		return xy * xy / (energy * yy)
	}
	// Every other period first, then the best one's neighbours; the
	// shortest period near the best correlation wins, as a tone
	// correlates as well at twice its period.
	var corrs [maxPeriod + 2]float64
	best := 0.0
	for t := minPeriod; t <= maxPeriod; t += 2 {
		corrs[t] = corr(t)
		best = max(best, corrs[t])
	}
	if best < minCorr*minCorr/2 {
		return
	}
	for t := minPeriod; t <= maxPeriod; t += 2 {
		if corrs[t] < 0.9*best {
			continue
		}
		// Climb to the peak, then try its odd neighbours.
		for t+2 <= maxPeriod && corrs[t+2] > corrs[t] {
			t += 2
		}
		period, c := t, corrs[t]
		for u := max(t-1, minPeriod); u <= min(t+1, maxPeriod); u += 2 {
			if cu := corr(u); cu > c {
				period, c = u, cu
			}
		}
		if c < minCorr*minCorr {
			return
		}
		e.period = period
		break
	}
	if e.period == 0 {
		return
	}
	// A voice swings both ways within a period; a level that does not
	// (a constant) has no period to repeat.
	pos, neg := false, false
	for i := range e.period {
		v := x[e.period-1-i]
		e.tmpl[i] = v
		pos, neg = pos || v > 0, neg || v < 0
	}
	e.voiced = pos && neg
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// waitStep returns how much to conceal while waiting for a late packet
// that then plays that much later than it would have: step, or where the
// voice has a period, the fewest whole periods at least as long (up to
// four steps), so that the packet joins the repetition in phase. A wait of
// 64 samples at 1 kHz (1.33 periods) was a phase step of a third of a
// period, with a dip where the two were faded into each other.
func (e *expander) waitStep(step int) int {
	if !e.active {
		e.begin()
	}
	if !e.voiced {
		return step
	}
	if w := (step + e.period - 1) / e.period * e.period; w <= 4*step {
		return w
	}
	return step
}

// align returns how much more to conceal after waits that moved the voice
// slip samples later, so that it moves by whole periods where it has one:
// waits of two 1 kHz periods for a packet of 128 samples that never came
// moved it 64, a third of a period out of phase.
func (e *expander) align(slip int) int {
	if !e.active || !e.voiced {
		return 0
	}
	return (e.period - slip%e.period) % e.period
}

// gain is the repetition's level after run samples of it.
func gain(run int) float32 {
	if run < holdSamples {
		return 1
	}
	return max(0, 1-float32(run-holdSamples)/fadeSamples)
}

// next returns the next sample of the repetition.
func (e *expander) next() float32 {
	v := gain(e.run) * e.tmpl[e.pos]
	e.pos++
	if e.pos == e.period {
		e.pos = 0
	}
	e.run++
	return v
}

// conceal replaces p, the decoder's concealment, with the repetition where
// the voice has a period, and notes what plays.
func (e *expander) conceal(p []float32) {
	if !e.active {
		e.resume = 0
		e.begin()
	}
	if e.voiced && e.run == 0 {
		e.join = e.agrees(p)
	}
	if e.voiced {
		for i := range p {
			v := e.next()
			if e.join && e.run <= joinSamples {
				w := float32(e.run) / (joinSamples + 1)
				v = (1-w)*p[i] + w*v
			}
			p[i] = v
		}
	}
	e.push(p)
}

// agrees reports whether the decoder's concealment p starts as the
// repetition does (correlation over joinSamples above 0.9), so that
// fading from one into the other bends nothing. PCM's plays its last
// packet backwards: at 750 Hz it started in antiphase, and the fade
// between them sank the tone 8 dB; at 1 kHz it often correlated by a half
// or more while running the other way, and the fade turned the tone's
// phase 0.2 ms.
func (e *expander) agrees(p []float32) bool {
	var xy, xx, yy float64
	for i := range min(joinSamples, len(p)) {
		x, y := float64(p[i]), float64(e.tmpl[(e.pos+i)%e.period])
		xy += x * y
		xx += x * x
		yy += y * y
	}
	return xy > 0 && xy*xy > 0.81*xx*yy
}

// decoded fades p, just decoded, in from the repetition if a run was on
// (over resumeSamples, across frames), and notes what plays.
func (e *expander) decoded(p []float32) {
	if e.active {
		e.active = false
		if e.voiced {
			e.resume = resumeSamples
		}
	}
	for i := 0; i < len(p) && e.resume > 0; i++ {
		w := 1 - float32(e.resume)/(resumeSamples+1)
		p[i] = (1-w)*e.next() + w*p[i]
		e.resume--
	}
	e.push(p)
}
