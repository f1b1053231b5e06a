// Package clock estimates the offset and drift between the guest's clock
// and the host's (the session clock) from one-way trips: packets stamped
// with their sender's clock when they leave and read on the receiver's
// when they arrive. Two kinds feed it:
//
//   - NTP's four-timestamp exchange on the clock channel: the guest stamps
//     a ping when it leaves (t1), the host when it arrives (t2) and when
//     its pong leaves (t3), the guest when the pong arrives (t4): one trip
//     each way (Add).
//   - The voice packets themselves, each carrying its sender's clock (a
//     Stamp, in an RTP header extension): hundreds a second each way,
//     where pings are ten. Each side keeps the fastest of its partner's
//     packets over a short interval (Fastest); the host reports its to
//     the guest (a Heard message), the guest keeps its own (AddForward,
//     AddBackward).
//
// A trip's delay as timestamped is the path's minimum one-way delay plus
// that packet's queueing plus the offset (guest→host; minus it the other
// way). Queueing only ever adds delay, so the estimator keeps a sliding
// window of trips and reads the offset from the floors of the two
// directions' delays: each direction's fastest packet (NTP's minimum-delay
// filter, RFC 5905 §10, per direction). On a jittery path a packet that
// met no queue is rare, which is why the voice's hundreds a second matter:
// the floor of thousands of trips sits far nearer the path's minimum than
// that of a few hundred pings. The drift (ppm) is the tilt of those
// floors, estimated once the window spans MinDriftSpan and shrunk towards
// zero when the floors are too noisy to pin it down. Path asymmetry cannot
// be seen this way: half the difference of the two directions' minimum
// delays shows up as offset (DESIGN.md §5).
//
// Times are passed in (nanoseconds on each side's monotonic clock), so the
// estimator is tested with fake clocks. An Estimator and a Fastest are
// safe for concurrent use.
package clock

import (
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
	// Offset is the host's clock minus the guest's, at the newest trip.
	Offset time.Duration
	// DriftPPM is how fast the offset grows: the host's clock runs that
	// many millionths faster than the guest's.
	DriftPPM float64
	// RTT is the sum of the two floors: the round trip of a packet that
	// met no queue either way.
	RTT time.Duration
	// Dispersion is how far the offsets read from stretches of the window
	// (each stretch's two floors) stray from the estimate, the drift taken
	// out: a quality figure (smaller is better).
	Dispersion time.Duration
	// Uncertainty is the typical size of the offset's error on a path
	// whose two directions have the same minimum delay (jitter may differ):
	// about how far each direction's fastest packet still queued. It is a
	// scale, not a hard bound, and it cannot see a difference between the
	// two directions' minimum delays, half of which shows as offset.
	Uncertainty time.Duration
	// Samples is how many trips the window holds, both directions; Used
	// how many stretches Dispersion is over.
	Samples, Used int
}

// trip is one packet's trip at x nanoseconds on the guest's clock (when it
// left or arrived there), delay d nanoseconds as timestamped (offset
// included: +offset guest→host, −offset host→guest).
type trip struct{ x, d int64 }

// Estimator keeps a sliding window of trips each way. See the package doc.
type Estimator struct {
	mu        sync.Mutex
	out, back []trip // guest→host and host→guest, each in the order added
	window    time.Duration
	newest    int64 // the latest x of either direction
}

// maxTrips bounds each direction's window: an hour of voice at the rate
// the app feeds it would need no more than a few thousand.
const maxTrips = 8192

// New returns an estimator over the trips of the last window (at least a
// second) of the guest's clock. The drift estimate needs tens of seconds.
func New(window time.Duration) *Estimator {
	return &Estimator{window: max(window, time.Second), newest: math.MinInt64}
}

// Add records one ping's exchange as a trip each way; samples whose
// timestamps are not in order (a clock stepped, a corrupt packet) are
// ignored and reported.
func (e *Estimator) Add(s Sample) error {
	if s.T4 < s.T1 || s.T3 < s.T2 || s.Delay() < 0 {
		return ErrBadSample
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keep(&e.out, trip{s.T1, s.T2 - s.T1})
	e.keep(&e.back, trip{s.T4, s.T4 - s.T3})
	return nil
}

// AddForward records a guest→host packet sent at sent on the guest's
// clock and received at received on the host's.
func (e *Estimator) AddForward(sent, received int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keep(&e.out, trip{sent, received - sent})
}

// AddBackward records a host→guest packet sent at sent on the host's clock
// and received at received on the guest's.
func (e *Estimator) AddBackward(sent, received int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keep(&e.back, trip{received, received - sent})
}

// keep appends t to the direction *ts and drops from both directions
// what fell out of the window; e.mu held.
func (e *Estimator) keep(ts *[]trip, t trip) {
	if len(*ts) == maxTrips {
		*ts = slices.Delete(*ts, 0, 1)
	}
	*ts = append(*ts, t)
	if t.x <= e.newest {
		return
	}
	e.newest = t.x
	oldest := e.newest - int64(e.window)
	old := func(t trip) bool { return t.x < oldest }
	e.out = slices.DeleteFunc(e.out, old)
	e.back = slices.DeleteFunc(e.back, old)
}

// ErrBadSample reports timestamps that cannot come from one exchange.
var ErrBadSample = errors.New("clock: timestamps out of order")

// ErrNoSamples is returned by Estimate before a trip each way.
var ErrNoSamples = errors.New("clock: no samples yet")

// MaxDriftPPM bounds the drift estimate: crystals are specified to
// ±100 ppm or better, so two clocks a thousand ppm apart means a bad fit,
// not a real rate.
const MaxDriftPPM = 500

// AgePenaltyPPM is how fast a trip's worth fades with age, in parts per
// million of its age, beyond the drift estimate's own uncertainty: a
// clock's rate wanders (RFC 5905 takes 15 ppm), and the floors that tilt
// the drift estimate come and go with the load on either side.
const AgePenaltyPPM = 15

// MinDriftSpan is how much time the window must span before the drift is
// estimated; below it the estimator takes the clocks to run alike (a
// 100 ppm drift moves the offset by 0.1 ms a second, while a slope fitted
// over a few seconds of jittery floors is wrong by more).
const MinDriftSpan = 4 * time.Second

// Estimate reads the offset from the floors of the two one-way delays.
//
// A guest→host trip's delay as timestamped is the path's minimum one-way
// delay D plus that packet's queueing plus the offset; a host→guest one
// is D plus its queueing minus the offset. Over a window each direction's
// lowest value (its floor) is reached by its luckiest packet, so half the
// difference of the two floors is the offset, wrong only by half the
// difference of the two floors' leftover queueing. The two directions are
// filtered separately: no packet need be fast both ways at once, and
// jitter mostly one way does not bias the estimate.
//
// The drift tilts both floors in opposite directions; once the window
// spans MinDriftSpan it is the slope of lines through the floors of
// stretches of the window, within ±MaxDriftPPM. The floors' noise over
// the window's span gives that slope's uncertainty; it is shrunk towards
// zero in proportion (a prior of ±100 ppm), so a few seconds of a jittery
// path do not tilt the offset more than the drift itself would. What
// uncertainty remains makes an old trip worth less than a new one (see
// lowest): on the real stack, where the load on either machine raises a
// direction's floor for seconds at a time, the drift fitted over 30 s
// was off by 30–50 ppm, and an old floor carried that error times its age
// into the offset (0.7 ms on the continent path).
func (e *Estimator) Estimate() (Estimate, error) {
	e.mu.Lock()
	out, back, newest := slices.Clone(e.out), slices.Clone(e.back), e.newest
	e.mu.Unlock()
	if len(out) == 0 || len(back) == 0 {
		return Estimate{}, ErrNoSamples
	}
	// Times relative to the newest trip, so the floors are the offset now.
	po, pb := points(out, newest), points(back, newest)
	oldest := 0.0
	for _, p := range slices.Concat(po, pb) {
		oldest = min(oldest, p.x)
	}
	span := -oldest
	slope, phi := 0.0, 0.0
	if time.Duration(span) >= MinDriftSpan {
		slope, phi = fitDrift(po, pb, oldest, span)
	}
	phi += AgePenaltyPPM * 1e-6
	fOut, fBack := lowest(po, slope, phi), lowest(pb, -slope, phi)
	offset := (fOut.low - fBack.low) / 2

	// Quality: each floor's gap to its runner-up is the scale of its own
	// leftover queueing (for a delay density that is flat near its
	// minimum, the lowest of n values sits above the true minimum by about
	// the gap between the lowest two).
	unc := math.Hypot(fOut.gap(), fBack.gap()) / 2
	so, sb := segmentFloors(po, oldest, span), segmentFloors(pb, oldest, span)
	var ss float64
	used := 0
	for i := range so {
		if math.IsInf(so[i].y, 1) || math.IsInf(sb[i].y, 1) {
			continue
		}
		r := (so[i].y-slope*so[i].x-(sb[i].y+slope*sb[i].x))/2 - offset
		ss += r * r
		used++
	}
	est := Estimate{
		Offset:      time.Duration(math.Round(offset)),
		DriftPPM:    slope * 1e6,
		RTT:         time.Duration(math.Round(fOut.low - fOut.penalty + fBack.low - fBack.penalty)),
		Uncertainty: time.Duration(math.Round(unc)),
		Samples:     len(out) + len(back),
		Used:        used,
	}
	if used > 0 {
		est.Dispersion = time.Duration(math.Sqrt(ss / float64(used)))
	}
	return est, nil
}

// point is a trip at x nanoseconds from the newest, delay y nanoseconds.
type point struct{ x, y float64 }

func points(ts []trip, newest int64) []point {
	ps := make([]point, len(ts))
	for i, t := range ts {
		ps[i] = point{float64(t.x - newest), float64(t.d)}
	}
	return ps
}

// floor is a direction's lowest de-trended delay and its runner-up, and
// the lowest's age penalty (included in low).
type floor struct{ low, next, penalty float64 }

func (f floor) gap() float64 {
	if math.IsInf(f.next, 1) {
		return 0
	}
	return f.next - f.low
}

// lowest returns the floor of ps once a drift of slope (nanoseconds per
// nanosecond, the delays' tilt) is taken out, each point counted phi
// nanoseconds per nanosecond of its age higher: how much the drift's
// uncertainty may have moved it since (RFC 5905's dispersion growth).
// The floors are read for their difference, which the penalty leaves
// alone; it only prefers a recent packet to an old one a little faster.
func lowest(ps []point, slope, phi float64) floor {
	f := floor{low: math.Inf(1), next: math.Inf(1)}
	for _, p := range ps {
		switch v := p.y - slope*p.x - phi*p.x; {
		case v < f.low:
			f.low, f.next, f.penalty = v, f.low, -phi*p.x
		case v < f.next:
			f.next = v
		}
	}
	return f
}

// driftSegments is how many stretches of the window fitDrift takes a
// floor from.
const driftSegments = 8

// segmentFloors returns the lowest point of each of driftSegments equal
// stretches of span nanoseconds from first; +Inf where a stretch is empty.
func segmentFloors(ps []point, first, span float64) []point {
	segs := make([]point, driftSegments)
	for i := range segs {
		segs[i].y = math.Inf(1)
	}
	for _, p := range ps {
		i := 0
		if span > 0 {
			i = min(max(int((p.x-first)/span*driftSegments), 0), driftSegments-1)
		}
		if p.y < segs[i].y {
			segs[i] = p
		}
	}
	return segs
}

// fitDrift estimates the drift from the floors of each direction in
// driftSegments equal stretches of the window: a least-squares line
// through each direction's segment floors (the forward floor rises with
// the drift, the return one falls). The mean of the two slopes is shrunk
// towards zero by its uncertainty (the floors' scatter about their lines,
// or the two slopes' disagreement, whichever is larger) against a prior
// of ±100 ppm, then clamped to ±MaxDriftPPM.
func fitDrift(out, back []point, first, span float64) (slope, sigma float64) {
	line := func(ps []point) (slope, stderr float64) {
		var x, y []float64
		for _, s := range segmentFloors(ps, first, span) {
			if !math.IsInf(s.y, 1) {
				x, y = append(x, s.x), append(y, s.y)
			}
		}
		return lineSlope(x, y)
	}
	sOut, eOut := line(out)
	sBack, eBack := line(back)
	slope = (sOut - sBack) / 2
	sigma = max(math.Hypot(eOut, eBack)/2, math.Abs(sOut+sBack)/2)
	const prior = 100e-6
	slope *= prior * prior / (prior*prior + sigma*sigma)
	post := prior * sigma / math.Hypot(prior, sigma)
	if math.IsNaN(post) || math.IsInf(sigma, 1) {
		post = prior
	}
	return min(max(slope, -MaxDriftPPM*1e-6), MaxDriftPPM*1e-6), post
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

// Heard is one side's report of the fastest of its partner's voice
// packets over an interval: the partner's Stamp on it and when it arrived
// on the reporter's clock. Its wire format is a type byte, the stamp (big-endian
// uint32) and the arrival (big-endian int64).
const (
	heardType = 3
	HeardSize = 1 + 4 + 8
)

// AppendHeard appends a Heard message to b.
func AppendHeard(b []byte, stamp uint32, received int64) []byte {
	b = append(b, heardType)
	b = binary.BigEndian.AppendUint32(b, stamp)
	return binary.BigEndian.AppendUint64(b, uint64(received))
}

// ParseHeard returns a Heard message's stamp and arrival.
func ParseHeard(b []byte) (stamp uint32, received int64, err error) {
	if len(b) != HeardSize || b[0] != heardType || binary.BigEndian.Uint32(b[1:]) >= stampModulus {
		return 0, 0, ErrMessage
	}
	return binary.BigEndian.Uint32(b[1:]), int64(binary.BigEndian.Uint64(b[5:])), nil
}

// A Stamp is a send time as a voice packet carries it, in three bytes:
// the sender's clock in microseconds modulo 2^24 (16.8 s). The receiver
// reads it back (Unstamp) against a time it knows to within a few seconds.
const (
	StampSize    = 3
	stampModulus = 1 << 24
)

// Stamp returns the stamp of time ns.
func Stamp(ns int64) uint32 {
	us := ns / 1000
	if ns < 0 && ns%1000 != 0 {
		us-- // floor, so a stamp is the same whatever side of zero
	}
	return uint32(us) & (stampModulus - 1)
}

// Unstamp returns the time (in ns, whole microseconds) nearest to near
// whose stamp is s.
func Unstamp(s uint32, near int64) int64 {
	return floorDiv(near, 1000)*1000 + stampDiff(s, Stamp(near))
}

// stampDiff returns a − b in nanoseconds, the two stamps taken to be
// within 2^23 µs (8.4 s) of each other.
func stampDiff(a, b uint32) int64 {
	d := int64(a) - int64(b)
	return ((d+stampModulus/2)&(stampModulus-1) - stampModulus/2) * 1000
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Fastest keeps, of one direction's packets over an interval, the one
// that took least time as timestamped: its sender's Stamp and its arrival
// on the receiver's clock (ns). Add comes from the packets' goroutine,
// Take from whoever reports or records it. Safe for concurrent use; the
// zero value is empty.
type Fastest struct {
	mu    sync.Mutex
	have  bool
	stamp uint32
	at    int64
}

// Add offers a packet stamped stamp that arrived at at.
func (f *Fastest) Add(stamp uint32, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.have {
		// This packet's delay minus the kept one's: the arrivals' gap
		// less the sends' (read from the stamps, which an interval's
		// packets are far too close for the modulus to confuse).
		if at-f.at-stampDiff(stamp, f.stamp) >= 0 {
			return
		}
	}
	f.have, f.stamp, f.at = true, stamp, at
}

// Take returns the fastest packet since the last Take and forgets it; ok
// is false if none came.
func (f *Fastest) Take() (stamp uint32, at int64, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stamp, at, ok = f.stamp, f.at, f.have
	f.have = false
	return stamp, at, ok
}
