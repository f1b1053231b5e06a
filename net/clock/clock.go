// Package clock estimates the offset and drift between the guest's clock
// and the host's (the session clock) from NTP's four-timestamp exchange:
// the guest stamps a ping when it leaves (t1), the host when it arrives (t2)
// and when its pong leaves (t3), the guest when the pong arrives (t4).
//
//	offset = ((t2 − t1) + (t3 − t4)) / 2    host clock minus guest clock
//	delay  = (t4 − t1) − (t3 − t2)          the network round trip
//
// Queueing only ever adds delay, and the error of a sample's offset is at
// most half its delay's excess over the true round trip, so the estimator
// keeps a sliding window of samples and trusts the fastest ones: a line
// fitted through the minimum-delay samples gives the offset now and the
// drift (ppm). Path asymmetry cannot be seen this way: half of it shows up
// as offset (DESIGN.md §5).
//
// Times are passed in (nanoseconds on each side's monotonic clock), so the
// estimator is tested with fake clocks. An Estimator is safe for concurrent
// use.
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
	// Offset is the host's clock minus the guest's, at the newest sample.
	Offset time.Duration
	// DriftPPM is how fast the offset grows: the host's clock runs that
	// many millionths faster than the guest's.
	DriftPPM float64
	// RTT is the smallest round trip in the window.
	RTT time.Duration
	// Dispersion is the spread of the offsets of the samples used around
	// the fitted line: a quality figure (smaller is better).
	Dispersion time.Duration
	// Samples is how many samples the window holds; Used how many were
	// fast enough to use.
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

// Estimate fits a line through the window's fastest eighth of samples (at
// least three, or all when there are fewer): their offsets are the least
// disturbed by queueing.
func (e *Estimator) Estimate() (Estimate, error) {
	e.mu.Lock()
	window := slices.Clone(e.window)
	e.mu.Unlock()
	if len(window) == 0 {
		return Estimate{}, ErrNoSamples
	}
	byDelay := slices.Clone(window)
	slices.SortFunc(byDelay, func(a, b Sample) int { return int(a.Delay() - b.Delay()) })
	minDelay := byDelay[0].Delay()
	used := byDelay[:min(len(byDelay), max(3, len(byDelay)/8))]
	// Least squares of offset against the guest's time, centred on the
	// newest sample so the intercept is the offset now.
	now := window[len(window)-1].T4
	var sx, sy, sxx, sxy float64
	for _, s := range used {
		x := float64(s.T1+s.T4)/2 - float64(now)
		y := float64(s.Offset())
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	n := float64(len(used))
	slope := 0.0
	if d := n*sxx - sx*sx; len(used) >= 3 && d > 0 {
		slope = (n*sxy - sx*sy) / d
	}
	intercept := (sy - slope*sx) / n
	var ss float64
	for _, s := range used {
		x := float64(s.T1+s.T4)/2 - float64(now)
		r := float64(s.Offset()) - (intercept + slope*x)
		ss += r * r
	}
	return Estimate{
		Offset:     time.Duration(math.Round(intercept)),
		DriftPPM:   slope * 1e6,
		RTT:        minDelay,
		Dispersion: time.Duration(math.Sqrt(ss / n)),
		Samples:    len(window),
		Used:       len(used),
	}, nil
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
