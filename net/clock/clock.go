// Package clock estimates the offset and drift between the guest's clock
// and the host's (the session clock) from NTP's four-timestamp exchange:
// the guest stamps a ping when it leaves (t1), the host when it arrives (t2)
// and when its pong leaves (t3), the guest when the pong arrives (t4).
//
//	offset = ((t2 − t1) + (t3 − t4)) / 2    host clock minus guest clock
//	delay  = (t4 − t1) − (t3 − t2)          the network round trip
//
// Queueing only ever adds delay, so the estimator keeps a sliding window
// of samples and reads the offset from the floors of the two one-way
// delays (t2 − t1 carries +offset, t4 − t3 −offset): each direction's
// fastest packet, not a packet fast both ways at once, which is rare on a
// jittery path. The drift (ppm) is the tilt of those floors, estimated
// once the window spans MinDriftSpan and shrunk towards zero when the
// floors are too noisy to pin it down. Path asymmetry cannot be seen this
// way: half the difference of the two directions' minimum delays shows up
// as offset (DESIGN.md §5).
//
// Times are passed in (nanoseconds on each side's monotonic clock), so the
// estimator is tested with fake clocks. An Estimator is safe for concurrent
// use.
package clock

import (
	"cmp"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// Sample is one completed exchange, in nanoseconds: t1 and t4 on the
// guest's clock, t2 and t3 on the host's.
type Sample struct {
	T1, T2, T3, T4 int64
}

// Offset is the host's clock minus the guest's, as this sample sees it.
func (s Sample) Offset() time.Duration {
	return time.Duration(((s.T2 - s.T1) + (s.T3 - s.T4)) / 2)
}

// Delay is the sample's network round trip.
func (s Sample) Delay() time.Duration {
	return time.Duration((s.T4 - s.T1) - (s.T3 - s.T2))
}

// Estimate is the estimator's view of the two clocks.
type Estimate struct {
	// Offset is the host's clock minus the guest's, at the newest sample.
	Offset time.Duration
	// DriftPPM is how fast the offset grows: the host's clock runs that
	// many millionths faster than the guest's.
	DriftPPM float64
	// RTT is the smallest round trip in the window.
	RTT time.Duration
	// Dispersion is the spread of the offsets of the fastest samples
	// (by round trip) around the estimate: a quality figure (smaller is
	// better).
	Dispersion time.Duration
	// Uncertainty is the typical size of the offset's error on a path
	// whose two directions have the same minimum delay (jitter may differ):
	// about how far each direction's fastest packet still queued. It is a
	// scale, not a hard bound, and it cannot see a difference between the
	// two directions' minimum delays, half of which shows as offset.
	Uncertainty time.Duration
	// Samples is how many samples the window holds (all feed the
	// estimate); Used how many, the fastest, Dispersion is over.
	Samples, Used int
}

// Estimator keeps a sliding window of samples. See the package doc.
type Estimator struct {
	mu     sync.Mutex
	window []Sample
	size   int
}

// New returns an estimator over the last size samples (at least 8). The
// drift estimate needs a window of tens of seconds: 300 samples at ten
// pings a second is thirty.
func New(size int) *Estimator {
	return &Estimator{size: max(size, 8)}
}

// Add records one exchange; samples whose timestamps are not in order (a
// clock stepped, a corrupt packet) are ignored and reported.
func (e *Estimator) Add(s Sample) error {
	if s.T4 < s.T1 || s.T3 < s.T2 || s.Delay() < 0 {
		return ErrBadSample
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.window) == e.size {
		copy(e.window, e.window[1:])
		e.window = e.window[:e.size-1]
	}
	e.window = append(e.window, s)
	return nil
}

// ErrBadSample reports timestamps that cannot come from one exchange.
var ErrBadSample = errors.New("clock: timestamps out of order")

// ErrNoSamples is returned by Estimate before any sample.
var ErrNoSamples = errors.New("clock: no samples yet")

// MaxDriftPPM bounds the drift estimate: crystals are specified to
// ±100 ppm or better, so two clocks a thousand ppm apart means a bad fit,
// not a real rate.
const MaxDriftPPM = 500

// MinDriftSpan is how much time the window must span before the drift is
// estimated; below it the estimator takes the clocks to run alike (a
// 100 ppm drift moves the offset by 0.1 ms a second, while a slope fitted
// over a few seconds of jittery floors is wrong by more).
const MinDriftSpan = 4 * time.Second

// Estimate reads the offset from the floors of the two one-way delays.
//
// A sample's forward delay as timestamped, t2 − t1, is the path's minimum
// one-way delay D plus that packet's queueing plus the offset; the return
// trip t4 − t3 is D plus its queueing minus the offset. Over a window
// each direction's lowest value (its floor) is reached by its luckiest
// packet, so half the difference of the two floors is the offset, wrong
// only by half the difference of the two floors' leftover queueing. The
// two directions are filtered separately: a sample need not be fast both
// ways at once (on a jittery path one such is rare, one fast each way is
// common), and jitter mostly one way does not bias the estimate. This is
// NTP's minimum-delay filter (RFC 5905 §10) applied per direction.
//
// The drift tilts both floors in opposite directions; once the window
// spans MinDriftSpan it is the slope that raises the two floors, measured
// against it, the most (the lower envelope of both directions at once),
// within ±MaxDriftPPM. The floors' noise over the window's span gives
// that slope's uncertainty; it is shrunk towards zero in proportion
// (a prior of ±100 ppm), so a few seconds of a jittery path do not tilt
// the offset more than the drift itself would.
func (e *Estimator) Estimate() (Estimate, error) {
	e.mu.Lock()
	window := slices.Clone(e.window)
	e.mu.Unlock()
	if len(window) == 0 {
		return Estimate{}, ErrNoSamples
	}
	// Times relative to the newest sample's arrival, so the floors are
	// the offset now; each sample dated at the middle of its exchange.
	now := window[len(window)-1].T4
	pts := make([]point, len(window))
	minDelay := window[0].Delay()
	oldest := now
	for i, s := range window {
		pts[i] = point{
			x:    float64(s.T1+s.T4)/2 - float64(now),
			out:  float64(s.T2 - s.T1),
			back: float64(s.T4 - s.T3),
		}
		minDelay = min(minDelay, s.Delay())
		oldest = min(oldest, s.T1)
	}
	slope := 0.0
	if span := float64(now - oldest); time.Duration(span) >= MinDriftSpan {
		slope = fitDrift(pts, span)
	}
	fOut, fBack := floors(pts, slope)
	offset := (fOut.low - fBack.low) / 2

	// Quality: each floor's gap to its runner-up is the scale of its own
	// leftover queueing (for a delay density that is flat near its
	// minimum, the lowest of n values sits above the true minimum by about
	// the gap between the lowest two).
	unc := math.Hypot(fOut.gap(), fBack.gap()) / 2
	// The fastest eighth by round trip: how far their offsets stray.
	byDelay := slices.Clone(pts)
	rtt := func(p point) float64 { return p.out + p.back }
	slices.SortFunc(byDelay, func(a, b point) int { return cmp.Compare(rtt(a), rtt(b)) })
	used := byDelay[:min(len(byDelay), max(3, len(byDelay)/8))]
	var ss float64
	for _, p := range used {
		r := (p.out-p.back)/2 - slope*p.x - offset
		ss += r * r
	}
	return Estimate{
		Offset:      time.Duration(math.Round(offset)),
		DriftPPM:    slope * 1e6,
		RTT:         minDelay,
		Dispersion:  time.Duration(math.Sqrt(ss / float64(len(used)))),
		Uncertainty: time.Duration(math.Round(unc)),
		Samples:     len(window),
		Used:        len(used),
	}, nil
}

// point is one sample seen as two one-way delays (nanoseconds, offset
// included) at x nanoseconds from the newest sample.
type point struct{ x, out, back float64 }

// floor is a direction's lowest de-trended delay and its runner-up.
type floor struct{ low, next float64 }

func (f floor) gap() float64 {
	if math.IsInf(f.next, 1) {
		return 0
	}
	return f.next - f.low
}

func (f *floor) add(v float64) {
	switch {
	case v < f.low:
		f.low, f.next = v, f.low
	case v < f.next:
		f.next = v
	}
}

// floors returns the floors of both directions once the drift (slope, in
// nanoseconds per nanosecond) is taken out: the forward delays carry
// +offset, the return ones −offset.
func floors(pts []point, slope float64) (out, back floor) {
	out = floor{math.Inf(1), math.Inf(1)}
	back = out
	for _, p := range pts {
		out.add(p.out - slope*p.x)
		back.add(p.back + slope*p.x)
	}
	return out, back
}

// driftSegments is how many stretches of the window fitDrift takes a
// floor from.
const driftSegments = 4

// fitDrift estimates the drift from the floors of each direction in
// driftSegments equal stretches of the window: a least-squares line
// through each direction's segment floors (the forward floor rises with
// the drift, the return one falls). The mean of the two slopes is shrunk
// towards zero by its uncertainty (the floors' scatter about their lines,
// or the two slopes' disagreement, whichever is larger) against a prior
// of ±100 ppm, then clamped to ±MaxDriftPPM.
func fitDrift(pts []point, span float64) float64 {
	first := pts[0].x
	type seg struct{ xo, yo, xb, yb float64 }
	segs := make([]seg, driftSegments)
	for i := range segs {
		segs[i] = seg{yo: math.Inf(1), yb: math.Inf(1)}
	}
	for _, p := range pts {
		i := min(int((p.x-first)/span*driftSegments), driftSegments-1)
		if p.out < segs[i].yo {
			segs[i].xo, segs[i].yo = p.x, p.out
		}
		if p.back < segs[i].yb {
			segs[i].xb, segs[i].yb = p.x, p.back
		}
	}
	var xo, yo, xb, yb []float64
	for _, s := range segs {
		if !math.IsInf(s.yo, 1) {
			xo, yo = append(xo, s.xo), append(yo, s.yo)
		}
		if !math.IsInf(s.yb, 1) {
			xb, yb = append(xb, s.xb), append(yb, s.yb)
		}
	}
	sOut, eOut := lineSlope(xo, yo)
	sBack, eBack := lineSlope(xb, yb)
	slope := (sOut - sBack) / 2
	sigma := max(math.Hypot(eOut, eBack)/2, math.Abs(sOut+sBack)/2)
	const prior = 100e-6
	slope *= prior * prior / (prior*prior + sigma*sigma)
	return min(max(slope, -MaxDriftPPM*1e-6), MaxDriftPPM*1e-6)
}

// lineSlope fits y = a + b·x by least squares and returns b and its
// standard error (0 with fewer than three points to tell).
func lineSlope(x, y []float64) (slope, stderr float64) {
	n := float64(len(x))
	if len(x) < 2 {
		return 0, math.Inf(1)
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx == 0 {
		return 0, math.Inf(1)
	}
	slope = sxy / sxx
	if len(x) < 3 {
		return slope, 0
	}
	var ss float64
	for i := range x {
		r := y[i] - my - slope*(x[i]-mx)
		ss += r * r
	}
	return slope, math.Sqrt(ss / (n - 2) / sxx)
}

// The wire format of pings and pongs: a type byte, then big-endian int64
// timestamps (ping: t1; pong: t1, t2, t3). Fixed sizes, so anything else is
// rejected.
const (
	pingType = 1
	pongType = 2
	PingSize = 1 + 8
	PongSize = 1 + 3*8
)

// ErrMessage reports a clock message that is neither a ping nor a pong.
var ErrMessage = errors.New("clock: malformed message")

// AppendPing appends a ping sent at t1 to b.
func AppendPing(b []byte, t1 int64) []byte {
	b = append(b, pingType)
	return binary.BigEndian.AppendUint64(b, uint64(t1))
}

// AppendPong appends the host's answer to a ping sent at t1, received at
// t2 and answered at t3.
func AppendPong(b []byte, t1, t2, t3 int64) []byte {
	b = append(b, pongType)
	b = binary.BigEndian.AppendUint64(b, uint64(t1))
	b = binary.BigEndian.AppendUint64(b, uint64(t2))
	return binary.BigEndian.AppendUint64(b, uint64(t3))
}

// ParsePing returns a ping's t1.
func ParsePing(b []byte) (t1 int64, err error) {
	if len(b) != PingSize || b[0] != pingType {
		return 0, ErrMessage
	}
	return int64(binary.BigEndian.Uint64(b[1:])), nil
}

// ParsePong returns a pong's t1, t2, t3.
func ParsePong(b []byte) (t1, t2, t3 int64, err error) {
	if len(b) != PongSize || b[0] != pongType {
		return 0, 0, 0, ErrMessage
	}
	return int64(binary.BigEndian.Uint64(b[1:])), int64(binary.BigEndian.Uint64(b[9:])), int64(binary.BigEndian.Uint64(b[17:])), nil
}
