package record

import (
	"errors"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
)

// maxLane bounds how far ahead of the files a lane holds audio.
const maxLane = 30 * audio.SampleRate

// writer is the writer goroutine's state.
type writer struct {
	t       *Take
	flushed int64 // track position up to which the files are written
	head    int64 // end of the host's voice so far
	host    []float32
	guest   []float32

	dec      *codec.Switch
	pending  map[int64]guestPacket // undecoded guest packets by unwrapped RTP time
	newest   int64                 // newest unwrapped RTP time seen
	next     int64                 // RTP time of the next sample to decode
	guestNo  uint32                // the guest whose packets these are
	pairs    []pair                // and its reports, as sent
	started  bool                  // a packet came: newest and next mean something
	decoding bool                  // decoding began: next only moves on
	guestEnd int64                 // track position after the last guest sample placed
	last     float32
	pcm      []float32
}

// guestPacket is an undecoded packet of the guest's voice.
type guestPacket struct {
	kind codec.Kind
	data []byte
}

func (t *Take) run() {
	defer close(t.done)
	dec, err := codec.NewSwitch()
	if err != nil {
		t.err = err
		t.closeFiles()
		return
	}
	w := &writer{t: t, flushed: t.cfg.Start, head: t.cfg.Start, dec: dec,
		pending: map[int64]guestPacket{}, pcm: make([]float32, 5760)}
	defer func() { w.dec.Close() }()
	tick := time.NewTicker(t.cfg.Flush)
	defer tick.Stop()
	hold := int64(audio.Samples(t.cfg.Hold))
	for {
		select {
		case <-t.stop:
			w.drain(0)
			err := w.flush(w.head)
			t.err = errors.Join(err, t.closeFiles())
			return
		case <-tick.C:
		}
		w.drain(hold / 2)
		if err := w.flush(w.head - hold); err != nil {
			t.err = errors.Join(err, t.closeFiles())
			t.log.Error("recording stopped", "err", err)
			<-t.stop // keep the error for Close
			return
		}
	}
}

func (t *Take) closeFiles() error {
	var errs []error
	for _, f := range t.files {
		if f != nil {
			errs = append(errs, f.close())
		}
	}
	return errors.Join(errs...)
}

// lane returns where position pos of a lane is, growing it; -1 if pos is
// already written or too far ahead.
func (w *writer) index(lane *[]float32, pos int64) int {
	i := pos - w.flushed
	if i < 0 || i >= maxLane {
		return -1
	}
	if int(i) >= len(*lane) {
		*lane = append(*lane, make([]float32, int(i)+1-len(*lane))...)
	}
	return int(i)
}

// put writes p into a lane from position pos; what falls outside is
// counted as dropped.
func (w *writer) put(lane *[]float32, pos int64, p []float32) {
	for k, v := range p {
		at := pos + int64(k)
		if i := w.index(lane, at); i >= 0 {
			(*lane)[i] = v
		} else if at >= w.t.cfg.Start {
			w.t.dropped.Add(1) // too late, or too far ahead
		} // before the take began: not part of it
	}
}

// drain takes everything the rings hold and decodes the guest's voice up
// to hold samples behind the newest packet (0: all of it).
func (w *writer) drain(hold int64) {
	t := w.t
	var b [1]block
	for t.host.Read(b[:]) == 1 {
		if b[0].pos-w.flushed >= maxLane {
			t.dropped.Add(int64(b[0].n)) // a jump far ahead: not this take's
			continue
		}
		w.put(&w.host, b[0].pos, b[0].data[:b[0].n])
		w.head = max(w.head, b[0].pos+int64(b[0].n))
	}
	var live [1024]float32
	for {
		n := t.live.Read(live[:])
		if n == 0 {
			break
		}
		if err := t.files[4].write(live[:n]); err != nil {
			t.log.Warn("live recording", "err", err)
		}
	}
	var p [1]packet
	for t.packets.Read(p[:]) == 1 {
		if g := p[0].guest; g != w.guestNo {
			if int32(g-w.guestNo) < 0 {
				continue // an earlier guest's, late
			}
			w.newGuest(g)
		}
		u := int64(p[0].ts)
		if w.started {
			u = unwrap(w.newest, p[0].ts)
		} else {
			w.started, w.next, w.newest = true, u, u
		}
		if !w.decoding {
			w.next = min(w.next, u) // the first packets may come out of order
		}
		if u < w.next || len(w.pending) >= 1000 {
			t.dropped.Add(1) // decoded past it already, or flooded
			continue
		}
		w.newest = max(w.newest, u)
		w.pending[u] = guestPacket{p[0].kind, slices.Clone(p[0].data[:p[0].n])}
	}
	w.decode(hold)
}

// newGuest finishes the last guest's voice and starts guest g's.
func (w *writer) newGuest(g uint32) {
	w.decode(0)
	w.pairs = w.pairs[:0]
	w.guestNo = g
	w.started, w.decoding = false, false
	clear(w.pending)
	if dec, err := codec.NewSwitch(); err == nil {
		w.dec.Close()
		w.dec = dec // fresh decoders: no state from the last voice
	}
}

// maxConceal is the longest gap in the guest's voice filled by Opus's
// concealment; a longer one (a dropout, a stalled guest) stays silent.
const maxConceal = audio.SampleRate

// decode turns pending packets into samples on the track's timeline, in
// RTP order, concealing a gap once nothing can fill it any more.
func (w *writer) decode(hold int64) {
	t := w.t
	t.mu.Lock()
	if t.guest.Load() == w.guestNo {
		w.pairs = append(w.pairs[:0], t.pairs...)
	} // else the reports are a newer guest's: finish this one's with its own
	t.mu.Unlock()
	if len(w.pairs) == 0 || !w.started {
		return // nowhere to put the voice yet
	}
	pairs := slices.Clone(w.pairs)
	for i := range pairs { // onto the packets' unwrapped timeline
		pairs[i].ts = unwrap(w.newest, uint32(pairs[i].ts))
	}
	for len(w.pending) > 0 {
		w.decoding = true
		if p, ok := w.pending[w.next]; ok {
			delete(w.pending, w.next)
			n, err := w.dec.Decode(p.kind, p.data, w.pcm)
			if err != nil || n == 0 {
				t.dropped.Add(1)
				continue // a broken packet: the gap gets concealed
			}
			w.place(pairs, w.next, w.pcm[:n])
			w.next += int64(n)
			continue
		}
		// A gap: conceal it once the hold has passed it, or at the end.
		nextHeld := int64(math.MaxInt64)
		for u := range w.pending {
			nextHeld = min(nextHeld, u)
		}
		if hold > 0 && nextHeld > w.newest-hold {
			return
		}
		if nextHeld-w.next > maxConceal {
			w.next = nextHeld
			continue
		}
		gap := min(nextHeld-w.next, int64(len(w.pcm)))
		if err := w.dec.Conceal(w.pcm[:gap]); err != nil {
			clear(w.pcm[:gap])
		}
		w.place(pairs, w.next, w.pcm[:gap])
		w.next += gap
	}
}

// place writes the guest's samples p, from RTP time u, at the track
// positions the guest reported. Consecutive pieces whose positions differ
// by a sample or two (the two sound cards' drift) are joined by repeating
// the last sample or overwriting the first.
func (w *writer) place(pairs []pair, u int64, p []float32) {
	// The codec's look-ahead delays what it decodes: the sample decoded
	// at u was sung at u − look-ahead (Opus 2.5 ms, Opus Custom 1.33 ms,
	// PCM none; during a change of codec, the new one's).
	lookahead := int64(audio.Samples(codec.FormatOf(w.dec.Kind()).Lookahead()))
	pos := int64(math.Round(positionAt(pairs, u-lookahead)))
	if gap := pos - w.guestEnd; gap > 0 && gap <= 2 {
		for k := range gap {
			w.put(&w.guest, w.guestEnd+k, []float32{w.last})
		}
	}
	w.put(&w.guest, pos, p)
	w.guestEnd = pos + int64(len(p))
	w.last = p[len(p)-1]
}

// positionAt reads the guest's reports (track position against RTP
// time, in order) at u: between two reports by straight interpolation
// (the guest's rate changes only a little between them), beyond them from
// the nearest pair at the rate of the pairs at least slopeSpan apart
// around it, or at 1 (the two clocks' nominal rate) if there are none: an
// estimate's pairs are a fraction of a millisecond uncertain, and over a
// short span that is no rate at all (two 30 ms apart, 0.5 ms off, once
// put a browser's voice 19 ms early for half a second).
func positionAt(pairs []pair, u int64) float64 {
	i := sort.Search(len(pairs), func(i int) bool { return pairs[i].ts > u })
	switch {
	case i == 0: // before the first
		return extrapolate(pairs[0], pairs, u)
	case i == len(pairs): // after the last
		return extrapolate(pairs[i-1], pairs, u)
	}
	a, b := pairs[i-1], pairs[i]
	slope := (b.pos - a.pos) / float64(b.ts-a.ts) // ts strictly rises (addPair)
	return a.pos + slope*float64(u-a.ts)
}

// slopeSpan is how far apart, in samples, two pairs must be for their
// rate to be the guest's: 2 s, over which drift shows (100 ppm: 0.2 ms)
// and an estimate's uncertainty (a fraction of a millisecond) hardly.
const slopeSpan = 2 * audio.SampleRate

// extrapolate reads u from the end pair e of pairs, at the rate between e
// and the nearest pair slopeSpan or more from it; at 1 if none is that far.
func extrapolate(e pair, pairs []pair, u int64) float64 {
	slope, nearest := 1.0, int64(math.MaxInt64)
	for _, o := range pairs {
		if d := max(o.ts-e.ts, e.ts-o.ts); d >= slopeSpan && d < nearest {
			slope, nearest = (o.pos-e.pos)/float64(o.ts-e.ts), d
		}
	}
	return e.pos + slope*float64(u-e.ts)
}

// flush writes the files up to track position upto.
func (w *writer) flush(upto int64) error {
	for w.flushed < upto {
		if err := w.flushSome(min(upto, w.flushed+audio.SampleRate)); err != nil {
			return err
		}
	}
	return nil
}

// flushSome writes the files up to track position upto, a second at most
// ahead of what is written.
func (w *writer) flushSome(upto int64) error {
	n := int(upto - w.flushed)
	t := w.t
	grow := func(lane *[]float32) []float32 {
		if len(*lane) < n {
			*lane = append(*lane, make([]float32, n-len(*lane))...)
		}
		return (*lane)[:n]
	}
	host, guest := grow(&w.host), grow(&w.guest)
	tr := make([]float32, n)
	if t.cfg.Track != nil {
		s := t.cfg.Track.Samples
		for i := range tr {
			if p := w.flushed + int64(i); p >= 0 && p < int64(len(s)) {
				tr[i] = s[p]
			}
		}
	}
	mix := make([]float32, n)
	for i := range mix {
		mix[i] = host[i] + guest[i] + tr[i]
	}
	for i, p := range [][]float32{host, guest, tr, mix} {
		if err := t.files[i].write(p); err != nil {
			return err
		}
	}
	for _, f := range t.files {
		if err := f.patch(); err != nil {
			return err
		}
	}
	w.host = slices.Delete(w.host, 0, n)
	w.guest = slices.Delete(w.guest, 0, n)
	w.flushed = upto
	t.written.Store(upto - t.cfg.Start)
	return nil
}
