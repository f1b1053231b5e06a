// Package drift keeps a buffer between two sound-card clocks at its target
// level by steering a resampling ratio, so a microphone on one card can be
// heard through another's clock (they differ by up to a few hundred ppm)
// without ever dropping or repeating samples.
//
// The input side fills a buffer at its clock's rate; the output side
// empties it through a resampler at the ratio Update returns. Update is a
// PI controller on the buffer's continuous fill: the samples waiting plus
// those captured since the last input block (time since it × the rate), so
// the sawtooth of block-wise arrivals, whose phase slides as the clocks
// drift, does not move the estimate; it is smoothed over 0.2 s as well. Units: levels in input
// samples, ratios in output samples per input sample. A Tracker belongs to
// the output callback's goroutine.
package drift

// Gains, per sample of level error: Kp sets how hard the ratio leans on an
// error (a 1 s time constant at 48 kHz), Ki removes the steady error that a
// constant drift would leave (overdamped). The integral only runs once the
// error is small (integral separation): a start-up or a stall is for the
// proportional part to put right, and winding the integral up on it would
// leave a slow overshoot to unwind.
const (
	kp        = 2e-5
	ki        = 2e-6
	integrate = 16   // samples: the error below which the integral runs
	maxDrift  = 1e-3 // ±1000 ppm: beyond any sound card's error
	smooth    = 0.2  // seconds, the level's averaging time
	rate      = 48000
)

// Tracker steers one buffer. See the package doc.
type Tracker struct {
	target   float64
	avg      float64
	integral float64
	ratio    float64
	primed   bool
}

// Target returns the continuous fill to hold for input and output blocks of
// the given sizes: both blocks plus half an output block of margin, so the
// output never finds less than a block when it reads.
func Target(inBlock, outBlock int) int { return inBlock + outBlock + outBlock/2 }

// New returns a tracker holding the buffer's continuous fill at target
// input samples.
func New(target int) *Tracker {
	return &Tracker{target: float64(target), ratio: 1}
}

// Update takes the level seen at one output block (input samples waiting,
// and the seconds since the last input block arrived) and the output
// block's duration dt, and returns the ratio for the resampler.
func (t *Tracker) Update(level int, sinceInput, dt float64) float64 {
	l := float64(level) + sinceInput*rate
	if !t.primed {
		t.avg = l
		t.primed = true
	}
	t.avg += (l - t.avg) * min(1, dt/smooth)
	e := t.avg - t.target
	// A fuller buffer means the input runs fast: make fewer output
	// samples per input sample, so the output side drains it quicker.
	if e > -integrate && e < integrate {
		t.integral = max(-maxDrift/ki, min(maxDrift/ki, t.integral+e*dt))
	}
	t.ratio = 1 - max(-maxDrift, min(maxDrift, kp*e+ki*t.integral))
	return t.ratio
}

// Reset forgets the past (a new stream), keeping the target.
func (t *Tracker) Reset() { *t = Tracker{target: t.target, ratio: 1} }

// SetTarget moves the level to hold, in input samples.
func (t *Tracker) SetTarget(target int) { t.target = float64(target) }

// Ratio returns the last ratio Update returned.
func (t *Tracker) Ratio() float64 { return t.ratio }

// Target returns the level the tracker holds, in input samples.
func (t *Tracker) Target() int { return int(t.target) }
