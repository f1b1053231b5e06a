package app

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/clock"
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
//
// All of it is the track controller's: one goroutine (run) owns the
// host's side (trackhost.go) or the guest's (trackguest.go), and publishes
// a snapshot for Track. It reaches the partner only through trackLink.

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
	idleSync      = 2 * time.Second // see hostTrack.tick
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

// trackLink is the track controller's way to the partner: the connection
// supervisor's current connection.
type trackLink interface {
	// connID is the current connection's number (0 before the first).
	connID() uint32
	// present reports whether a connection is open.
	present() bool
	// send sends a control message, best effort: nothing without a
	// connection.
	send(c control)
	// sendFile sends a file message on connection conn, failing once it
	// is no longer the current one; it waits while the channel is full.
	sendFile(ctx context.Context, conn uint32, msg []byte) error
}

// trackMedia is what the track controller asks of the pipeline.
type trackMedia interface {
	// setTake has the audio thread record into t (nil: stop).
	setTake(t *record.Take)
	// lastSung is the RTP time and track position of the latest block the
	// singer sang; ok is false before the first.
	lastSung() (ts uint32, pos float64, ok bool)
	// guestPosition records the guest's report (RTP time ts sung at track
	// position pos) in the take, if conn is still the current connection.
	guestPosition(conn uint32, ts uint32, pos float64)
}

// trackConfig is what the track controller needs from the session.
type trackConfig struct {
	track     *track.Track // host: the first, if any (Config.Track)
	streamed  bool         // host: sent in the mix, not as a file
	autoPlay  bool         // host: Config.AutoPlay, and RecordDir
	recordDir string
	cacheDir  string // guest: Config.CacheDir

	player   *track.Player // the pipeline's
	media    trackMedia
	link     trackLink
	estimate func() (clock.Estimate, error) // guest: the clock follower's
	now      func() int64                   // the session clock, ns
	info     func(text string)              // tells the singer (through Run); never blocks; the controller's goroutine
	publish  func()                         // publishes the role's state for Track now (set by the controller)
	log      *slog.Logger
}

// trackRole is the host's side of the track or the guest's, run by the
// track controller's goroutine.
type trackRole interface {
	onControl(ctx context.Context, m trackMsg)
	tick(now time.Time)
	connected()
	dropped()
	snapshot() trackSnap
	close()
}

// trackSnap is what Track shows besides the player's live position, as
// the controller last published it.
type trackSnap struct {
	track        *track.Track
	size         int64
	partnerReady bool
	paused       int64   // host: where Play starts from, samples
	skew         float64 // guest: the follower's last error, samples
	take         *record.Take
	lastTake     string
	err          string
}

// trackMsg is a control message from the partner on connection conn.
type trackMsg struct {
	conn uint32
	msg  control
}

// trackController owns the backing track and the take: see above. Its
// methods other than run are safe from any goroutine.
type trackController struct {
	cfg   *trackConfig
	role  trackRole
	host  *hostTrack  // nil on the guest
	guest *guestTrack // nil on the host

	// transferred counts the file's bytes that have reached (or left for)
	// the partner: written by the role and by the transfer or file
	// goroutine, read by Track.
	transferred atomic.Int64
	published   atomic.Pointer[trackSnap]

	commands chan func()     // run on run's goroutine (do)
	controls chan trackMsg   // from the peers' goroutines
	changes  chan connChange // from Run: a connection came up or closed
	failed   chan uint32     // host: a transfer that stopped by itself
	fileDone chan *incoming
	loaded   chan loaded
	done     chan struct{} // closed when run returns
}

func newTrackController(cfg trackConfig, host bool) *trackController {
	c := &trackController{
		cfg:      &cfg,
		commands: make(chan func()),
		// Room for the track's steady messages (syncs, voice positions)
		// while run is busy for a moment.
		controls: make(chan trackMsg, 64),
		changes:  make(chan connChange),
		failed:   make(chan uint32),
		fileDone: make(chan *incoming, 1),
		loaded:   make(chan loaded),
		done:     make(chan struct{}),
	}
	// What the singer is told, Track shows already.
	tell := cfg.info
	c.cfg.info = func(text string) {
		c.publish()
		tell(text)
	}
	c.cfg.publish = c.publish
	if host {
		c.host = newHostTrack(c.cfg, &c.transferred, c.failed)
		c.role = c.host
	} else {
		c.guest = newGuestTrack(c.cfg, &c.transferred, c.fileDone, c.loaded, c.done)
		c.role = c.guest
	}
	c.publish()
	return c
}

// run handles the track until ctx is done; then it stops the transfer,
// the take and the loaders.
func (c *trackController) run(ctx context.Context) {
	defer func() {
		c.role.close()
		c.publish() // the take it finished: Track no longer says Recording
	}()
	defer close(c.done)      // first: the guest's loaders stop on it
	interval := pingInterval // the guest steers its player as often as it pings
	if c.host != nil {
		interval = syncInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.commands:
			f()
		case m := <-c.controls:
			c.onControl(ctx, m)
		case ch := <-c.changes:
			c.onChange(ch)
		case now := <-tick.C:
			if c.cfg.link.present() {
				c.role.tick(now)
			}
		case n := <-c.failed:
			c.host.transferFailed(n)
		case in := <-c.fileDone:
			c.guest.load(in, true)
		case l := <-c.loaded:
			c.guest.ready(l)
		}
		c.publish()
	}
}

// onControl handles a partner's message, if it came on the current
// connection.
func (c *trackController) onControl(ctx context.Context, m trackMsg) {
	if m.conn == c.cfg.link.connID() {
		c.role.onControl(ctx, m)
	}
}

// onChange handles a connection's coming up or closing, unless the news
// is stale: Run tells it later than the partner's messages on a newer
// connection arrive, and a late close would abandon the newer
// connection's transfer, a late up start the song for a guest gone.
func (c *trackController) onChange(ch connChange) {
	if ch.conn != c.cfg.link.connID() {
		return
	}
	switch {
	case !ch.up:
		c.role.dropped()
	case c.cfg.link.present():
		c.role.connected()
	}
}

// publish stores the role's snapshot for Track, if it changed.
func (c *trackController) publish() {
	snap := c.role.snapshot()
	if old := c.published.Load(); old == nil || *old != snap {
		c.published.Store(&snap)
	}
}

// deliver hands a partner's control message to run, from the peer's
// goroutine. When run falls behind, the steady messages are dropped:
// another comes within a tick.
func (c *trackController) deliver(conn uint32, msg control) {
	m := trackMsg{conn, msg}
	if msg.Type == controlTrackSync || msg.Type == controlVoicePos {
		select {
		case c.controls <- m:
		default:
		}
		return
	}
	select {
	case c.controls <- m:
	case <-c.done:
	}
}

// onFile takes a chunk of the track on connection conn (guest), on the
// peer's goroutine.
func (c *trackController) onFile(conn uint32, b []byte) {
	if c.guest != nil && conn == c.cfg.link.connID() {
		c.guest.onFile(b)
	}
}

// connChange is the news that connection conn came up or closed.
type connChange struct {
	conn uint32
	up   bool
}

// connected tells run connection conn came up; closed that it closed.
func (c *trackController) connected(conn uint32) { c.change(connChange{conn, true}) }
func (c *trackController) closed(conn uint32)    { c.change(connChange{conn, false}) }

func (c *trackController) change(ch connChange) {
	select {
	case c.changes <- ch:
	case <-c.done:
	}
}

// do runs f on run's goroutine and waits for it; it fails when run is
// not running.
func (c *trackController) do(f func() error) error {
	res := make(chan error, 1)
	select {
	case c.commands <- func() { res <- f() }:
	case <-c.done:
		return errors.New("the session is not running")
	}
	select {
	case err := <-res:
		return err
	case <-c.done:
		return errors.New("the session ended")
	}
}

// hostDo is do for what only the host may do.
func (c *trackController) hostDo(f func(h *hostTrack) error) error {
	if c.host == nil {
		return errors.New("only the host plays the track")
	}
	return c.do(func() error {
		err := f(c.host)
		c.publish() // before the caller returns: Track shows the change
		return err
	})
}

// status returns the track's state for Track.
func (c *trackController) status() TrackStatus {
	play := c.cfg.player.Snapshot()
	snap := c.published.Load()
	st := TrackStatus{
		Size:         snap.size,
		Transferred:  c.transferred.Load(),
		PartnerReady: snap.partnerReady,
		Streamed:     c.cfg.streamed,
		CountIn:      time.Duration(countInBeats) * audio.Duration(track.DefaultBeat),
		Playing:      play.Playing,
		Error:        snap.err,
	}
	if t := snap.track; t != nil {
		st.Name, st.Length, st.Ready = t.Name, audio.Duration(len(t.Samples)), true
	}
	if play.Playing {
		st.Position = time.Duration(play.Pos * float64(time.Second) / audio.SampleRate)
	} else {
		st.Position = audio.Duration(int(snap.paused))
	}
	if c.guest != nil {
		st.Skew = time.Duration(snap.skew * float64(time.Second) / audio.SampleRate)
	}
	st.Take = snap.lastTake
	if snap.take != nil {
		st.Recording, st.Recorded = true, snap.take.Length()
	}
	return st
}
