// Package jitter is Duet's playout of one incoming voice.
//
// Buffer puts packets back in sequence order, starts playing once it holds
// its target delay, decodes on demand when the audio thread asks for
// samples, and conceals what is missing with the decoder's packet-loss
// concealment; a packet that is only late is waited for in short steps
// (Config.WaitStep: a fraction of a frame where the codec allows).
// Playout wraps a Buffer and adapts: it starts at the delay the link
// measures, its target follows the link's measured jitter, and it follows
// the target, and the sender's clock drift, by playing a hair faster or
// slower through a resampler (see Playout).
// Frames recovered from redundancy (RFC 2198, net/red) go in through
// InsertRecovered and fill only gaps still ahead of playout.
//
// Units: sequence numbers are RTP's 16-bit counters (unwrapped here to 64
// bits); delays and frames are samples at 48 kHz. Buffers and Playouts
// belong to the audio thread: Insert and Read must be called from one
// goroutine (the network side hands packets over through a lock-free
// ring). Stats is safe from any goroutine.
package jitter

import (
	"sync/atomic"
	"time"
)

// Decoder decodes one packet or conceals one missing frame. It is satisfied
// by *codec.Decoder. Decode may write up to maxDecoded samples.
type Decoder interface {
	Decode(packet []byte, pcm []float32) (int, error)
	Conceal(pcm []float32) error
}

// framer is a Decoder whose Decode may write a few more or fewer samples
// than the packet holds, where the voice's delay through the codec is kept
// across a change of codec (codec.Switch.KeepDelay); Frame is what the
// last packet held. The playout steers the difference away like any
// other; a lost packet's time is its frame, not what the last Decode
// wrote (which, lost after lost, moved the voice by the difference each
// time).
type framer interface{ Frame() int }

// Config sets a Buffer's shape.
type Config struct {
	// Frame is the samples per packet the sender uses; it sizes concealment
	// until the first packet has been decoded.
	Frame int
	// Target is the delay, in samples, buffered before a bare Buffer
	// starts playing. A Playout ignores it: it starts at the delay it
	// measures.
	Target int
	// Capacity is how many packets the buffer holds; later packets reset
	// it. 0 means half a second of frames, and at least 64.
	Capacity int
	// MaxPacket is the largest payload in bytes.
	MaxPacket int
	// WaitStep is how much is concealed at a time while waiting for a late
	// packet, in samples: the smallest concealment the decoder can make
	// (standard Opus: 120, 2.5 ms; Opus Custom: its frame, e.g. 64; PCM:
	// any). Each wait adds its step to the delay, so the shorter the
	// better. 0 means Frame.
	WaitStep int
	// WaitLimit is how long to wait for one late packet, in samples,
	// before counting it lost (its time is concealed, it is dropped if it
	// comes): each wait adds to the delay for good, so a spike must not
	// add all of itself. 0 waits up to the 100 ms after which the stream
	// counts as stopped. A Playout also waits only while it is below its
	// target, by at most half a step beyond it.
	WaitLimit int
	// Played, if set, is told each packet's RTP timestamp, arrival and
	// when its first sample plays, as it is decoded (on a Playout's clock;
	// a bare Buffer has no clock and never calls it). It is for
	// measurement: it runs on the audio thread and must not block.
	Played func(ts uint32, arrival, played time.Duration)
}

// giveUpSamples is how much audio in a row may be concealed before the buffer
// decides the stream has stopped, goes quiet and waits to refill.
const giveUpSamples = 4800 // 100 ms

// maxDecoded is the decode buffer's length: the longest Opus frame (20 ms,
// 960 samples) and a change of codec's look-ahead (codec.MaxDecoded).
const maxDecoded = 960 + 120

type slot struct {
	seq       int64 // unwrapped sequence number held, or -1
	recovered bool  // from redundancy: its own packet may still come
	n         int
	data      []byte
	ts        uint32
	arrival   time.Duration
}

// Buffer is a fixed-delay jitter buffer. See the package doc.
type Buffer struct {
	cfg    Config
	dec    Decoder
	framer framer // dec, if it says its packets' own length; else nil
	slots  []slot

	started bool  // a packet has set next
	playing bool  // target reached; reading advances next
	manual  bool  // a Playout starts it (start), not the Target
	next    int64 // unwrapped sequence number to play next
	highest int64 // highest unwrapped sequence number seen
	first   int64 // first sequence number since the last reset
	// fresh: the segment began a stream (not a jump within one), so a
	// packet sent before its first, reordered behind it, was expected
	// too: first moves down to it.
	fresh bool
	// expectedBefore counts the packets expected in segments before the
	// last reset, for PacketsLost.
	expectedBefore int64

	pcm    [maxDecoded]float32
	pcmPos int
	pcmLen int
	frame  int // samples per frame, from the last decode

	concealing     bool
	exp            expander // conceals a voiced stretch (see expander)
	concealedInRow int
	waited         int // samples concealed while waiting for next
	// lastDecoded is the last packet decoded since the stream began (-1
	// none); stalled is set when playout gave up on a stream that stopped
	// (giveUpSamples), stallConcealed what it had concealed by then: when
	// the stream comes back, the time it was away is concealment too.
	lastDecoded    int64
	lastEnd        uint32 // its timestamp plus its length
	stalled        bool
	stallConcealed int

	// While a Playout reads: when out[0] of the current read plays (on its
	// clock), and the target then, in samples. playAt < 0: no clock.
	playAt time.Duration
	target int
	// room is how much more delay waiting may add, in samples: a Playout
	// below its target grows by waiting, one at its target does not.
	room int
	// The last packet decoded under a clock: its timestamp, when its
	// first sample plays and where in the read it starts; played is set
	// until the Playout takes them.
	lastTS     uint32
	lastPlayed time.Duration
	lastOffset int
	played     bool
	decodes    int // packets decoded under a clock, for the Playout

	stats counters
}

type counters struct {
	received, duplicates, late      atomic.Int64
	skipped                         atomic.Int64
	concealedSamples, concealEvents atomic.Int64
	decodeErrors, resets, buffered  atomic.Int64
	underruns                       atomic.Int64
	playedSamples, silentSamples    atomic.Int64
	expected                        atomic.Int64 // over all segments
	emitted, recovered              atomic.Int64 // decoded samples played
	delaySum, targetSum             atomic.Int64 // ns × samples / 48000
}

// Stats are counters named after W3C webrtc-stats where one exists.
type Stats struct {
	PacketsReceived   int64 // packets handed to Insert
	PacketsLost       int64 // expected (from sequence numbers) minus received (late ones included), ≥ 0
	PacketsDiscarded  int64 // arrived after their playout time, dropped
	PacketsSkipped    int64 // came in time but older than where a Playout (re)started, dropped
	PacketsDuplicated int64 // seen twice, dropped
	PacketsRecovered  int64 // frames played from redundancy, their own packet lost or late (still counted lost or discarded)
	ConcealedSamples  int64 // samples made by packet-loss concealment, and the silence of a stream that stopped and came back
	ConcealmentEvents int64 // runs of concealed frames
	DecodeErrors      int64 // packets the decoder rejected (concealed instead)
	Resets            int64 // jumps in the sequence or stream restarts
	Underruns         int64 // frames concealed waiting for a late packet
	PlayedSamples     int64 // samples read, decoded or concealed
	SilentSamples     int64 // samples read while waiting to fill
	BufferedSamples   int64 // audio waiting at the last Read, in samples

	// W3C jitterBufferEmittedCount: decoded samples played. For each,
	// JitterBufferDelay adds how long after its packet arrived it played,
	// JitterBufferTargetDelay the target delay then: divided by the count
	// they are the mean delay and target. Zero for a bare Buffer, which
	// has no clock.
	JitterBufferEmittedCount int64
	JitterBufferDelay        time.Duration
	JitterBufferTargetDelay  time.Duration
}

// New returns an empty buffer playing through dec.
func New(cfg Config, dec Decoder) *Buffer {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 64
		if cfg.Frame > 0 {
			cfg.Capacity = max(64, 24000/cfg.Frame)
		}
	}
	if cfg.MaxPacket <= 0 {
		cfg.MaxPacket = 1275
	}
	if cfg.WaitStep <= 0 {
		cfg.WaitStep = cfg.Frame
	}
	b := &Buffer{cfg: cfg, dec: dec, slots: make([]slot, cfg.Capacity), frame: cfg.Frame, playAt: -1, room: cfg.WaitLimit, lastDecoded: -1}
	b.framer, _ = dec.(framer)
	store := make([]byte, cfg.Capacity*cfg.MaxPacket)
	for i := range b.slots {
		b.slots[i] = slot{seq: -1, data: store[i*cfg.MaxPacket : (i+1)*cfg.MaxPacket]}
	}
	return b
}

// unwrap extends a 16-bit sequence number to the 64-bit counter nearest the
// highest seen so far, so wraparound at 65535 → 0 is seamless.
func unwrap(highest int64, seq uint16) int64 {
	return highest + int64(int16(seq-uint16(highest)))
}

// Insert stores a packet's payload (copied) for playout.
func (b *Buffer) Insert(seq uint16, payload []byte) { b.insert(seq, 0, 0, payload) }

// InsertRecovered stores a frame recovered from a later packet's
// redundancy (RFC 2198 RED) under the sequence number it was sent with. It
// fills a gap only if the frame is still to be played: one already played
// or concealed, one held already, or one too far from playout is ignored,
// and none counts as received, late or duplicated.
func (b *Buffer) InsertRecovered(seq uint16, payload []byte) {
	b.insertRecovered(seq, 0, 0, payload)
}

func (b *Buffer) insertRecovered(seq uint16, ts uint32, arrival time.Duration, payload []byte) {
	if !b.started || len(payload) == 0 || len(payload) > b.cfg.MaxPacket {
		return
	}
	ext := unwrap(b.highest, seq)
	s := &b.slots[ext%int64(len(b.slots))]
	if ext < b.next || ext >= b.next+int64(len(b.slots)) || s.seq == ext {
		return
	}
	s.seq, s.recovered = ext, true
	s.n = copy(s.data, payload)
	s.ts, s.arrival = ts, arrival
	if ext > b.highest {
		b.highest = ext
		b.stats.expected.Store(b.expectedBefore + b.highest - b.first + 1)
	}
}

func (b *Buffer) insert(seq uint16, ts uint32, arrival time.Duration, payload []byte) {
	b.stats.received.Add(1)
	if len(payload) > b.cfg.MaxPacket || len(payload) == 0 {
		b.stats.decodeErrors.Add(1)
		return
	}
	var ext int64
	if !b.started {
		ext = int64(seq) + 1<<16 // keep room below for reordered packets
		b.reset(ext)
		b.fresh = true
	} else {
		ext = unwrap(b.highest, seq)
	}
	if ext < b.next {
		b.stats.late.Add(1)
		if b.fresh && ext < b.first && ext >= b.first-int64(len(b.slots)) {
			b.first = ext
			b.stats.expected.Store(b.expectedBefore + b.highest - b.first + 1)
		}
		return
	}
	if ext >= b.next+int64(len(b.slots)) {
		if b.manual && !b.playing && ext < b.next+2*int64(len(b.slots)) {
			// A Playout still measuring where to start holds more than
			// fits: the oldest make way.
			b.skipTo(ext - int64(len(b.slots)) + 1)
		} else {
			// Too far ahead to hold: the sender restarted or we fell
			// far behind. Start again from this packet.
			b.stats.resets.Add(1)
			b.reset(ext)
		}
	}
	s := &b.slots[ext%int64(len(b.slots))]
	if s.seq == ext && !s.recovered {
		b.stats.duplicates.Add(1)
		return
	}
	// A frame recovered from redundancy gives way to its own packet,
	// which came after all: received, not a duplicate.
	s.seq, s.recovered = ext, false
	s.n = copy(s.data, payload)
	s.ts, s.arrival = ts, arrival
	if ext > b.highest {
		b.highest = ext
		b.stats.expected.Store(b.expectedBefore + b.highest - b.first + 1)
	}
}

func (b *Buffer) reset(next int64) {
	if b.started {
		// The same stream jumped ahead (a cut longer than the buffer):
		// what never came in between was expected too.
		b.expectedBefore += max(b.highest+1, next) - b.first
		if b.lastDecoded >= 0 && !b.stalled {
			// Playout starts again at next: the time until then is
			// concealment (see resumed), whatever it held is dropped.
			b.stalled, b.stallConcealed = true, b.concealedInRow
		}
	}
	for i := range b.slots {
		b.slots[i].seq = -1
	}
	b.started, b.fresh = true, false
	b.playing = false
	b.next = next
	b.first = next
	b.highest = next - 1
	b.pcmPos, b.pcmLen = 0, 0
	b.concealing = false
	b.waited = 0
	b.concealedInRow = 0
	b.exp.stop()
}

// Reset forgets every packet and waits for a new stream, e.g. from a new
// connection whose sequence numbers are unrelated to the last one's.
func (b *Buffer) Reset() {
	if b.started {
		b.expectedBefore += b.highest - b.first + 1
	}
	b.started = false
	b.playing = false
	b.pcmPos, b.pcmLen = 0, 0
	b.lastDecoded, b.stalled = -1, false
	b.exp.reset()
}

// buffered returns the audio waiting to be played, in samples.
func (b *Buffer) buffered() int {
	return int(b.highest-b.next+1)*b.frame + b.pcmLen - b.pcmPos
}

// Read fills out with the next samples of the voice: decoded, concealed, or
// silence while the buffer fills to its target.
func (b *Buffer) Read(out []float32) { b.read(out, -1) }

// read is Read with out[0] playing at playAt on the Playout's clock (< 0:
// unknown).
func (b *Buffer) read(out []float32, playAt time.Duration) {
	b.stats.buffered.Store(int64(max(b.buffered(), 0)))
	b.playAt = playAt
	start := len(out)
	for len(out) > 0 {
		if b.pcmPos < b.pcmLen {
			n := copy(out, b.pcm[b.pcmPos:b.pcmLen])
			b.pcmPos += n
			out = out[n:]
			b.stats.playedSamples.Add(int64(n))
			continue
		}
		if !b.playing {
			b.skipToFirstHeld()
			if b.manual || !b.started || b.highest < b.next || b.buffered() < b.cfg.Target {
				clear(out)
				b.stats.silentSamples.Add(int64(len(out)))
				return
			}
			b.playing = true
		}
		b.nextFrame(start - len(out))
	}
}

// skipToFirstHeld moves next forward to the first packet actually held, so
// playout (re)starts on audio rather than on a gap.
func (b *Buffer) skipToFirstHeld() {
	for b.next <= b.highest && b.slots[b.next%int64(len(b.slots))].seq != b.next {
		b.next++
	}
}

// firstHeld returns the timestamp of the first packet held, for a Playout
// choosing where to start; ok is false when none is.
func (b *Buffer) firstHeld() (ts uint32, ok bool) {
	if !b.started {
		return 0, false
	}
	b.skipToFirstHeld()
	if b.next > b.highest {
		return 0, false
	}
	return b.slots[b.next%int64(len(b.slots))].ts, true
}

// skipTo drops the packets held before next, as dropFirst does.
func (b *Buffer) skipTo(next int64) {
	for ; b.next < next; b.next++ {
		if s := &b.slots[b.next%int64(len(b.slots))]; s.seq == b.next {
			s.seq = -1
			b.stats.skipped.Add(1)
		}
	}
}

// dropFirst discards the first packet held, too old to start on. It
// counts as skipped, not discarded: it came in time for a playout that had
// not started yet, and says nothing about the path.
func (b *Buffer) dropFirst() {
	b.slots[b.next%int64(len(b.slots))].seq = -1
	b.next++
	b.stats.skipped.Add(1)
}

// start makes a Playout's buffer play from the first packet held.
func (b *Buffer) start() {
	b.playing = true
	b.pcmPos, b.pcmLen = 0, 0
	b.exp.stop()
	b.concealing = false
	b.waited = 0
	b.concealedInRow = 0
}

// remaining returns the samples left of the frame being played.
func (b *Buffer) remaining() int { return b.pcmLen - b.pcmPos }

// nextFrame fills b.pcm with the audio due now: the packet at b.next
// decoded, or concealment.
//
// A missing packet with later ones already here is lost: its time is
// concealed and it is skipped. A missing packet with nothing after it may
// only be late: a short step (Config.WaitStep) is concealed while next
// stays put, so the packet still plays when it comes and the delay grows by
// that step. The buffer never shrinks the delay again; that is the adaptive
// buffer's work.
//
// offset is where in the current read the frame starts, for its play time.
func (b *Buffer) nextFrame(offset int) {
	b.pcmPos, b.pcmLen = 0, 0
	conceal := b.frame
	for {
		s := &b.slots[b.next%int64(len(b.slots))]
		if s.seq == b.next {
			n, err := b.dec.Decode(s.data[:s.n], b.pcm[:])
			s.seq = -1
			b.next++
			b.waited = 0
			frame := n
			if b.framer != nil && err == nil {
				frame = b.framer.Frame()
			}
			if err == nil && frame > 0 {
				if s.recovered {
					b.stats.recovered.Add(1)
				}
				b.resumed(b.next-1, s.ts)
				b.frame = frame
				b.lastEnd = s.ts + uint32(b.frame)
				b.exp.decoded(b.pcm[:n])
				b.emit(s, n, offset)
				b.pcmLen = n
				b.concealing = false
				b.concealedInRow = 0
				return
			}
			b.stats.decodeErrors.Add(1)
			break
		}
		if b.highest < b.next {
			if step := b.exp.waitStep(min(b.cfg.WaitStep, b.frame)); b.mayWait(step) {
				// Nothing later: wait for it, concealing a step
				// meanwhile (whole pitch periods where the voice has
				// one, see expander.waitStep).
				conceal = step
				b.waited += conceal
				b.stats.underruns.Add(1)
				break
			}
		}
		// Lost: conceal what of its time was not concealed while waiting.
		// Waits longer than the frame have moved the voice later for
		// good: by whole periods of it, so that what follows joins in
		// phase (see expander.align).
		b.next++
		conceal = b.frame - b.waited
		b.waited = 0
		if conceal < 0 {
			conceal = b.exp.align(-conceal)
		}
		if conceal > 0 {
			break
		}
	}
	if b.concealedInRow >= giveUpSamples {
		// The stream has stopped; wait quietly for it to come back.
		b.playing = false
		b.concealing = false
		b.waited = 0
		if !b.stalled && b.lastDecoded >= 0 {
			b.stalled, b.stallConcealed = true, b.concealedInRow
		}
		b.exp.stop()
		return
	}
	if !b.concealing {
		b.stats.concealEvents.Add(1)
		b.concealing = true
	}
	if err := b.dec.Conceal(b.pcm[:conceal]); err != nil {
		clear(b.pcm[:conceal])
	}
	b.exp.conceal(b.pcm[:conceal])
	b.pcmLen = conceal
	b.concealedInRow += conceal
	b.stats.concealedSamples.Add(int64(conceal))
}

// resumed notes that packet ext, with timestamp ts, is being decoded.
// After a stall (see lastDecoded) the frames between the last one decoded
// and ext were lost or skipped; their time was concealed only in part
// (giveUpSamples) and the rest played as silence, which is concealment too
// (W3C silentConcealedSamples): it is counted now. Their time is the
// timestamps' gap under a Playout (the sender may have changed its frame
// meanwhile), else the frames' count times the last frame's length.
func (b *Buffer) resumed(ext int64, ts uint32) {
	if b.stalled && ext > b.lastDecoded {
		gap := (ext - b.lastDecoded - 1) * int64(b.frame)
		if b.manual {
			gap = int64(int32(ts - b.lastEnd))
		}
		b.stats.concealedSamples.Add(max(0, gap-int64(b.stallConcealed)))
	}
	b.lastDecoded, b.stalled = ext, false
}

// mayWait says whether to wait another step for a late packet: always for
// a bare Buffer without a WaitLimit; else while at least half the step is
// within the limit and the room the Playout leaves below its target, so a
// wait overshoots the target by at most half a step and a packet late at
// the target counts as lost (a lone late packet costs its frame's
// concealment, not a lasting rise in delay).
func (b *Buffer) mayWait(step int) bool {
	if b.cfg.WaitLimit == 0 {
		return true
	}
	return min(b.cfg.WaitLimit, b.room)-b.waited >= max(1, step/4)
}

// emit counts a decoded packet of n samples starting offset samples into
// the current read.
func (b *Buffer) emit(s *slot, n, offset int) {
	if b.playAt < 0 {
		return
	}
	played := b.playAt + time.Duration(offset)*time.Second/48000
	b.lastTS, b.lastPlayed, b.lastOffset, b.played = s.ts, played, offset, true
	b.decodes++
	// Sample i plays i/48000 s after the first: the sum of their delays.
	delay := int64(n)*int64(played-s.arrival) + int64(n)*int64(n-1)/2*int64(time.Second)/48000
	b.stats.emitted.Add(int64(n))
	b.stats.delaySum.Add(delay)
	b.stats.targetSum.Add(int64(n) * int64(b.target) * int64(time.Second) / 48000)
	if b.cfg.Played != nil {
		b.cfg.Played(s.ts, s.arrival, played)
	}
}

// Stats returns the counters so far. Safe from any goroutine.
func (b *Buffer) Stats() Stats {
	c := &b.stats
	received := c.received.Load()
	return Stats{
		PacketsReceived:   received,
		PacketsLost:       max(0, c.expected.Load()-(received-c.duplicates.Load())),
		PacketsDiscarded:  c.late.Load(),
		PacketsSkipped:    c.skipped.Load(),
		PacketsDuplicated: c.duplicates.Load(),
		PacketsRecovered:  c.recovered.Load(),
		ConcealedSamples:  c.concealedSamples.Load(),
		ConcealmentEvents: c.concealEvents.Load(),
		DecodeErrors:      c.decodeErrors.Load(),
		Resets:            c.resets.Load(),
		Underruns:         c.underruns.Load(),
		PlayedSamples:     c.playedSamples.Load(),
		SilentSamples:     c.silentSamples.Load(),
		BufferedSamples:   c.buffered.Load(),

		JitterBufferEmittedCount: c.emitted.Load(),
		JitterBufferDelay:        time.Duration(c.delaySum.Load()),
		JitterBufferTargetDelay:  time.Duration(c.targetSum.Load()),
	}
}
