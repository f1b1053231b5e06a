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
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/peer"
)

// packet carries one received voice packet from the network goroutine to
// the audio thread through a lock-free ring.
type packet struct {
	stream    uint32 // which connection it came on; a new one resets playout
	recovered bool   // from a later packet's redundancy
	seq       uint16
	ts        uint32
	arrival   time.Duration // on the playout's clock
	n         int
	data      [codec.MaxPacket]byte
}

// pipeline is one singer's audio: what they send (their mic, plus in later
// versions the track; never the partner's voice, which makes the host's send
// the guest's mix-minus) and what they hear (their own voice monitored
// directly, plus the partner's voice from the jitter buffer).
//
// process runs on the device's audio thread and owns the jitter buffer, the
// mixers and the decoder. The encoder goroutine owns the encoder. They meet
// only in lock-free rings.
type pipeline struct {
	// audio thread
	jb      *jitter.Playout
	mic     mix.Live
	send    *mix.Mixer
	ears    *mix.Mixer
	sendBuf []float32
	pkt     []packet // one-element scratch for reading the packet ring
	stream  uint32

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
	clock      audio.BlockClock
	outLatency int64 // ns from the callback to the speaker
	roundTrip  int64 // samples from the speaker back through the mic
	captured   int64 // samples handed to the encoder so far
	tsBase     uint32
	take       atomic.Pointer[record.Take] // the host's recording, if any
	arrivals   *arrivals                   // the partner's packets, if captured
	sung       sungAt                      // the latest block's track position

	// Levels for display, measured off the audio thread.
	micMeter, partnerMeter, outMeter, trackMeter *meter.Meter

	// audio thread → encoder
	capture *ring.Ring[float32]
	wake    chan struct{}
	// network → audio thread
	packets   *ring.Ring[packet]
	netPacket []packet // one-element scratch owned by the network goroutine

	enc     *codec.Encoder
	out     atomic.Pointer[peer.Peer] // where encoded packets go; nil between partners
	current atomic.Uint32             // stream number of the current connection

	seq     uint16 // encoder goroutine
	ts      uint32
	bitrate atomic.Int64 // wanted; the encoder goroutine applies it

	captureOverruns atomic.Int64 // samples the encoder was too slow to take
	packetOverruns  atomic.Int64 // packets the audio thread was too slow to take
	sendErrors      atomic.Int64
	encodeErrors    atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// pipelineConfig is what a pipeline needs from the session's Config.
type pipelineConfig struct {
	frame        time.Duration
	bitrate      int
	jitterTarget int // samples
	jitterBias   float64
	monitor      float32
	maxBlock     int
	seq          uint16 // first RTP sequence number and timestamp
	ts           uint32
	epoch        time.Time     // the session clock's zero
	roundTrip    time.Duration // the device's calibrated round trip
	speakers     bool          // cancel echo; no monitoring through speakers
}

func newPipeline(cfg pipelineConfig) (*pipeline, error) {
	enc, err := codec.NewEncoder(cfg.frame, cfg.bitrate)
	if err != nil {
		return nil, err
	}
	dec, err := codec.NewDecoder()
	if err != nil {
		return nil, err
	}
	jb, err := jitter.NewPlayout(jitter.PlayoutConfig{Bias: cfg.jitterBias, Config: jitter.Config{
		Frame:     enc.FrameSamples(),
		Target:    cfg.jitterTarget,
		MaxPacket: codec.MaxPacket,
		WaitStep:  codec.MinConceal,
	}}, dec)
	if err != nil {
		return nil, err
	}
	p := &pipeline{
		jb:        jb,
		send:      mix.New(cfg.maxBlock),
		ears:      mix.New(cfg.maxBlock),
		sendBuf:   make([]float32, cfg.maxBlock),
		pkt:       make([]packet, 1),
		capture:   ring.New[float32](1 << 16), // 1.4 s
		wake:      make(chan struct{}, 1),
		packets:   ring.New[packet](64),
		netPacket: make([]packet, 1),
		enc:       enc,
		seq:       cfg.seq,
		ts:        cfg.ts,
		tsBase:    cfg.ts,
		stop:      make(chan struct{}),
		player:    track.NewPlayer(),
		trackBuf:  make([]float32, cfg.maxBlock),
		epoch:     cfg.epoch,
		// Half the round trip each way: devices are near symmetric.
		outLatency: int64(cfg.roundTrip / 2),
		roundTrip:  int64(audio.Samples(cfg.roundTrip)),
	}
	p.bitrate.Store(int64(cfg.bitrate))
	p.limit = limiter.New(limiter.DefaultCeiling)
	if cfg.speakers {
		c, err := echo.New(echo.Default, echo.Options{Delay: cfg.roundTrip})
		if err != nil {
			jb.Close()
			return nil, fmt.Errorf("echo canceller: %w", err)
		}
		p.canceller, p.clean, p.howl = c, make([]float32, cfg.maxBlock), howl.New()
		cfg.monitor = 0 // a voice through the speakers is the echo itself
	}
	p.micMeter, p.partnerMeter, p.outMeter, p.trackMeter = meter.New(), meter.New(), meter.New(), meter.New()
	p.voice = p.send.Add(&p.mic, 1)
	p.trackSend = p.send.Add(&p.trackLive, 0)
	p.monitor = p.ears.Add(&p.mic, cfg.monitor)
	p.partner = p.ears.Add(metered{p.jb, p.partnerMeter}, 1)
	p.trackEars = p.ears.Add(&p.trackLive, 1)
	return p, nil
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

// process is the device callback. It must not block or allocate.
func (p *pipeline) process(in, out []float32) {
	for p.packets.Read(p.pkt) == 1 {
		pk := &p.pkt[0]
		if pk.stream != p.stream {
			p.stream = pk.stream
			p.jb.Reset()
		}
		if pk.recovered {
			p.jb.InsertRecovered(pk.seq, pk.ts, pk.arrival, pk.data[:pk.n])
		} else {
			p.jb.Insert(pk.seq, pk.ts, pk.arrival, pk.data[:pk.n])
		}
	}

	// out[0] reaches the ear at this instant of the session clock.
	at := p.clock.Tick(int64(time.Since(p.epoch)), len(out)) + p.outLatency
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
		p.sung.store(p.tsBase+uint32(p.captured), sung)
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

// sungAt publishes, from the audio thread, the RTP time of a block's first
// captured sample and the track position it was sung at (a sequence lock:
// odd while writing).
type sungAt struct {
	seq atomic.Uint64
	ts  atomic.Uint32
	pos atomic.Uint64 // float64 bits
}

func (s *sungAt) store(ts uint32, pos float64) {
	s.seq.Add(1)
	s.ts.Store(ts)
	s.pos.Store(math.Float64bits(pos))
	s.seq.Add(1)
}

// load returns the latest pair; ok is false before the first.
func (s *sungAt) load() (ts uint32, pos float64, ok bool) {
	for {
		q := s.seq.Load()
		if q&1 == 1 {
			continue
		}
		ts, pos = s.ts.Load(), math.Float64frombits(s.pos.Load())
		if s.seq.Load() == q {
			return ts, pos, q > 0
		}
	}
}

// receive is the peer's OnPacket for the connection numbered stream; it
// runs on that peer's reader goroutine. When the audio thread falls behind
// the ring, the newest packet is dropped (the jitter buffer conceals it).
func (p *pipeline) receive(stream uint32, seq uint16, ts uint32, payload []byte) {
	p.deliver(stream, seq, ts, payload, false)
}

// recover is the peer's OnRecovered: a frame its own packet never
// brought, from a later packet's redundancy.
func (p *pipeline) recover(stream uint32, seq uint16, ts uint32, payload []byte) {
	p.deliver(stream, seq, ts, payload, true)
}

func (p *pipeline) deliver(stream uint32, seq uint16, ts uint32, payload []byte, recovered bool) {
	if stream != p.current.Load() {
		return // a connection already replaced
	}
	if t := p.take.Load(); t != nil {
		t.GuestPacket(ts, payload)
	}
	pk := &p.netPacket[0]
	pk.arrival = p.jb.Now()
	if p.arrivals != nil && !recovered {
		p.arrivals.add(stream, seq, ts, pk.arrival)
	}
	pk.stream = stream
	pk.seq = seq
	pk.ts = ts
	pk.recovered = recovered
	pk.n = copy(pk.data[:], payload)
	if p.packets.Write(p.netPacket) == 0 {
		p.packetOverruns.Add(1)
	}
}

// connect makes pr (or nil) the destination of encoded packets and the
// source of received ones, numbering it as a new stream.
func (p *pipeline) connect(pr *peer.Peer, stream uint32) {
	if t := p.take.Load(); t != nil && pr != nil {
		t.NewGuest() // before the new stream's first packet can arrive
	}
	p.current.Store(stream)
	p.out.Store(pr)
}

// start runs the encoder goroutine until close.
func (p *pipeline) start() {
	p.wg.Go(p.encodeLoop)
}

func (p *pipeline) encodeLoop() {
	frame := make([]float32, p.enc.FrameSamples())
	pkt := make([]byte, codec.MaxPacket)
	rate := p.bitrate.Load()
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		}
		if want := p.bitrate.Load(); want != rate {
			// libopus's encoder is not safe for concurrent use: only this
			// goroutine touches it.
			if err := p.enc.SetBitrate(int(want)); err == nil {
				rate = want
			}
		}
		for p.capture.Len() >= len(frame) {
			p.capture.Read(frame)
			n, err := p.enc.Encode(frame, pkt)
			if err != nil {
				// libopus refuses only malformed calls; count it, keep the
				// timeline, and go on with the next frame.
				p.encodeErrors.Add(1)
				p.seq++
				p.ts += uint32(len(frame))
				continue
			}
			if pr := p.out.Load(); pr != nil {
				if err := pr.WriteVoice(codec.Opus, p.seq, p.ts, pkt[:n]); err != nil {
					p.sendErrors.Add(1)
				}
			}
			// Sequence and timestamp advance with the capture timeline
			// whether or not anyone listens.
			p.seq++
			p.ts += uint32(len(frame))
		}
	}
}

// close stops the encoder goroutine and frees the playout; call once,
// after the device has stopped.
func (p *pipeline) close() {
	close(p.stop)
	p.wg.Wait()
	p.jb.Close()
	if p.canceller != nil {
		p.canceller.Close()
	}
}
