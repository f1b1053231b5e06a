package jitter

import "slices"

// delayWindow estimates how much playout delay the link needs, NetEQ-style:
// each packet's relative delay is its arrival time less its RTP timestamp
// (both in samples), measured against the fastest packet of the last two
// seconds, so the two clocks' offset cancels; the needed delay is a high
// quantile of those. It also keeps RFC 3550's interarrival jitter. Owned
// by the audio thread.
type delayWindow struct {
	quantile float64
	arrivals []int64 // arrival − timestamp, in samples, a ring
	times    []int64 // arrival, in samples, of each entry
	n, at    int
	scratch  []int64
	since    int   // inserts since the quantile was last computed
	needed   int64 // the last computed quantile, samples
	fastest  int64 // the least transit in the window, samples

	highTS  int64 // highest unwrapped timestamp seen
	started bool
	prev    int64   // previous transit, for jitter
	jitter  float64 // RFC 3550 interarrival jitter, samples
}

// window is how far back the estimate looks, in samples.
const window = 2 * 48000

// release is how far the need may fall per estimate (every 16 packets:
// 80 ms of 5 ms packets), in samples: 2.5 ms a second.
const release = 10

func newDelayWindow(quantile float64) *delayWindow {
	const size = 1024 // 2 s of 2.5 ms packets
	return &delayWindow{
		quantile: quantile,
		arrivals: make([]int64, size),
		times:    make([]int64, size),
		scratch:  make([]int64, size),
	}
}

// reset forgets every packet, keeping the memory: it runs on the audio
// thread, which must not allocate.
func (w *delayWindow) reset() {
	*w = delayWindow{quantile: w.quantile, arrivals: w.arrivals, times: w.times, scratch: w.scratch}
}

// add takes one packet's 32-bit RTP timestamp and arrival time (samples).
func (w *delayWindow) add(ts uint32, arrival int64) {
	var ext int64
	if !w.started {
		ext = int64(ts)
		w.started = true
	} else {
		ext = w.highTS + int64(int32(ts-uint32(w.highTS)))
	}
	w.highTS = max(w.highTS, ext)
	transit := arrival - ext
	if w.n > 0 {
		d := float64(transit - w.prev)
		if d < 0 {
			d = -d
		}
		w.jitter += (d - w.jitter) / 16
	}
	w.prev = transit
	w.arrivals[w.at] = transit
	w.times[w.at] = arrival
	w.at = (w.at + 1) % len(w.arrivals)
	w.n = min(w.n+1, len(w.arrivals))
	if w.since++; w.since >= 16 || w.n < 16 {
		w.since = 0
		// Quick to grow, slow to shrink: a spike that leaves the window
		// may come again, so the need falls back gently.
		w.needed = max(w.compute(arrival), w.needed-release)
	}
}

// compute returns the quantile of relative delay over the window ending at
// now.
func (w *delayWindow) compute(now int64) int64 {
	vals := w.scratch[:0]
	for i := range w.n {
		if now-w.times[i] <= window {
			vals = append(vals, w.arrivals[i])
		}
	}
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	w.fastest = vals[0]
	k := min(len(vals)-1, int(w.quantile*float64(len(vals))))
	return vals[k] - vals[0]
}

// lag returns how long after the fastest recent packets' pace a packet
// with timestamp ts plays when it plays at played (samples, on the arrival
// clock): the playout's delay, whatever the two clocks' offset.
func (w *delayWindow) lag(ts uint32, played int64) int64 {
	ext := w.highTS + int64(int32(ts-uint32(w.highTS)))
	return played - ext - w.fastest
}
