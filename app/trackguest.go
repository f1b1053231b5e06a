package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/track"
)

// guestTrack is the guest's side of the track: it takes the host's offer
// (from its cache, or over the file channel), checks and decodes the
// file, follows the host's timeline, and tells the host what its singer
// sang when. It belongs to the track controller's goroutine, but for
// onFile (the peer's goroutine), which reaches only the file arriving.
type guestTrack struct {
	*trackConfig
	transferred *atomic.Int64
	fileDone    chan<- *incoming // a file arrived whole
	loaded      chan<- loaded    // a file was checked and decoded
	done        <-chan struct{}  // the controller stopped

	track    *track.Track
	size     int64
	err      string
	digest   string                   // the offered track's SHA-256, hex
	loading  bool                     // it is being checked and decoded
	retried  bool                     // it arrived damaged once already
	incoming atomic.Pointer[incoming] // the file arriving; read by onFile
	loaders  sync.WaitGroup           // decoders: close waits for them

	follower  track.Follower
	skew      float64 // the follower's last error, samples
	lastSteer time.Time
	lastLog   time.Time
	applied   uint32          // the host schedule generation applied
	pending   *track.Schedule // the host's latest, until the clocks are known
}

func newGuestTrack(cfg *trackConfig, transferred *atomic.Int64, fileDone chan<- *incoming, loaded chan<- loaded, done <-chan struct{}) *guestTrack {
	g := &guestTrack{trackConfig: cfg, transferred: transferred, fileDone: fileDone, loaded: loaded, done: done}
	if t := cfg.track; t != nil { // the host's, passed to a guest: playable until an offer
		g.track, g.size = t, int64(len(t.File))
		cfg.player.SetTrack(t)
	}
	return g
}

func (g *guestTrack) snapshot() trackSnap {
	return trackSnap{track: g.track, size: g.size, skew: g.skew, err: g.err}
}

func (g *guestTrack) connected() {}

func (g *guestTrack) dropped() { g.closeIncoming() }

func (g *guestTrack) close() {
	g.closeIncoming()
	g.loaders.Wait()
}

// onControl handles the host's messages.
func (g *guestTrack) onControl(_ context.Context, m trackMsg) {
	switch c := m.msg; {
	case c.Type == controlTrackOffer:
		g.receiveOffer(c)
	case c.Type == controlTrackSync && c.Sched != nil && c.Snap != nil:
		g.follow(*c.Sched, *c.Snap)
	}
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
}

// receiveOffer answers the host's track offer: with the track it already
// has, or by asking for what is missing.
func (g *guestTrack) receiveOffer(c control) {
	g.closeIncoming()
	digest, err := hex.DecodeString(c.Digest)
	if err != nil || len(digest) != sha256.Size || c.Size <= 0 || c.Size > track.MaxFileSize {
		g.link.send(control{Type: controlTrackError, Text: "the offer made no sense"})
		return
	}
	sum := hex.EncodeToString(digest) // one spelling for names and comparisons
	same := sum == g.digest
	have := same && g.track != nil
	loading := same && g.loading
	if !same {
		// Another song: the old one is not it.
		g.digest, g.track, g.retried = sum, nil, false
		g.player.SetTrack(nil)
	}
	g.size = c.Size
	g.err = ""
	if have || loading {
		g.want(c.Size)
		if have {
			g.link.send(control{Type: controlTrackReady})
		}
		return
	}
	g.fetch(&incoming{path: filepath.Join(g.cacheDir, sum), name: trackName(c.Name), size: c.Size, digest: sum})
}

// want asks the host for the track from offset on.
func (g *guestTrack) want(offset int64) {
	g.publish() // the offer's size first: Transferred never shows more
	g.transferred.Store(offset)
	g.link.send(control{Type: controlTrackWant, Offset: offset})
}

// fetch gets the offered track into the cache: it is there already, or
// part of it is (a transfer that stopped), or nothing is.
func (g *guestTrack) fetch(in *incoming) {
	if err := os.MkdirAll(g.cacheDir, 0o755); err != nil {
		g.failed(fmt.Errorf("there is no room to keep it (%w)", err))
		return
	}
	now := time.Now()
	removed, err := pruneCache(g.cacheDir, in.digest, in.size, now, cacheLimits{maxBytes: cacheMaxBytes, maxAge: cacheMaxAge, partAge: cachePartAge})
	if err != nil {
		g.log.Warn("track cache not pruned", "err", err)
	}
	if len(removed) > 0 {
		g.log.Info("track cache pruned", "removed", len(removed))
	}
	if st, err := os.Stat(in.path); err == nil && st.Size() == in.size {
		if err := os.Chtimes(in.path, now, now); err != nil { // used: the last to go
			g.log.Debug("track cache: not touched", "err", err)
		}
		g.want(in.size)
		g.load(in, false)
		return
	}
	f, err := os.OpenFile(in.path+".part", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		g.failed(fmt.Errorf("there is no room to keep it (%w)", err))
		return
	}
	if st, err := f.Stat(); err == nil && st.Size() <= in.size {
		in.got = st.Size()
	} else if err := f.Truncate(0); err != nil {
		f.Close()
		g.failed(err)
		return
	}
	if in.got == in.size {
		// All there already (the last run ended before checking it).
		f.Close()
		g.want(in.size)
		g.load(in, true)
		return
	}
	if _, err := f.Seek(in.got, 0); err != nil {
		f.Close()
		g.failed(err)
		return
	}
	in.f = f
	g.incoming.Store(in)
	g.info(fmt.Sprintf("Receiving the backing track %q.", in.name))
	g.want(in.got)
}

// onFile takes a chunk of the track, on the peer's goroutine.
func (g *guestTrack) onFile(m []byte) {
	in := g.incoming.Load()
	if in == nil || len(m) < chunkHeader {
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
		g.log.Warn("could not write the track", "err", err)
		return
	}
	in.got += int64(len(data))
	g.transferred.Store(in.got)
	if in.got == in.size {
		in.f.Close()
		in.f = nil
		select {
		case g.fileDone <- in:
		case <-g.done:
		}
	}
}

// closeIncoming abandons a file arriving (its part stays for later).
func (g *guestTrack) closeIncoming() {
	in := g.incoming.Swap(nil)
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

// load checks and decodes a track file on a goroutine close waits for;
// part says it is still the part file, to be renamed once its digest is
// right.
func (g *guestTrack) load(in *incoming, part bool) {
	g.loading = true
	g.loaders.Go(func() {
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
		case g.loaded <- l:
		case <-g.done:
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

// ready takes a loaded track.
func (g *guestTrack) ready(l loaded) {
	g.loading = false
	current := l.in.digest == g.digest
	retry := l.damaged && !g.retried
	if l.damaged {
		g.retried = true
	}
	switch {
	case !current:
		return // the host offered another song meanwhile
	case retry:
		g.log.Warn("the track arrived damaged; asking again")
		g.receiveOffer(control{Name: l.in.name, Size: l.in.size, Digest: l.in.digest})
		return
	case l.damaged:
		g.failed(errors.New("it arrived damaged twice"))
		return
	case l.err != nil:
		g.failed(l.err)
		return
	}
	g.track = l.t
	g.player.SetTrack(l.t)
	g.link.send(control{Type: controlTrackReady})
	g.info(fmt.Sprintf("The backing track %q is here.", l.in.name))
}

// failed tells the host and the singer why the track cannot be used.
func (g *guestTrack) failed(err error) {
	g.err = err.Error()
	g.log.Warn("backing track unusable", "err", err)
	g.link.send(control{Type: controlTrackError, Text: err.Error()})
	g.info("The backing track could not be used: " + err.Error() + ".")
}

// follow takes the host's schedule and snapshot.
func (g *guestTrack) follow(sched track.Schedule, snap track.Snapshot) {
	if snap.Gen == sched.Gen { // else the player has not played this schedule yet
		g.follower.Host(snap)
	}
	if sched.Gen != g.applied {
		g.pending = &sched
	}
	g.applySchedule()
}

// applySchedule puts the host's latest schedule on the player, once the
// clocks are known.
func (g *guestTrack) applySchedule() {
	sched := g.pending
	if sched == nil {
		return
	}
	est, err := g.estimate()
	if err != nil {
		return // no pong yet: the next sync tries again
	}
	local := *sched
	local.At -= int64(est.Offset)
	g.player.Schedule(local)
	g.player.SetRate(1)
	g.applied = sched.Gen
	g.pending = nil
}

// tick follows the host's track and tells the host what the singer sang
// when; on the ping tick.
func (g *guestTrack) tick(now time.Time) {
	g.applySchedule()
	est, err := g.estimate()
	if err != nil {
		return
	}
	s := g.player.Snapshot()
	s.At += int64(est.Offset)
	dt := now.Sub(g.lastSteer).Seconds()
	if g.lastSteer.IsZero() || dt > 1 {
		dt = pingInterval.Seconds()
	}
	g.lastSteer = now
	rate, jump := g.follower.Steer(s, dt)
	g.skew = g.follower.Error()
	if jump != nil {
		// The same schedule (count-in and all), moved in time so that it
		// plays jump.Pos at jump.At.
		cur := g.player.Current()
		cur.At = jump.At - int64(est.Offset) - (jump.Pos-cur.Pos)*int64(time.Second)/audio.SampleRate
		g.player.Schedule(cur)
	}
	g.player.SetRate(rate)
	if s.Playing && now.Sub(g.lastLog) >= 2*time.Second {
		g.lastLog = now
		g.log.Debug("following the host's track", "error_ms", g.follower.Error()/audio.SampleRate*1000,
			"rate", rate, "clock_offset", est.Offset, "clock_dispersion", est.Dispersion, "clock_drift_ppm", est.DriftPPM, "clock_rtt", est.RTT, "clock_samples", est.Samples)
	}
	if s.Playing {
		if ts, pos, ok := g.media.lastSung(); ok {
			g.link.send(control{Type: controlVoicePos, TS: ts, Pos: pos})
		}
	}
}
