package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/rt"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/clock"
	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/signal"
)

// Session is one singer's side of a duet. See the package doc.
//
// It is made of owners, each keeping its state on its own goroutine and
// publishing what others read: the connection supervisor (supervisor.go:
// the rendezvous server, the peer connection, reconnects), the media
// pipeline (pipeline.go: the audio thread and the encoder), the track
// controller (track.go: the backing track and the take) and the clock
// follower (clockfollow.go). Run starts them, carries the news they post
// to the singer (Config.OnEvent) and to each other, keeps the audio
// device, and stops them all before it returns.
type Session struct {
	cfg   Config
	log   *slog.Logger
	host  bool
	code  signal.Code
	epoch time.Time // the session clock reads zero then

	pipe       *pipeline
	supervisor *supervisor
	track      *trackController
	clock      *clockFollower
	news       *mailbox[news] // from the owners to Run

	// Run's goroutine.
	state         State        // the latest emitted
	dev           audio.Device // the current device; nil while it is lost
	deviceStarted bool
	closeOnce     sync.Once
	closeErr      error
}

// Host creates a room on the rendezvous server. The room's code is ready
// when Host returns; Run then waits for a guest.
func Host(ctx context.Context, cfg Config) (*Session, error) {
	return open(ctx, cfg, true, func(sig *signal.Conn) (signal.Code, error) {
		code, err := sig.Create(ctx)
		if err != nil {
			return "", fmt.Errorf("create a room: %w", err)
		}
		return code, nil
	})
}

// Join joins the room with the given code.
func Join(ctx context.Context, cfg Config, code signal.Code) (*Session, error) {
	return open(ctx, cfg, false, func(sig *signal.Conn) (signal.Code, error) {
		return code, sig.Join(ctx, code) // the server's words name the code
	})
}

// open builds a session whose rendezvous connection enter takes into a
// room.
func open(ctx context.Context, cfg Config, host bool, enter func(*signal.Conn) (signal.Code, error)) (*Session, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	epoch := time.Now()
	pipe, err := newPipeline(pipelineConfig{
		epoch:        epoch,
		roundTrip:    cfg.DeviceRoundTrip,
		frame:        cfg.Frame,
		bitrate:      cfg.Bitrate,
		codec:        firstCodec(cfg.Codec),
		jitterTarget: audio.Samples(cfg.JitterTarget),
		jitterBias:   cfg.JitterBias,
		speakers:     cfg.Speakers,
		monitor:      cfg.Monitor,
		maxBlock:     cfg.MaxBlock,
		seq:          uint16(rand.Uint32()),
		ts:           rand.Uint32(),
		realtime:     rt.New(rt.Priority, cfg.Logger),
	})
	if err != nil {
		return nil, err
	}
	sig, err := signal.Dial(ctx, cfg.Server)
	if err != nil {
		pipe.close()
		return nil, err
	}
	code, err := enter(sig)
	if err != nil {
		sig.Close()
		pipe.close()
		return nil, err
	}
	pipe.onArrival = cfg.OnArrival
	if host && cfg.StreamTrack {
		pipe.trackSend.SetGain(1)
	}
	return newSession(cfg, host, sig, code, pipe, epoch), nil
}

// newSession builds the owners around pipe and sig, in room code, and
// wires each to the others' seams.
func newSession(cfg Config, host bool, sig *signal.Conn, code signal.Code, pipe *pipeline, epoch time.Time) *Session {
	role := "guest"
	if host {
		role = "host"
	}
	s := &Session{
		cfg:   cfg,
		log:   cfg.Logger.With("role", role, "room", code.String()),
		host:  host,
		code:  code,
		epoch: epoch,
		pipe:  pipe,
		news:  newMailbox[news](),
		dev:   cfg.Device,
	}
	now := func() int64 { return int64(time.Since(epoch)) }
	s.supervisor = newSupervisor(&s.cfg, s.host, sig, s.code, s.pipe, s.news.post, s.log)
	link := s.supervisor.current()
	s.clock = newClockFollower(s.host, now, link, s.cfg.NTPServer, s.log)
	s.track = newTrackController(trackConfig{
		track:     s.cfg.Track,
		streamed:  s.cfg.StreamTrack,
		autoPlay:  s.cfg.AutoPlay,
		recordDir: s.cfg.RecordDir,
		cacheDir:  s.cfg.CacheDir,
		player:    s.pipe.player,
		media:     s.pipe,
		link:      link,
		estimate:  s.clock.estimate,
		now:       now,
		info:      func(text string) { s.news.post(info(text)) },
		log:       s.log,
	}, s.host)
	s.supervisor.routes = peerRoutes{control: s.track.deliver, file: s.track.onFile, clock: s.clock.onClock, voice: s.clock.onVoice}
	return s
}

// Code returns the room code.
func (s *Session) Code() signal.Code { return s.code }

// Epoch is when this session's clock reads zero.
func (s *Session) Epoch() time.Time { return s.epoch }

// Run sings until ctx is done, the device's input ends, or (for a guest)
// the host leaves; then it leaves the room cleanly, closes the device and
// returns. An interruption through ctx is a clean end, not an error.
func (s *Session) Run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.host {
		s.emit(StateWaiting, fmt.Sprintf("Room %s is open: read the code to your partner.", s.code))
	} else {
		s.emit(StateConnecting, "Joined the room; connecting to the host.")
	}
	var owners sync.WaitGroup
	connEnd := make(chan error, 1)
	owners.Go(func() { connEnd <- s.supervisor.run(ctx) })
	owners.Go(func() { s.track.run(ctx) })
	owners.Go(func() { s.clock.run(ctx) })
	defer func() {
		cancel()
		owners.Wait()
		s.tell(true)
		err = errors.Join(err, s.close())
	}()
	defer func() {
		if err != nil {
			s.emit(StateEnded, "The duet stopped: "+err.Error())
		}
	}()
	howl := time.NewTicker(tickInterval(s.host))
	defer howl.Stop()
	var retry *time.Ticker // while the device is lost
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		var deviceDone <-chan struct{}
		if s.dev != nil {
			deviceDone = s.dev.Done()
		}
		select {
		case <-ctx.Done():
			s.emit(StateEnded, "You left the duet.")
			return nil
		case err := <-connEnd:
			if ferr := s.tell(false); ferr != nil {
				return ferr
			}
			if ctx.Err() != nil {
				s.emit(StateEnded, "You left the duet.")
				return nil
			}
			return err
		case <-s.news.wait():
			if err := s.tell(false); err != nil {
				return err
			}
		case <-deviceDone:
			if end, err := s.deviceStopped(); end {
				return err
			}
			retry = time.NewTicker(time.Second)
		case <-retryC(retry):
			if s.reopen() {
				retry.Stop()
				retry = nil
			}
		case <-howl.C:
			s.checkHowl()
		}
	}
}

// tell acts on the owners' news, in the order they posted it; once they
// have stopped, it only tells the singer what they said.
func (s *Session) tell(stopped bool) error {
	for _, n := range s.news.take() {
		if stopped && n.kind != newsInfo {
			continue
		}
		switch n.kind {
		case newsEvent:
			s.emit(n.state, n.text)
		case newsInfo:
			s.emit(s.state, n.text)
		case newsUp:
			if !s.deviceStarted {
				s.pipe.deviceChanged(s.dev)
				if err := s.dev.Start(s.pipe.process); err != nil {
					return fmt.Errorf("audio device: %w", err)
				}
				s.pipe.start()
				s.deviceStarted = true
			}
			s.emit(StateConnected, n.text)
			s.track.connected(n.conn)
			s.clock.connected()
		case newsDown:
			s.track.closed(n.conn)
		}
	}
	return nil
}

// deviceStopped handles the device's end: the input ended (end, nil), or
// the device was lost and cannot come back (end, error), or the duet goes
// on without it until it comes back.
func (s *Session) deviceStopped() (end bool, err error) {
	lost := s.dev.Err()
	if lost == nil {
		s.emit(StateEnded, "The input ended.")
		return true, nil
	}
	if s.cfg.Reopen == nil {
		return true, fmt.Errorf("audio device: %w", lost)
	}
	// The duet goes on without this singer's audio until the device comes
	// back.
	s.emit(StateDeviceLost, fmt.Sprintf("Your audio device stopped (%v). The duet goes on: plug it back in and Duet carries on with it; if it does not come back, leave and start Duet again.", lost))
	s.dev.Close()
	s.dev = nil
	return false, nil
}

// reopen tries to open the lost device again; it reports whether it is
// back.
func (s *Session) reopen() bool {
	d, err := s.cfg.Reopen()
	if err == nil {
		s.pipe.deviceChanged(d)
		if err = d.Start(s.pipe.process); err != nil {
			d.Close()
		}
	}
	if err != nil {
		s.log.Debug("audio device not back yet", "err", err)
		return false
	}
	s.dev = d
	if s.supervisor.snapshot().peer != nil {
		s.emit(StateConnected, "Your audio device is back.")
	} else {
		s.emit(StateWaiting, "Your audio device is back.")
	}
	return true
}

// retryC is t's channel, or nil (never ready) when there is no ticker.
func retryC(t *time.Ticker) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// emit tells the singer; Run's goroutine.
func (s *Session) emit(state State, text string) {
	s.state = state
	s.log.Info(text, "state", state.String())
	s.cfg.OnEvent(Event{State: state, Text: text})
}

// close releases the device and the pipeline once the owners have
// stopped; safe to call twice.
func (s *Session) close() error {
	s.closeOnce.Do(func() {
		errs := []error{s.supervisor.closeErr}
		if s.dev != nil {
			if err := s.dev.Close(); err != nil {
				errs = append(errs, fmt.Errorf("audio device: %w", err))
			}
		}
		s.pipe.close()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// SetTrack makes t the backing track (host): the guest gets it at once if
// connected. A stopped timeline goes back to the start.
func (s *Session) SetTrack(t *track.Track) error {
	if !s.host {
		return errors.New("only the host chooses the track")
	}
	return s.track.hostDo(func(h *hostTrack) error {
		h.setTrack(t)
		return nil
	})
}

// Play starts the track (host), after a count-in, from where it was paused
// or sought to.
func (s *Session) Play() error {
	return s.track.hostDo(func(h *hostTrack) error { return h.play(countInBeats) })
}

// Pause stops the track (host) where it is; Play goes on from there.
func (s *Session) Pause() error {
	return s.track.hostDo(func(h *hostTrack) error {
		h.pause()
		return nil
	})
}

// Seek moves the track (host) to position d; if it plays, it goes on from
// there at once.
func (s *Session) Seek(d time.Duration) error {
	return s.track.hostDo(func(h *hostTrack) error { return h.seek(d) })
}

// Record starts a take (host) in a new folder under dir: the track starts
// from where it is, after the count-in, and the take follows it until
// Pause or StopRecording. It returns the take's folder.
func (s *Session) Record(dir string) (string, error) {
	var takeDir string
	err := s.track.hostDo(func(h *hostTrack) (err error) {
		takeDir, err = h.record(dir)
		return err
	})
	return takeDir, err
}

// StopRecording finishes the take (host) and stops the track.
func (s *Session) StopRecording() error { return s.Pause() }

// Track returns the backing track's state. Safe from any goroutine.
func (s *Session) Track() TrackStatus { return s.track.status() }

// Stats are a session's figures at one moment.
type Stats struct {
	Code signal.Code
	// Peer describes the connection, or the last one when none is open.
	Peer peer.Stats
	// Voice is the partner's voice as played out here.
	Voice jitter.PlayoutStats
	// DeviceRoundTrip is the device's calibrated round trip, if known.
	DeviceRoundTrip time.Duration
	// Clock is the guest's estimate of the host's session clock against
	// its own (zero on the host, and before the first pong).
	Clock clock.Estimate
	// SafetyCode is derived from both sides' DTLS certificates: the same
	// on both sides unless someone sits in the middle.
	SafetyCode string
	// Bitrate and Redundancy are what this side sends now: the codec's
	// bitrate and how many earlier frames ride along with each packet
	// (Opus only).
	Bitrate, Redundancy int
	// Codec names what this side sends, e.g. "Opus Custom 2.7 ms" (its
	// packet), "L24", "Opus 5 ms"; PartnerCodec what the partner's last
	// packet came in.
	Codec, PartnerCodec string
	// PartnerName is what the partner calls themself, once they said.
	PartnerName string
	// NTP is this machine's clock against the NTP server, if one was
	// asked.
	NTP NTPStatus
	// EchoLatency is what the echo canceller adds to what the partner
	// hears (on speakers; zero on headphones).
	EchoLatency time.Duration
	// CaptureOverruns counts samples the encoder was too slow to take;
	// PacketOverruns, packets the audio thread was too slow to take;
	// SendErrors, packets the connection refused; EncodeErrors, frames
	// the encoder refused.
	CaptureOverruns, PacketOverruns, SendErrors, EncodeErrors int64
	// DeviceStalls counts the times this computer's audio callback ran a
	// block or more late: the device played or took that block without
	// Duet (an xrun), whatever the network did.
	DeviceStalls int64
}

// Stats returns the session's figures now. Safe from any goroutine.
func (s *Session) Stats() Stats {
	conn := s.supervisor.snapshot()
	st := Stats{
		Code:            s.code,
		DeviceRoundTrip: s.cfg.DeviceRoundTrip,
		Voice:           s.pipe.playout.Stats(),
		CaptureOverruns: s.pipe.captureOverruns.Load(),
		PacketOverruns:  s.pipe.packetOverruns.Load(),
		SendErrors:      s.pipe.sendErrors.Load(),
		EncodeErrors:    s.pipe.encodeErrors.Load(),
		DeviceStalls:    s.pipe.deviceStalls.Load(),
	}
	if c := s.pipe.canceller; c != nil {
		st.EchoLatency = c.Latency()
	}
	if k, packet, rate, ok := s.pipe.sent(); ok {
		st.Codec, st.Bitrate = codecName(k, packet), rate
		if k == codec.Opus {
			st.Redundancy = conn.redundancy
		}
	}
	if k, n, ok := s.pipe.decoder.received(); ok {
		st.PartnerCodec = codecName(k, n)
	}
	if !s.host {
		st.Clock, _ = s.clock.estimate()
	}
	st.Peer = conn.last
	if conn.peer != nil {
		st.Peer = conn.peer.Stats()
	}
	st.SafetyCode = conn.safety
	st.PartnerName = conn.partnerName
	st.NTP = s.clock.ntpStatus()
	return st
}

// NTPStatus is the answer of the NTP cross-check.
type NTPStatus struct {
	Server string
	// Offset is the server's clock minus this machine's; RTT the query's
	// round trip.
	Offset, RTT time.Duration
	// Err says why there is no answer (unreachable is normal offline);
	// empty once answered or while asking.
	Err string
}

// Levels are the meters a singer sees, in dBFS.
type Levels struct {
	Mic     meter.Level // what the microphone hears
	Partner meter.Level // the partner's voice as played here
	Output  meter.Level // everything played: monitor, partner and track
	Track   meter.Level // the backing track as played here
}

// Levels measures what the audio thread handed over since the last call.
// Call it from one place (a UI's refresh); safe from any goroutine.
func (s *Session) Levels() Levels {
	return Levels{
		Mic:     s.pipe.micMeter.Level(),
		Partner: s.pipe.partnerMeter.Level(),
		Output:  s.pipe.outMeter.Level(),
		Track:   s.pipe.trackMeter.Level(),
	}
}

// SetMuted mutes (or unmutes) this singer's voice for the partner; they
// still hear themselves. Safe from any goroutine.
func (s *Session) SetMuted(m bool) { s.pipe.voice.SetMuted(m) }

// Muted reports whether this singer's voice is muted for the partner.
func (s *Session) Muted() bool { return s.pipe.voice.Muted() }

// SetMonitor sets the gain at which this singer hears themself (0 = off).
// On speakers it stays off: that would be the echo itself. Safe from any
// goroutine.
func (s *Session) SetMonitor(gain float32) {
	if !s.cfg.Speakers {
		s.pipe.monitor.SetGain(gain)
	}
}

// checkHowl tells the singer when the howl detector muted them.
func (s *Session) checkHowl() {
	if !s.pipe.howled.Swap(false) {
		return
	}
	hz, _ := s.pipe.howl.Howling()
	s.emit(s.state, fmt.Sprintf("Duet muted your microphone: your speakers were feeding back into it (a howl at %.0f Hz). Turn them down or use headphones, then unmute.", hz))
}

// SetJitterBias leans the partner's playout from tight (−1) to safe (+1).
// Safe from any goroutine.
func (s *Session) SetJitterBias(b float64) { s.pipe.playout.SetBias(b) }

// SetPartnerGain sets how loud the partner is heard (1 = as sent).
func (s *Session) SetPartnerGain(gain float32) { s.pipe.partner.SetGain(gain) }

// Latency is the estimated mouth-to-ear delay from the partner to this
// singer, by stage.
type Latency struct {
	Codec   time.Duration // the partner's packet and its codec's look-ahead
	Network time.Duration // half the round trip
	Jitter  time.Duration // the playout's target
	Device  time.Duration // half the calibrated round trip (both devices are alike)
}

// Total is the sum of the stages.
func (l Latency) Total() time.Duration { return l.Codec + l.Network + l.Jitter + l.Device }

// Latency estimates the partner-to-me delay now from the session's figures.
func (s *Session) Latency() Latency {
	st := s.Stats()
	// Until the partner's first packet, guess they send what we do.
	k, n, ok := s.pipe.decoder.received()
	if !ok {
		k, n, _, ok = s.pipe.sent()
	}
	if !ok {
		k, n = codec.Opus, s.pipe.opusFrame
	}
	return Latency{
		Codec:   audio.Duration(n) + codec.FormatOf(k).Lookahead(),
		Network: st.Peer.RTT / 2,
		Jitter:  st.Voice.TargetDelay,
		Device:  st.DeviceRoundTrip / 2,
	}
}
