package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/peer"
)

// The backing track and the recording.
//
// The host loads the track and offers it to its guest (name, size,
// SHA-256); the guest answers with how much of it it already has (a cache
// keyed by the digest, so a reconnect resumes and a second duet with the
// same song sends nothing), the host sends the rest over the peer's file
// channel, and the guest checks, decodes and says it is ready.
//
// Play schedules the track on the host's session clock, a count-in ahead;
// the host tells the guest its schedule and, four times a second, where
// its player is. The guest maps that onto its own clock (the clock
// estimate) and steers its player's rate to follow (track.Follower). The
// guest reports, ten times a second, the RTP time and track position of
// what its singer sang; the host's take places the guest's voice with it.
//
// Why those reports and not RTCP sender reports or the abs-capture-time
// header extension: both map RTP time to a wall clock, so placing a voice
// with them needs the clock offset, whose error (half the path's
// asymmetry, which pings cannot see) would land in the take. The track
// position is what alignment needs; the guest's audio thread knows it
// exactly for every block it captures, and it holds however the clocks
// were estimated. The clocks matter only for when the two copies of the
// track start, which the count-in covers.

// The control messages of the track and the take.
const (
	controlTrackOffer = "track-offer" // host: here is a track (Name, Size, Digest)
	controlTrackWant  = "track-want"  // guest: send it from Offset
	controlTrackReady = "track-ready" // guest: I have it and can play it
	controlTrackError = "track-error" // guest: I cannot use it (Text)
	controlTrackSync  = "track-sync"  // host: my schedule and player (Sched, Snap)
	controlVoicePos   = "voice-pos"   // guest: what I sang at RTP time TS was at track position Pos
)

// How the host schedules: the song starts a count-in after Play, plus a
// margin for the schedule to reach the guest.
const (
	countInBeats  = 4
	scheduleAhead = 500 * time.Millisecond
	syncInterval  = 250 * time.Millisecond
)

// chunkHeader is the file message's header: the chunk's offset in the file.
const chunkHeader = 8

// How long, in runes, a partner's texts may be on the screen: why it
// could not use the track, the track's name.
const (
	maxPartnerText = 200
	maxTrackName   = 100
)

// TrackStatus is the backing track's state, for display.
type TrackStatus struct {
	// Name is the track's file name; empty without a track.
	Name string
	// Length is how long the track plays.
	Length time.Duration
	// Size and Transferred are the file's bytes and how many of them have
	// reached (or left for) the partner.
	Size, Transferred int64
	// Ready: this side can play it. PartnerReady (host): so can the guest.
	Ready, PartnerReady bool
	// Streamed: the host sends the track in its mix instead.
	Streamed bool
	// CountIn is how long the count-in before the song lasts.
	CountIn time.Duration
	// Playing and Position: the timeline runs, and where it is (negative
	// during the count-in).
	Playing  bool
	Position time.Duration
	// Skew (guest): how far the guest's track is from the host's, as the
	// last correction measured it.
	Skew time.Duration
	// Recording: the host records a take, in folder Take (which stays
	// the latest take's afterwards); Recorded is how much is in its files.
	Recording bool
	Take      string
	Recorded  time.Duration
	// Error says why the track could not be used, if it could not.
	Error string
}

// trackState is the session's track bookkeeping, guarded by Session.mu.
type trackState struct {
	track        *track.Track
	gen          uint32
	paused       int64 // host: where Play starts from, in samples
	partnerReady bool
	answered     bool // host: the guest answered the latest offer
	transferred  int64
	size         int64
	err          string
	follower     track.Follower // guest, Run's goroutine only
	skew         float64        // guest: the follower's last error, samples
	lastSteer    time.Time
	lastLog      time.Time
	applied      uint32 // guest: the host schedule generation applied
	pendingSched *track.Schedule
	take         *record.Take
	lastTake     string
	sender       context.CancelFunc // host: the running transfer
	senders      sync.WaitGroup     // transfers: stopTransfer waits for them
	loaders      sync.WaitGroup     // decoders: close waits for them
	incoming     *incoming          // guest: the file arriving
	digest       string             // guest: the offered track's SHA-256, hex
	loading      bool               // guest: it is being checked and decoded
	retried      bool               // guest: it arrived damaged once already
}

// do runs f on Run's goroutine and waits for it; it fails when Run is not
// running.
func (s *Session) do(f func() error) error {
	res := make(chan error, 1)
	select {
	case s.cmds <- func() { res <- f() }:
	case <-s.runDone:
		return errors.New("the session is not running")
	}
	select {
	case err := <-res:
		return err
	case <-s.runDone:
		return errors.New("the session ended")
	}
}

// SetTrack makes t the backing track (host): the guest gets it at once if
// connected. A stopped timeline goes back to the start.
func (s *Session) SetTrack(t *track.Track) error {
	if !s.host {
		return errors.New("only the host chooses the track")
	}
	return s.do(func() error {
		s.setTrack(t)
		return nil
	})
}

func (s *Session) setTrack(t *track.Track) {
	s.stopTransfer()
	s.mu.Lock()
	s.trk.track = t
	s.trk.partnerReady = false
	s.trk.transferred = 0
	s.trk.size = int64(len(t.File))
	s.mu.Unlock()
	s.pipe.player.SetTrack(t)
	if !s.pipe.player.Current().Playing {
		s.mu.Lock()
		s.trk.paused = 0
		s.mu.Unlock()
	}
	s.offerTrack()
}

// offerTrack offers the track to the guest, if there are both.
func (s *Session) offerTrack() {
	s.mu.Lock()
	t := s.trk.track
	s.mu.Unlock()
	if t == nil || s.cfg.StreamTrack || s.currentPeer() == nil {
		return
	}
	s.mu.Lock()
	s.trk.partnerReady = false
	s.trk.answered = false
	s.mu.Unlock()
	s.sendControl(control{Type: controlTrackOffer, Name: t.Name, Size: int64(len(t.File)), Digest: hex.EncodeToString(t.Digest[:])})
}

// Play starts the track (host), after a count-in, from where it was paused
// or sought to.
func (s *Session) Play() error {
	return s.hostDo(func() error { return s.play(countInBeats) })
}

func (s *Session) play(countIn int) error {
	s.mu.Lock()
	s.trk.gen++
	sched := track.Schedule{
		Gen:     s.trk.gen,
		Playing: true,
		Pos:     s.trk.paused,
		CountIn: countIn,
		Beat:    track.DefaultBeat,
		At:      s.now() + int64(scheduleAhead) + int64(countIn)*int64(audio.Duration(track.DefaultBeat)),
	}
	s.mu.Unlock()
	s.pipe.player.Schedule(sched)
	s.sendSync()
	return nil
}

// Pause stops the track (host) where it is; Play goes on from there.
func (s *Session) Pause() error {
	return s.hostDo(func() error {
		s.pause()
		return nil
	})
}

func (s *Session) pause() {
	snap := s.pipe.player.Snapshot()
	cur := s.pipe.player.Current()
	s.mu.Lock()
	if snap.Playing && snap.Gen == cur.Gen {
		// During the count-in the song has not begun: it stays where it
		// was to start.
		s.trk.paused = max(cur.Pos, int64(snap.Pos))
	}
	s.trk.gen++
	gen := s.trk.gen
	s.mu.Unlock()
	s.pipe.player.Schedule(track.Schedule{Gen: gen})
	s.stopTake()
	s.sendSync()
}

// Seek moves the track (host) to position d; if it plays, it goes on from
// there at once.
func (s *Session) Seek(d time.Duration) error {
	return s.hostDo(func() error {
		if s.pipe.take.Load() != nil {
			return errors.New("stop recording before moving in the song")
		}
		playing := s.pipe.player.Current().Playing
		s.mu.Lock()
		pos := int64(audio.Samples(max(0, d)))
		if t := s.trk.track; t != nil {
			pos = min(pos, int64(len(t.Samples)))
		}
		s.trk.paused = pos
		s.mu.Unlock()
		if playing {
			return s.play(0)
		}
		return nil
	})
}

// Record starts a take (host) in a new folder under dir: the track starts
// from where it is, after the count-in, and the take follows it until
// Pause or StopRecording. It returns the take's folder.
func (s *Session) Record(dir string) (string, error) {
	var takeDir string
	err := s.hostDo(func() (err error) {
		takeDir, err = s.record(dir)
		return err
	})
	return takeDir, err
}

func (s *Session) record(dir string) (string, error) {
	if s.pipe.take.Load() != nil {
		return "", errors.New("already recording")
	}
	if s.pipe.player.Current().Playing {
		s.pause() // the take starts where the song is
	}
	s.mu.Lock()
	from, t := s.trk.paused, s.trk.track
	s.mu.Unlock()
	takeDir := filepath.Join(dir, "take-"+time.Now().Format("20060102-150405"))
	for i := 2; ; i++ { // two takes in one second get two folders
		if _, err := os.Stat(takeDir); errors.Is(err, fs.ErrNotExist) {
			break
		}
		takeDir = filepath.Join(dir, fmt.Sprintf("take-%s-%d", time.Now().Format("20060102-150405"), i))
	}
	take, err := record.Start(record.Config{Dir: takeDir, Track: t, Start: from, Logger: s.log})
	if err != nil {
		return "", fmt.Errorf("could not start recording in %s: %w", dir, err)
	}
	s.mu.Lock()
	s.trk.take = take
	s.trk.lastTake = takeDir
	s.mu.Unlock()
	s.pipe.take.Store(take)
	s.info("Recording into " + takeDir + ".")
	return takeDir, s.play(countInBeats)
}

// autoStart plays or records (host) once the guest can play along, if
// the session was told to (Config.AutoPlay).
func (s *Session) autoStart() {
	if !s.cfg.AutoPlay || s.pipe.player.Current().Playing {
		return
	}
	if s.cfg.RecordDir != "" {
		if _, err := s.record(s.cfg.RecordDir); err != nil {
			s.info("The take did not start: " + err.Error() + ".")
		}
		return
	}
	s.play(countInBeats)
}

// StopRecording finishes the take (host) and stops the track.
func (s *Session) StopRecording() error {
	return s.hostDo(func() error {
		s.pause()
		return nil
	})
}

// stopTake finishes the take, if any.
func (s *Session) stopTake() {
	s.mu.Lock()
	take := s.trk.take
	s.trk.take = nil
	s.mu.Unlock()
	if take == nil {
		return
	}
	s.pipe.take.Store(nil)
	if err := take.Close(); err != nil {
		s.info("The recording could not be finished: " + err.Error())
		return
	}
	s.log.Info("take finished", "dir", take.Dir(), "length", take.Length(), "dropped", take.Dropped())
}

func (s *Session) hostDo(f func() error) error {
	if !s.host {
		return errors.New("only the host plays the track")
	}
	return s.do(f)
}

// hostTick runs on the host's sync tick: it offers the track again until
// the guest answers (the control channel opens a little after the
// connection), and tells the guest where the track is.
func (s *Session) hostTick() {
	s.mu.Lock()
	reoffer := s.trk.track != nil && !s.trk.answered
	s.mu.Unlock()
	if reoffer {
		s.offerTrack()
	}
	// Stopped or playing: a guest that missed a change (it was away)
	// learns it within a tick.
	s.sendSync()
}

// sendSync tells the guest the host's schedule and where its player is.
func (s *Session) sendSync() {
	if s.currentPeer() == nil {
		return
	}
	sched := s.pipe.player.Current()
	snap := s.pipe.player.Snapshot()
	s.sendControl(control{Type: controlTrackSync, Sched: &sched, Snap: &snap})
}

func (s *Session) sendControl(c control) {
	p := s.currentPeer()
	if p == nil {
		return
	}
	b, err := json.Marshal(c)
	if err != nil {
		return
	}
	if err := p.SendControl(b); err != nil {
		s.log.Debug("control message not sent", "type", c.Type, "err", err)
	}
}

// onTrackControl handles the track's and take's control messages on Run's
// goroutine.
func (s *Session) onTrackControl(ctx context.Context, c control) {
	switch {
	case s.host && c.Type == controlTrackWant:
		s.mu.Lock()
		s.trk.answered = true
		s.mu.Unlock()
		s.startTransfer(ctx, c.Offset)
	case s.host && c.Type == controlTrackReady:
		s.mu.Lock()
		s.trk.partnerReady = true
		s.mu.Unlock()
		s.info("Your partner has the backing track.")
		s.autoStart()
	case s.host && c.Type == controlTrackError:
		text := cleanText(c.Text, maxPartnerText)
		s.mu.Lock()
		s.trk.err = "your partner could not use the track: " + text
		s.mu.Unlock()
		s.info("Your partner could not use the backing track (" + text + ").")
	case s.host && c.Type == controlVoicePos:
		if t := s.pipe.take.Load(); t != nil {
			t.GuestPosition(c.TS, c.Pos)
		}
	case !s.host && c.Type == controlTrackOffer:
		s.receiveOffer(c)
	case !s.host && c.Type == controlTrackSync && c.Sched != nil && c.Snap != nil:
		s.follow(*c.Sched, *c.Snap)
	}
}

// follow takes the host's schedule and snapshot (guest).
func (s *Session) follow(sched track.Schedule, snap track.Snapshot) {
	if snap.Gen == sched.Gen { // else the player has not played this schedule yet
		s.trk.follower.Host(snap)
	}
	if sched.Gen != s.trk.applied {
		s.trk.pendingSched = &sched
	}
	s.applySchedule()
}

// applySchedule puts the host's latest schedule on the guest's player,
// once the clocks are known.
func (s *Session) applySchedule() {
	sched := s.trk.pendingSched
	if sched == nil {
		return
	}
	est, err := s.clock.Estimate()
	if err != nil {
		return // no pong yet: the next sync tries again
	}
	local := *sched
	local.At -= int64(est.Offset)
	s.pipe.player.Schedule(local)
	s.pipe.player.SetRate(1)
	s.trk.applied = sched.Gen
	s.trk.pendingSched = nil
}

// steer runs on the guest's ping tick: it follows the host's track and
// tells the host what the guest's singer sang when.
func (s *Session) steer(now time.Time) {
	s.applySchedule()
	est, err := s.clock.Estimate()
	if err != nil {
		return
	}
	g := s.pipe.player.Snapshot()
	g.At += int64(est.Offset)
	dt := now.Sub(s.trk.lastSteer).Seconds()
	if s.trk.lastSteer.IsZero() || dt > 1 {
		dt = pingInterval.Seconds()
	}
	s.trk.lastSteer = now
	rate, jump := s.trk.follower.Steer(g, dt)
	s.mu.Lock()
	s.trk.skew = s.trk.follower.Error()
	s.mu.Unlock()
	if jump != nil {
		// The same schedule (count-in and all), moved in time so that it
		// plays jump.Pos at jump.At.
		cur := s.pipe.player.Current()
		cur.At = jump.At - int64(est.Offset) - (jump.Pos-cur.Pos)*int64(time.Second)/audio.SampleRate
		s.pipe.player.Schedule(cur)
	}
	s.pipe.player.SetRate(rate)
	if g.Playing && now.Sub(s.trk.lastLog) >= 2*time.Second {
		s.trk.lastLog = now
		s.log.Debug("following the host's track", "error_ms", s.trk.follower.Error()/audio.SampleRate*1000,
			"rate", rate, "clock_offset", est.Offset, "clock_dispersion", est.Dispersion)
	}
	if g.Playing {
		if ts, pos, ok := s.pipe.sung.load(); ok {
			s.sendControl(control{Type: controlVoicePos, TS: ts, Pos: pos})
		}
	}
}

// startTransfer sends the track from offset on the file channel (host),
// from a goroutine that stops with the peer or a newer transfer.
func (s *Session) startTransfer(ctx context.Context, offset int64) {
	s.stopTransfer()
	s.mu.Lock()
	t := s.trk.track
	s.mu.Unlock()
	p := s.currentPeer()
	if t == nil || p == nil || offset < 0 || offset > int64(len(t.File)) {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	s.mu.Lock()
	s.trk.sender = cancel
	s.trk.transferred = offset
	s.mu.Unlock()
	if offset == int64(len(t.File)) {
		return // the guest has it all
	}
	s.info(fmt.Sprintf("Sending the backing track %q to your partner.", t.Name))
	s.trk.senders.Go(func() {
		msg := make([]byte, peer.MaxFileMessage)
		for off := offset; off < int64(len(t.File)); {
			binary.BigEndian.PutUint64(msg, uint64(off))
			n := copy(msg[chunkHeader:], t.File[off:])
			if err := p.SendFile(ctx, msg[:chunkHeader+n]); err != nil {
				s.log.Debug("track transfer stopped", "err", err)
				if ctx.Err() == nil {
					s.mu.Lock()
					s.trk.answered = false // offer again: the guest resumes
					s.mu.Unlock()
				}
				return
			}
			off += int64(n)
			s.mu.Lock()
			s.trk.transferred = off
			s.mu.Unlock()
		}
	})
}

// stopTransfer cancels a running transfer and waits for its goroutine.
func (s *Session) stopTransfer() {
	s.mu.Lock()
	cancel := s.trk.sender
	s.trk.sender = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.trk.senders.Wait()
}

// incoming is a track file arriving at the guest, written to the cache
// as it comes (so a reconnect resumes where it stopped).
type incoming struct {
	mu     sync.Mutex
	f      *os.File
	path   string // the finished file's name; the part file adds ".part"
	name   string
	size   int64
	got    int64
	digest string
	done   chan<- *incoming
}

// receiveOffer answers the host's track offer (guest): with the track it
// already has, or by asking for what is missing.
func (s *Session) receiveOffer(c control) {
	s.closeIncoming()
	digest, err := hex.DecodeString(c.Digest)
	if err != nil || len(digest) != sha256.Size || c.Size <= 0 || c.Size > track.MaxFileSize {
		s.sendControl(control{Type: controlTrackError, Text: "the offer made no sense"})
		return
	}
	sum := hex.EncodeToString(digest) // one spelling for names and comparisons
	s.mu.Lock()
	same := sum == s.trk.digest
	have := same && s.trk.track != nil
	loading := same && s.trk.loading
	if !same {
		// Another song: the old one is not it.
		s.trk.digest, s.trk.track, s.trk.retried = sum, nil, false
		s.pipe.player.SetTrack(nil)
	}
	s.trk.size = c.Size
	s.trk.err = ""
	s.mu.Unlock()
	if have || loading {
		s.mu.Lock()
		s.trk.transferred = c.Size
		s.mu.Unlock()
		s.sendControl(control{Type: controlTrackWant, Offset: c.Size})
		if have {
			s.sendControl(control{Type: controlTrackReady})
		}
		return
	}
	dir := s.cfg.CacheDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.trackFailed(fmt.Errorf("there is no room to keep it (%w)", err))
		return
	}
	now := time.Now()
	removed, err := pruneCache(dir, sum, c.Size, now, cacheLimits{maxBytes: cacheMaxBytes, maxAge: cacheMaxAge, partAge: cachePartAge})
	if err != nil {
		s.log.Warn("track cache not pruned", "err", err)
	}
	if len(removed) > 0 {
		s.log.Info("track cache pruned", "removed", len(removed))
	}
	in := &incoming{path: filepath.Join(dir, sum), name: trackName(c.Name), size: c.Size, digest: sum, done: s.fileDone}
	if st, err := os.Stat(in.path); err == nil && st.Size() == c.Size {
		if err := os.Chtimes(in.path, now, now); err != nil { // used: the last to go
			s.log.Debug("track cache: not touched", "err", err)
		}
		s.mu.Lock()
		s.trk.transferred = c.Size
		s.mu.Unlock()
		s.sendControl(control{Type: controlTrackWant, Offset: c.Size})
		s.loadTrack(in, false)
		return
	}
	f, err := os.OpenFile(in.path+".part", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		s.trackFailed(fmt.Errorf("there is no room to keep it (%w)", err))
		return
	}
	if st, err := f.Stat(); err == nil && st.Size() <= c.Size {
		in.got = st.Size()
	} else if err := f.Truncate(0); err != nil {
		f.Close()
		s.trackFailed(err)
		return
	}
	if in.got == c.Size {
		// All there already (the last run ended before checking it).
		f.Close()
		s.mu.Lock()
		s.trk.transferred = c.Size
		s.mu.Unlock()
		s.sendControl(control{Type: controlTrackWant, Offset: c.Size})
		s.loadTrack(in, true)
		return
	}
	if _, err := f.Seek(in.got, 0); err != nil {
		f.Close()
		s.trackFailed(err)
		return
	}
	in.f = f
	s.mu.Lock()
	s.trk.incoming = in
	s.trk.transferred = in.got
	s.mu.Unlock()
	s.info(fmt.Sprintf("Receiving the backing track %q.", in.name))
	s.sendControl(control{Type: controlTrackWant, Offset: in.got})
}

// onFile takes a chunk of the track (guest), on the peer's goroutine.
func (s *Session) onFile(stream uint32, m []byte) {
	if stream != s.currentStream() || len(m) < chunkHeader {
		return
	}
	s.mu.Lock()
	in := s.trk.incoming
	s.mu.Unlock()
	if in == nil {
		return
	}
	off := int64(binary.BigEndian.Uint64(m))
	data := m[chunkHeader:]
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.f == nil || off != in.got || in.got+int64(len(data)) > in.size {
		return // stale, or beyond the offer
	}
	if _, err := in.f.Write(data); err != nil {
		in.f.Close()
		in.f = nil
		s.log.Warn("could not write the track", "err", err)
		return
	}
	in.got += int64(len(data))
	s.mu.Lock()
	s.trk.transferred = in.got
	s.mu.Unlock()
	if in.got == in.size {
		in.f.Close()
		in.f = nil
		select {
		case in.done <- in:
		case <-s.runDone:
		}
	}
}

// closeIncoming abandons a file arriving (its part stays for later).
func (s *Session) closeIncoming() {
	s.mu.Lock()
	in := s.trk.incoming
	s.trk.incoming = nil
	s.mu.Unlock()
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.f != nil {
		in.f.Close()
		in.f = nil
	}
}

// loadTrack checks and decodes a track file (guest) on a goroutine Run
// waits for; part says it is still the part file, to be renamed once its
// digest is right.
func (s *Session) loadTrack(in *incoming, part bool) {
	s.mu.Lock()
	s.trk.loading = true
	s.mu.Unlock()
	s.trk.loaders.Go(func() {
		l := loaded{in: in}
		path := in.path
		if part {
			path += ".part"
		}
		data, err := os.ReadFile(path)
		switch {
		case err != nil:
			l.err = err
		case hex.EncodeToString(sha256Sum(data)) != in.digest:
			l.damaged = true
			os.Remove(path)
		default:
			if part {
				err = os.Rename(path, in.path)
			}
			if err == nil {
				l.t, err = track.Decode(in.name, data)
			}
			l.err = err
		}
		select {
		case s.trackLoaded <- l:
		case <-s.runDone:
		}
	})
}

// trackName is the host's name for its track as the guest shows it: a
// base name, printable and bounded.
func trackName(name string) string {
	if n := cleanText(filepath.Base(name), maxTrackName); n != "" && n != "." && n != string(filepath.Separator) {
		return n
	}
	return "track"
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

type loaded struct {
	in      *incoming
	t       *track.Track
	damaged bool // the file does not match its digest
	err     error
}

// trackReady takes a loaded track (guest) on Run's goroutine.
func (s *Session) trackReady(l loaded) {
	s.mu.Lock()
	s.trk.loading = false
	current := l.in.digest == s.trk.digest
	retry := l.damaged && !s.trk.retried
	if l.damaged {
		s.trk.retried = true
	}
	s.mu.Unlock()
	switch {
	case !current:
		return // the host offered another song meanwhile
	case retry:
		s.log.Warn("the track arrived damaged; asking again")
		s.receiveOffer(control{Name: l.in.name, Size: l.in.size, Digest: l.in.digest})
		return
	case l.damaged:
		s.trackFailed(errors.New("it arrived damaged twice"))
		return
	case l.err != nil:
		s.trackFailed(l.err)
		return
	}
	s.mu.Lock()
	s.trk.track = l.t
	s.mu.Unlock()
	s.pipe.player.SetTrack(l.t)
	s.sendControl(control{Type: controlTrackReady})
	s.info(fmt.Sprintf("The backing track %q is here.", l.in.name))
}

func (s *Session) trackFailed(err error) {
	s.mu.Lock()
	s.trk.err = err.Error()
	s.mu.Unlock()
	s.log.Warn("backing track unusable", "err", err)
	s.sendControl(control{Type: controlTrackError, Text: err.Error()})
	s.info("The backing track could not be used: " + err.Error() + ".")
}

// Track returns the backing track's state. Safe from any goroutine.
func (s *Session) Track() TrackStatus {
	snap := s.pipe.player.Snapshot()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := TrackStatus{
		Size:         s.trk.size,
		Transferred:  s.trk.transferred,
		PartnerReady: s.trk.partnerReady,
		Streamed:     s.cfg.StreamTrack,
		CountIn:      time.Duration(countInBeats) * audio.Duration(track.DefaultBeat),
		Playing:      snap.Playing,
		Error:        s.trk.err,
	}
	if t := s.trk.track; t != nil {
		st.Name, st.Length, st.Ready = t.Name, audio.Duration(len(t.Samples)), true
	}
	if snap.Playing {
		st.Position = time.Duration(snap.Pos * float64(time.Second) / audio.SampleRate)
	} else {
		st.Position = audio.Duration(int(s.trk.paused))
	}
	if !s.host {
		st.Skew = time.Duration(s.trk.skew * float64(time.Second) / audio.SampleRate)
	}
	st.Take = s.trk.lastTake
	if s.trk.take != nil {
		st.Recording, st.Recorded = true, s.trk.take.Length()
	}
	return st
}
