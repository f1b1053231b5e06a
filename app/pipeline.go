package app

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/echo"
	"github.com/duetapp/duet/audio/howl"
	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/limiter"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/mix"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/ring"
	"github.com/duetapp/duet/audio/rt"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/peer"
)

// packet carries one received voice packet from the network goroutine to
// the audio thread through a lock-free ring.
type packet struct {
	conn      uint32 // which connection it came on; a new one resets playout
	recovered bool   // from a later packet's redundancy
	seq       uint16
	ts        uint32
	arrival   time.Duration // on the playout's clock
	n         int
	data      [1 + codec.MaxPacket]byte // the codec, then the payload (see voice.go)
}

// pipeline is one singer's audio: what they send (their mic, plus in later
// versions the track; never the partner's voice, which makes the host's send
// the guest's mix-minus) and what they hear (their own voice monitored
// directly, plus the partner's voice from the jitter buffer).
//
// process runs on the device's audio thread and owns the jitter buffer, the
// mixers and the decoders. The encoder goroutine owns the encoders. They
// meet only in lock-free rings and atomics. voice.go says how the codec
// may change from packet to packet, both ways.
type pipeline struct {
	// audio thread
	playout     *jitter.Playout
	decoder     *voiceDecoder
	readAt      time.Duration // the current block's instant on the playout's clock
	mic         mix.Live
	send        *mix.Mixer
	ears        *mix.Mixer
	sendBuf     []float32
	audioPacket []packet // one-element scratch for reading the packet ring
	conn        uint32   // the connection the playout holds packets of

	monitor *mix.Input
	partner *mix.Input
	voice   *mix.Input // the mic in the send mix: muting it mutes me

	// The backing track: read once a block, heard here and, when the host
	// streams it, sent too.
	player    *track.Player
	trackBuf  []float32
	trackLive mix.Live
	trackEars *mix.Input
	trackSend *mix.Input

	// Speakers: the echo canceller cleans the microphone of what was
	// played (the reference is this very callback's output), and a howl
	// detector mutes the send if the room still feeds back. The limiter
	// protects ears on every output.
	canceller *echo.Canceller
	clean     []float32
	howl      *howl.Detector
	howled    atomic.Bool // set by the audio thread; Run tells the singer
	limit     *limiter.Limiter

	// Time: the session clock's epoch, the device's filtered block
	// instants, and its latencies.
	epoch      time.Time
	now        func() time.Duration // the session clock
	clock      audio.BlockClock
	outLatency int64       // ns from the callback to the speaker
	roundTrip  int64       // samples from the speaker back through the mic
	captured   int64       // samples handed to the encoder so far
	skipped    int         // samples the device went on without us (audio.BlockClock.Skipped)
	stalls     int         // the stalls of the devices before this one
	newDevice  atomic.Bool // set when another device starts: a new timeline
	catchesUp  atomic.Bool // the new device runs every block it owes (audio.CatchUp)
	tsBase     uint32
	take       atomic.Pointer[record.Take]                                // the host's recording, if any
	onArrival  func(conn uint32, seq uint16, ts uint32, at time.Duration) // Config.OnArrival
	sung       trackPoint                                                 // RTP time: the latest block's track position
	heard      trackPoint                                                 // session clock: the track at the host's ear
	guestTS    atomic.Uint32                                              // the guest's latest packet's RTP time
	guestLen   atomic.Int32                                               // and its length, samples

	// Levels for display, measured off the audio thread.
	micMeter, partnerMeter, outMeter, trackMeter *meter.Meter

	// audio thread → encoder
	capture *ring.Ring[float32]
	wake    chan struct{}
	// network → audio thread
	packets   *ring.Ring[packet]
	netPacket []packet // one-element scratch owned by the network goroutine

	out     atomic.Pointer[peer.Peer] // where encoded packets go; nil between partners
	current atomic.Uint32             // the current connection's number
	// guestMu orders a new connection (the take's NewGuest) and the
	// guest's positions: a position checked against the old connection
	// cannot land in the take after the new guest's start.
	guestMu sync.Mutex

	seq       uint16 // encoder goroutine
	ts        uint32
	opusFrame int           // Opus's packet, samples, as configured
	longFrame atomic.Int32  // a longer one the adapter wants (fewer packets); 0: none
	baseRate  int           // the configured Opus bitrate
	bitrate   atomic.Int64  // wanted (Opus's scale); the encoder goroutine applies it
	want      atomic.Uint32 // codec.Kind the session wants sent
	block     atomic.Int32  // the device's block, samples; 0 before the first
	// What the encoder goroutine sends now: codec.Kind, packet samples,
	// bitrate.
	sentKind   atomic.Uint32
	sentPacket atomic.Int32
	sentRate   atomic.Int64

	captureOverruns atomic.Int64 // samples the encoder was too slow to take
	packetOverruns  atomic.Int64 // packets the audio thread was too slow to take
	deviceStalls    atomic.Int64 // callbacks a block or more late (audio.BlockClock.Stalls)
	sendErrors      atomic.Int64
	encodeErrors    atomic.Int64

	realtime *rt.Raiser // for the encoder goroutine; nil: none
	stop     chan struct{}
	wg       sync.WaitGroup
}

// pipelineConfig is what a pipeline needs from the session's Config.
type pipelineConfig struct {
	frame        time.Duration // Opus's
	bitrate      int           // Opus's
	codec        codec.Kind    // to send first (the partner permitting); 0 means Opus
	jitterTarget int           // samples
	jitterBias   float64
	monitor      float32
	maxBlock     int
	seq          uint16 // first RTP sequence number and timestamp
	ts           uint32
	epoch        time.Time            // the session clock's zero
	now          func() time.Duration // the session clock; nil: since epoch (tests pass their own)
	roundTrip    time.Duration        // the device's calibrated round trip
	speakers     bool                 // cancel echo; no monitoring through speakers
	realtime     *rt.Raiser           // runs the encoder on a real-time thread; nil: an ordinary one
}

func newPipeline(cfg pipelineConfig) (*pipeline, error) {
	frame, err := codec.FrameSamples(cfg.frame)
	if err != nil {
		return nil, err
	}
	if cfg.epoch.IsZero() {
		cfg.epoch = time.Now()
	}
	if cfg.now == nil {
		epoch := cfg.epoch
		cfg.now = func() time.Duration { return time.Since(epoch) }
	}
	playout, dec, err := newPartnerPlayout(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.codec == 0 {
		cfg.codec = codec.Opus
	}
	p := &pipeline{
		playout:     playout,
		decoder:     dec,
		send:        mix.New(cfg.maxBlock),
		ears:        mix.New(cfg.maxBlock),
		sendBuf:     make([]float32, cfg.maxBlock),
		audioPacket: make([]packet, 1),
		capture:     ring.New[float32](1 << 16), // 1.4 s
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		packets:     ring.New[packet](64),
		netPacket:   make([]packet, 1),
		opusFrame:   frame,
		baseRate:    cfg.bitrate,
		seq:         cfg.seq,
		ts:          cfg.ts,
		tsBase:      cfg.ts,
		realtime:    cfg.realtime,
		player:      track.NewPlayer(),
		trackBuf:    make([]float32, cfg.maxBlock),
		epoch:       cfg.epoch,
		now:         cfg.now,
		// Half the round trip each way: devices are near symmetric.
		outLatency: int64(cfg.roundTrip / 2),
		roundTrip:  int64(audio.Samples(cfg.roundTrip)),
	}
	p.bitrate.Store(int64(cfg.bitrate))
	p.want.Store(uint32(cfg.codec))
	p.limit = limiter.New(limiter.DefaultCeiling)
	if cfg.speakers {
		c, err := echo.New(echo.Default, echo.Options{Delay: cfg.roundTrip})
		if err != nil {
			dec.codecs.Close()
			return nil, fmt.Errorf("echo canceller: %w", err)
		}
		p.canceller, p.clean, p.howl = c, make([]float32, cfg.maxBlock), howl.New()
		cfg.monitor = 0 // a voice through the speakers is the echo itself
	}
	p.micMeter, p.partnerMeter, p.outMeter, p.trackMeter = meter.New(), meter.New(), meter.New(), meter.New()
	p.voice = p.send.Add(&p.mic, 1)
	p.trackSend = p.send.Add(&p.trackLive, 0)
	p.monitor = p.ears.Add(&p.mic, cfg.monitor)
	p.partner = p.ears.Add(metered{partnerVoice{p}, p.partnerMeter}, 1)
	p.trackEars = p.ears.Add(&p.trackLive, 1)
	return p, nil
}

// newPartnerPlayout makes the partner voice's playout and its decoder.
func newPartnerPlayout(cfg pipelineConfig) (*jitter.Playout, *voiceDecoder, error) {
	sw, err := codec.NewSwitch()
	if err != nil {
		return nil, nil, err
	}
	sw.KeepDelay() // a change of codec must not step a held note
	dec := &voiceDecoder{codecs: sw}
	playout := jitter.NewPlayout(jitter.PlayoutConfig{
		Bias: cfg.jitterBias,
		// The session clock, on which the device's block instants are.
		Now: cfg.now,
		Config: jitter.Config{
			// A device block's worth of Opus Custom or PCM, the packets
			// Duet peers send: it sizes the buffer and the longest wait
			// for a late packet.
			Frame:     2 * codec.CustomFrame,
			Target:    cfg.jitterTarget,
			MaxPacket: 1 + codec.MaxPacket,
			// One step for every codec the partner may send: Opus
			// Custom's frame, the finest of the compressed codecs. PCM
			// conceals any length, and Opus, whose step is 120, makes
			// whole steps and keeps the rest (codec.Switch).
			WaitStep: codec.FormatOf(codec.OpusCustom).ConcealStep(),
		}}, dec)
	return playout, dec, nil
}

// skip keeps both voices in place after the device went on without a
// stalled callback for n samples: the partner's drops what it would have
// played (jitter.Playout.Skip), and ours sends silence for what it
// captured, so the RTP time stays the device's and the partner hears the
// gap as one, not the rest of the song n samples late. A gap longer than
// maxFill is the stream stopping and starting again for the partner's
// playout: sending all of it at once would only queue it. Audio thread.
func (p *pipeline) skip(n int) {
	p.playout.Skip(n)
	if n > maxFill {
		return
	}
	silence := p.sendBuf
	clear(silence)
	for n > 0 {
		written := p.capture.Write(silence[:min(n, len(silence))])
		if written == 0 {
			p.captureOverruns.Add(int64(n))
			return
		}
		p.captured += int64(written)
		n -= written
	}
}

// maxFill is the longest skip sent as silence: 100 ms.
const maxFill = audio.SampleRate / 10

// deviceChanged tells the audio thread that the next callback is dev's,
// on a timeline of its own. Call it before starting dev.
func (p *pipeline) deviceChanged(dev audio.Device) {
	p.catchesUp.Store(audio.CatchesUp(dev))
	p.newDevice.Store(true)
}

// metered is a Source whose output also goes to a meter.
type metered struct {
	src mix.Source
	m   *meter.Meter
}

func (s metered) Read(out []float32) {
	s.src.Read(out)
	s.m.Write(out)
}

// partnerVoice is the partner's voice from the playout, read at the
// block's smoothed instant (audio.BlockClock) rather than at the
// scheduler's whim.
type partnerVoice struct{ p *pipeline }

func (v partnerVoice) Read(out []float32) { v.p.playout.ReadAt(out, v.p.readAt) }

// process is the device callback. It must not block or allocate.
func (p *pipeline) process(in, out []float32) {
	for p.packets.Read(p.audioPacket) == 1 {
		pk := &p.audioPacket[0]
		if pk.conn != p.conn {
			p.conn = pk.conn
			p.playout.Reset()
		}
		if pk.recovered {
			p.playout.InsertRecovered(pk.seq, pk.ts, pk.arrival, pk.data[:pk.n])
		} else {
			p.playout.Insert(pk.seq, pk.ts, pk.arrival, pk.data[:pk.n])
		}
	}

	if n := int32(len(in)); p.block.Load() != n {
		p.block.Store(n) // for the encoder's packet size
	}
	if p.newDevice.Load() {
		p.newDevice.Store(false)
		p.stalls += p.clock.Stalls()
		p.clock, p.skipped = audio.BlockClock{CatchesUp: p.catchesUp.Load()}, 0
	}
	// The block's smoothed instant on the session clock, the playout's
	// clock too; out[0] reaches the ear outLatency later.
	tick := p.clock.Tick(int64(p.now()), len(out))
	p.deviceStalls.Store(int64(p.stalls + p.clock.Stalls()))
	if n := p.clock.Skipped() - p.skipped; n > 0 {
		p.skipped += n
		p.skip(n)
	}
	p.readAt = time.Duration(tick)
	at := tick + p.outLatency
	tr := p.trackBuf[:len(out)]
	pos, playing := p.player.Read(tr, at)
	p.trackLive.Set(tr)
	p.trackMeter.Write(tr)

	p.mic.Set(in)
	p.micMeter.Write(in)
	if p.canceller != nil {
		// The speaker plays this callback's output: it is the reference.
		p.hear(out)
		clean := p.clean[:len(in)]
		p.canceller.Process(in, out, clean)
		if p.howl.Process(clean) && !p.voice.Muted() {
			p.voice.SetMuted(true)
			p.howled.Store(true)
		}
		p.mic.Set(clean)
	}
	buf := p.sendBuf[:len(in)]
	p.send.Read(buf)
	written := p.capture.Write(buf)
	if written < len(buf) {
		p.captureOverruns.Add(int64(len(buf) - written))
	}
	if playing {
		// The singer sang in[0] to the track sample they heard then: the
		// one played a round trip before this block's.
		sung := pos - float64(p.roundTrip)
		p.sung.store(int64(p.tsBase+uint32(p.captured)), sung)
		p.heard.store(at, pos)
		if t := p.take.Load(); t != nil {
			t.HostVoice(int64(math.Round(sung)), in)
		}
	}
	// RTP time advances only with what the encoder gets.
	p.captured += int64(written)
	select {
	case p.wake <- struct{}{}:
	default: // the encoder is already due to wake
	}

	if p.canceller == nil {
		p.hear(out)
	}
	if t := p.take.Load(); t != nil {
		t.Live(out)
	}
}

// hear mixes what the singer hears into out, limited to spare their ears.
func (p *pipeline) hear(out []float32) {
	p.ears.Read(out)
	p.limit.Process(out)
	p.outMeter.Write(out)
}

// trackPoint publishes, from the audio thread, an instant and the track
// position that goes with it (a sequence lock: odd while writing): the RTP
// time of a block's first captured sample and the position it was sung
// at, or a session-clock instant and the position heard then.
type trackPoint struct {
	seq atomic.Uint64
	at  atomic.Int64
	pos atomic.Uint64 // float64 bits
}

func (s *trackPoint) store(at int64, pos float64) {
	s.seq.Add(1)
	s.at.Store(at)
	s.pos.Store(math.Float64bits(pos))
	s.seq.Add(1)
}

// load returns the latest point; ok is false before the first.
func (s *trackPoint) load() (at int64, pos float64, ok bool) {
	for {
		q := s.seq.Load()
		if q&1 == 1 {
			continue
		}
		at, pos = s.at.Load(), math.Float64frombits(s.pos.Load())
		if s.seq.Load() == q {
			return at, pos, q > 0
		}
	}
}

// receive is the peer's OnPacket for the connection numbered conn; it
// runs on that peer's reader goroutine. When the audio thread falls behind
// the ring, the newest packet is dropped (the jitter buffer conceals it).
func (p *pipeline) receive(conn uint32, seq uint16, ts uint32, kind codec.Kind, payload []byte) {
	p.deliver(conn, seq, ts, kind, payload, false)
}

// recover is the peer's OnRecovered: an Opus frame its own packet never
// brought, from a later packet's redundancy.
func (p *pipeline) recover(conn uint32, seq uint16, ts uint32, payload []byte) {
	p.deliver(conn, seq, ts, codec.Opus, payload, true)
}

func (p *pipeline) deliver(conn uint32, seq uint16, ts uint32, kind codec.Kind, payload []byte, recovered bool) {
	if conn != p.current.Load() {
		return // a connection already replaced
	}
	pk := &p.netPacket[0]
	pk.arrival = p.playout.Now()
	if t := p.take.Load(); t != nil {
		t.GuestPacket(ts, kind, payload)
		if !recovered {
			p.guestArrived(t, ts, pk.arrival)
		}
	}
	if p.onArrival != nil && !recovered {
		p.onArrival(conn, seq, ts, pk.arrival)
	}
	pk.conn = conn
	pk.seq = seq
	pk.ts = ts
	pk.recovered = recovered
	pk.data[0] = byte(kind)
	pk.n = 1 + copy(pk.data[1:], payload)
	if p.packets.Write(p.netPacket) == 0 {
		p.packetOverruns.Add(1)
	}
}

// guestArrived gives the take the latest track position at which the
// guest can have sung the packet at RTP time ts that arrived at arrival
// (session clock): the position the host heard then, less half the round
// trip (the least of late: one stalled report must not pull the voice
// early) and the packet's length (it leaves once its last sample is
// captured). The take places a guest that reports no positions (a
// browser) by these. Network goroutine.
func (p *pipeline) guestArrived(t *record.Take, ts uint32, arrival time.Duration) {
	length := p.guestLen.Load()
	if d := int32(ts - p.guestTS.Swap(ts)); d > 0 && d <= maxPacketSamples {
		length = d
		p.guestLen.Store(d)
	}
	at, pos, ok := p.heard.load()
	since := arrival - time.Duration(at)
	if !ok || since > heardStale {
		return // the track is not playing
	}
	var oneWay time.Duration
	if pr := p.out.Load(); pr != nil {
		oneWay = pr.Feedback().MinRTT / 2
	}
	t.GuestArrived(ts, pos+float64(audio.Samples(since-oneWay))-float64(length))
}

const (
	// maxPacketSamples is the longest packet a partner sends (Opus, 120 ms).
	maxPacketSamples = 120 * audio.SampleRate / 1000
	// heardStale is how old the track position at the ear may be: the
	// audio thread refreshes it every block while the track plays.
	heardStale = 100 * time.Millisecond
)

// connect makes pr (or nil) the destination of encoded packets and the
// source of received ones, as connection number conn.
func (p *pipeline) connect(pr *peer.Peer, conn uint32) {
	p.guestMu.Lock()
	if t := p.take.Load(); t != nil && pr != nil {
		t.NewGuest() // before the new connection's first packet can arrive
	}
	p.current.Store(conn)
	p.guestMu.Unlock()
	p.out.Store(pr)
}

// guestPosition gives the take the guest's report that its voice at RTP
// time ts was sung at track position pos, if it came on the current
// connection conn.
func (p *pipeline) guestPosition(conn uint32, ts uint32, pos float64) {
	p.guestMu.Lock()
	defer p.guestMu.Unlock()
	if t := p.take.Load(); t != nil && conn == p.current.Load() {
		t.GuestPosition(ts, pos)
	}
}

// setBitrate asks the encoder goroutine for Opus's bitrate rate (bits per
// second; the other codecs' follow it, see bitrateFor).
func (p *pipeline) setBitrate(rate int) { p.bitrate.Store(int64(rate)) }

// setOpusFrame asks the encoder goroutine for Opus frames of n samples
// (a valid Opus frame), or the configured ones if they are longer.
func (p *pipeline) setOpusFrame(n int) { p.longFrame.Store(int32(n)) }

// setCodec asks the encoder goroutine to send codec k (the partner
// permitting; else Opus) and returns the codec asked for before.
func (p *pipeline) setCodec(k codec.Kind) codec.Kind { return codec.Kind(p.want.Swap(uint32(k))) }

// setTake has the audio thread and the packet reader record into t; nil
// stops them.
func (p *pipeline) setTake(t *record.Take) { p.take.Store(t) }

// lastSung returns the RTP time of the latest block's first captured
// sample and the track position it was sung at; ok is false before the
// first.
func (p *pipeline) lastSung() (ts uint32, pos float64, ok bool) {
	at, pos, ok := p.sung.load()
	return uint32(at), pos, ok
}

// start runs the encoder goroutine until close.
func (p *pipeline) start() {
	p.wg.Go(p.encodeLoop)
}

// maxAlignWait is how many wakes a change to a block-sized codec waits
// for the capture ring to hold whole blocks: 15 of them line Opus's frames
// up with 64- or 128-sample blocks again; a device whose blocks never
// line up changes after this many anyway, its packets then a fraction of
// a block late.
const maxAlignWait = 64

func (p *pipeline) encodeLoop() {
	// Each packet should leave within the device period it was captured
	// in: an ordinary thread stalls for milliseconds now and then.
	unlock, _ := p.realtime.Raise("encoder")
	defer unlock()
	encs := &encoders{base: p.baseRate}
	defer encs.close()
	pcm := make([]float32, 960)
	pkt := make([]byte, codec.MaxPacket)
	var sw sendSwitch
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		pr := p.out.Load()
		block := int(p.block.Load())
		frame := max(p.opusFrame, int(p.longFrame.Load()))
		kind := sw.next(p.sendKind(pr, sw.kind), p.capture.Len(), block, frame)
		size := packetSize(kind, block, frame)
		// libopus's encoders are not safe for concurrent use: only this
		// goroutine touches them.
		enc, err := encs.get(kind, size, int(p.bitrate.Load()))
		if err != nil {
			p.encodeErrors.Add(1)
			sw.kind = codec.Opus // whose frame newPipeline checked
			continue
		}
		p.publishSent(kind, size, enc.Bitrate())
		for p.capture.Len() >= size {
			p.capture.Read(pcm[:size])
			n, err := enc.Encode(pcm[:size], pkt)
			if err != nil {
				// libopus refuses only malformed calls; count it, keep the
				// timeline, and go on with the next packet.
				p.encodeErrors.Add(1)
				p.seq++
				p.ts += uint32(size)
				continue
			}
			if pr != nil {
				if err := pr.WriteVoice(kind, p.seq, p.ts, pkt[:n]); err != nil {
					p.sendErrors.Add(1)
				}
			}
			// Sequence and timestamp advance with the capture timeline
			// whether or not anyone listens.
			p.seq++
			p.ts += uint32(size)
		}
	}
}

// sendSwitch is the encoder goroutine's codec, changed at the right
// moment.
type sendSwitch struct {
	kind   codec.Kind // what is sent; 0 before the first packet
	waited int        // wakes a change has waited for whole blocks
}

// next returns the codec to send now, given the one wanted and the samples
// the capture ring holds: a change to a block-sized codec waits until the
// ring holds whole packets of it (see maxAlignWait), so its packets leave
// as their blocks come.
func (s *sendSwitch) next(want codec.Kind, ring, block, opusFrame int) codec.Kind {
	if want == s.kind {
		s.waited = 0
		return s.kind
	}
	if s.kind == 0 || !blockSized(want) || ring%packetSize(want, block, opusFrame) == 0 || s.waited >= maxAlignWait {
		s.kind, s.waited = want, 0
	} else {
		s.waited++
	}
	return s.kind
}

// sendKind is the codec to send to pr: the one wanted if pr accepted it
// (or there is no partner), else Opus, which every peer takes. A pr that
// accepts nothing (not negotiated yet, or its sender stopped as the
// connection ends) drops what it is given: the codec sent now (now; 0:
// none yet) stays, so Stats does not show a change that never went out.
func (p *pipeline) sendKind(pr *peer.Peer, now codec.Kind) codec.Kind {
	k := codec.Kind(p.want.Load())
	if now != 0 && pr != nil && !pr.Accepts(codec.Opus) {
		return now
	}
	if k == 0 || k == codec.Opus || pr != nil && !pr.Accepts(k) {
		return codec.Opus
	}
	return k
}

// publishSent tells Stats what the encoder goroutine sends.
func (p *pipeline) publishSent(k codec.Kind, packet, bitrate int) {
	if p.sentKind.Load() != uint32(k) {
		p.sentKind.Store(uint32(k))
	}
	if p.sentPacket.Load() != int32(packet) {
		p.sentPacket.Store(int32(packet))
	}
	if p.sentRate.Load() != int64(bitrate) {
		p.sentRate.Store(int64(bitrate))
	}
}

// sent returns what is sent: the codec, its packet in samples and its
// bitrate; ok is false before the encoder's first wake.
func (p *pipeline) sent() (k codec.Kind, packet, bitrate int, ok bool) {
	k = codec.Kind(p.sentKind.Load())
	return k, int(p.sentPacket.Load()), int(p.sentRate.Load()), k != 0
}

// close stops the encoder goroutine and frees the decoders; call once,
// after the device has stopped.
func (p *pipeline) close() {
	close(p.stop)
	p.wg.Wait()
	p.decoder.codecs.Close()
	if p.canceller != nil {
		p.canceller.Close()
	}
}
