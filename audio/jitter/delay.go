package jitter

import "slices"

// delayWindow estimates how much playout delay the link needs, NetEQ-style,
// but measured where it matters: each packet's transit is the instant of
// the first read it was in for (its availability, on the reads' clock)
// less its RTP timestamp, both in samples. A packet that comes between two
// reads counts from the second: the device's block and the sender's
// framing are in the figure once, as they are in the path, and not again on
// top. The need is a high quantile of the transits of the last two seconds:
// a packet whose transit is within it is in by the read that decodes it if
// the playout plays it that long after its timestamp, plus what playout
// itself takes (see Playout). The clocks' offset is in every transit and
// in the play times alike, so it cancels.
//
// It also keeps RFC 3550's interarrival jitter, and the least transit of
// the arrivals (not the reads), for reporting the delay from the fastest
// packets' arrival. Owned by the audio thread.
type delayWindow struct {
	quantile float64
	transits []int64 // availability − timestamp, samples, a ring
	arrivals []int64 // arrival − timestamp, samples
	times    []int64 // availability, samples
	n, at    int
	scratch  []int64
	since    int   // inserts since the quantile was last computed
	computed int64 // availability at the last estimate
	needed   int64 // the last estimate, a transit, samples
	known    bool  // needed is set
	// held: playout has started, and the need falls only as fast as
	// releasePer lets it. Before, it is the plain quantile of what has
	// been measured: nothing plays yet that a fall could starve.
	held    bool
	fastest int64 // the least transit in the window
	arrived int64 // the least arrival transit in the window

	// The least arrival transit of each quarter window, the last few,
	// and when: their slope is the sender's clock drift.
	marks    [16]int64
	markedAt [16]int64
	nMarks   int
	least    int64 // of the quarter so far
	since0   int64 // when the quarter began

	first    int64 // availability of the first packet since reset
	latest   int64 // availability of the latest
	highTS   int64 // highest unwrapped timestamp seen
	started  bool
	prev     int64   // previous arrival transit, for jitter
	jitter   float64 // RFC 3550 interarrival jitter, samples
	jittered bool
}

// window is how far back the estimate looks, in samples.
const window = 2 * 48000

// releasePer is how fast the need may fall: one sample per releasePer
// samples of time (2.5 ms a second). Quick to grow, slow to shrink: a
// spike that leaves the window may come again.
const releasePer = 400

func newDelayWindow(quantile float64) *delayWindow {
	const size = 2048 // 2.7 s of 64-sample packets
	return &delayWindow{
		quantile: quantile,
		transits: make([]int64, size),
		arrivals: make([]int64, size),
		times:    make([]int64, size),
		scratch:  make([]int64, size),
	}
}

// reset forgets every packet, keeping the memory: it runs on the audio
// thread, which must not allocate.
func (w *delayWindow) reset() {
	*w = delayWindow{quantile: w.quantile, transits: w.transits, arrivals: w.arrivals, times: w.times, scratch: w.scratch}
}

// unwrap extends a 32-bit RTP timestamp to the 64-bit count nearest the
// highest seen.
func (w *delayWindow) unwrap(ts uint32) int64 {
	if !w.started {
		return int64(ts)
	}
	return w.highTS + int64(int32(ts-uint32(w.highTS)))
}

// add takes one packet's RTP timestamp, the instant of the first read it
// was in for and its arrival (samples, on one clock).
func (w *delayWindow) add(ts uint32, avail, arrival int64) {
	ext := w.unwrap(ts)
	if !w.started {
		w.started, w.highTS, w.first = true, ext, avail
	}
	w.highTS = max(w.highTS, ext)
	w.latest = max(w.latest, avail)
	transit := arrival - ext
	if w.jittered {
		d := float64(transit - w.prev)
		if d < 0 {
			d = -d
		}
		w.jitter += (d - w.jitter) / 16
	}
	w.prev, w.jittered = transit, true
	if w.since0 == 0 || transit < w.least {
		w.least = transit
	}
	if w.since0 == 0 {
		w.since0 = avail
	} else if avail-w.since0 >= window/4 {
		at := w.nMarks % len(w.marks)
		w.marks[at], w.markedAt[at] = w.least, avail
		w.nMarks++
		w.since0, w.least = avail, transit
	}
	w.transits[w.at] = avail - ext
	w.arrivals[w.at] = transit
	w.times[w.at] = avail
	w.at = (w.at + 1) % len(w.transits)
	w.n = min(w.n+1, len(w.transits))
	if w.since++; w.since >= 16 || w.n < 16 {
		w.since = 0
		q := w.compute(avail)
		if w.known && w.held {
			q = max(q, w.needed-(avail-w.computed)/releasePer)
		}
		w.needed, w.known, w.computed = q, true, avail
	}
}

// creep returns how fast transits rise, in samples per sample (a sender's
// clock running slow), from the fastest arrivals over up to 8 s; 0 while
// they fall or stay, or less than a second is known.
func (w *delayWindow) creep() float64 {
	if w.nMarks < 3 {
		return 0
	}
	newest := (w.nMarks - 1) % len(w.marks)
	oldest := 0
	if w.nMarks > len(w.marks) {
		oldest = w.nMarks % len(w.marks)
	}
	dt := w.markedAt[newest] - w.markedAt[oldest]
	if dt <= 0 {
		return 0
	}
	return max(0, float64(w.marks[newest]-w.marks[oldest])/float64(dt))
}

// compute returns the quantile of transits over the window ending at now,
// and notes the least transits.
func (w *delayWindow) compute(now int64) int64 {
	vals := w.scratch[:0]
	first := true
	for i := range w.n {
		if now-w.times[i] <= window {
			vals = append(vals, w.transits[i])
			if first || w.arrivals[i] < w.arrived {
				w.arrived, first = w.arrivals[i], false
			}
		}
	}
	if len(vals) == 0 {
		return w.needed
	}
	slices.Sort(vals)
	w.fastest = vals[0]
	k := min(len(vals)-1, int(w.quantile*float64(len(vals))))
	if s := min(len(vals)-1, int(freeQuantile*float64(len(vals)))); s > k && vals[s]-vals[k] <= freeWait {
		k = s
	}
	return vals[k]
}

// Waiting for freeQuantile of the packets instead of the quantile asked
// for, when that costs at most freeWait samples more: on a clean path the
// transits sit on a few steps of the reads' grid and the two quantiles
// mostly agree, while every packet the higher one waits for is a
// concealment fewer; on a jittery path they are milliseconds apart and
// the user's bias holds.
const (
	freeQuantile = 0.998
	freeWait     = 12 // 0.25 ms
)

// span returns how long packets have been measured since the reset, in
// samples.
func (w *delayWindow) span() int64 {
	if !w.started {
		return 0
	}
	return w.latest - w.first
}
