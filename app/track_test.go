package app

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/clock"
)

// wire is one connection between two track controllers, as the
// supervisor's link would be: control messages go through JSON, file
// messages are copied, and all arrive on the sender's goroutine.
type wire struct {
	to    *trackController
	files atomic.Int64 // file messages sent
}

func (w *wire) connID() uint32 { return 1 }
func (w *wire) present() bool  { return true }

func (w *wire) send(c control) {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	var m control
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	w.to.deliver(1, m)
}

func (w *wire) sendFile(_ context.Context, conn uint32, msg []byte) error {
	w.files.Add(1)
	w.to.onFile(conn, slices.Clone(msg))
	return nil
}

// noMedia is a pipeline that nobody sings into.
type noMedia struct{}

func (noMedia) setTake(*record.Take)                        {}
func (noMedia) lastSung() (ts uint32, pos float64, ok bool) { return 0, 0, false }
func (noMedia) guestPosition(uint32, uint32, float64)       {}

// alone is a link with no partner.
type alone struct{}

func (alone) connID() uint32                                 { return 0 }
func (alone) present() bool                                  { return false }
func (alone) send(control)                                   {}
func (alone) sendFile(context.Context, uint32, []byte) error { return errors.New("no partner") }

// said collects what a controller tells the singer.
type said struct {
	mu    sync.Mutex
	texts []string
	more  chan struct{}
}

func newSaid() *said { return &said{more: make(chan struct{}, 1)} }

func (s *said) info(text string) {
	s.mu.Lock()
	s.texts = append(s.texts, text)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

// wait waits, up to a deadline, for a text containing what.
func (s *said) wait(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		found := slices.ContainsFunc(s.texts, func(x string) bool { return strings.Contains(x, what) })
		all := strings.Join(s.texts, "\n")
		s.mu.Unlock()
		if found {
			return
		}
		select {
		case <-s.more:
		case <-deadline:
			t.Fatalf("no %q within 10 s; said:\n%s", what, all)
		}
	}
}

// TestTrackTransfer connects a host's track controller to a guest's on an
// in-memory connection: the host offers its track, the guest asks for it,
// the file comes over in chunks, and the guest checks, decodes and plays
// it. A second guest with the same cache gets it without a single file
// message.
func TestTrackTransfer(t *testing.T) {
	song := loadSong(t, 3*audio.SampleRate)
	cache := t.TempDir()
	sing := func() (files int64) {
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		defer func() {
			cancel()
			wg.Wait()
		}()
		toHost, toGuest := &wire{}, &wire{}
		hostSaid, guestSaid := newSaid(), newSaid()
		noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
		now := func() int64 { return 0 }
		host := newTrackController(trackConfig{track: song, player: track.NewPlayer(), media: noMedia{}, link: toGuest,
			estimate: noClock, now: now, info: hostSaid.info, log: testkit.Logger(t)}, true)
		guest := newTrackController(trackConfig{cacheDir: cache, player: track.NewPlayer(), media: noMedia{}, link: toHost,
			estimate: noClock, now: now, info: guestSaid.info, log: testkit.Logger(t)}, false)
		toHost.to, toGuest.to = host, guest
		wg.Go(func() { host.run(ctx) })
		wg.Go(func() { guest.run(ctx) })
		host.connected(1)
		guest.connected(1)
		guestSaid.wait(t, "is here")
		hostSaid.wait(t, "Your partner has the backing track")
		h, g := host.status(), guest.status()
		if !h.PartnerReady || !g.Ready || g.Name != "song.wav" || g.Length != h.Length {
			t.Errorf("host %+v, guest %+v", h, g)
		}
		if g.Size != int64(len(song.File)) || g.Transferred != g.Size {
			t.Errorf("the guest has %d of %d bytes, want %d", g.Transferred, g.Size, len(song.File))
		}
		if got := guest.cfg.player.Track(); got == nil || !slices.Equal(got.Samples, song.Samples) {
			t.Error("the guest's player does not have the host's song")
		}
		return toGuest.files.Load()
	}
	if n := sing(); n == 0 {
		t.Fatal("no file message came")
	}
	if _, err := os.Stat(filepath.Join(cache, hex.EncodeToString(song.Digest[:]))); err != nil {
		t.Errorf("the song is not in the cache: %v", err)
	}
	if n := sing(); n != 0 {
		t.Errorf("%d file messages for a song in the cache", n)
	}
}

// TestTrackRecordingEndsWithRun: a take running when the controller stops
// is finished, and Track no longer says it records.
func TestTrackRecordingEndsWithRun(t *testing.T) {
	song := loadSong(t, audio.SampleRate)
	noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
	host := newTrackController(trackConfig{track: song, player: track.NewPlayer(), media: noMedia{}, link: alone{},
		estimate: noClock, now: func() int64 { return 0 }, info: newSaid().info, log: testkit.Logger(t)}, true)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() {
		host.run(ctx)
		close(ran)
	}()
	if err := host.hostDo(func(h *hostTrack) error { _, err := h.record(t.TempDir()); return err }); err != nil {
		t.Fatal(err)
	}
	if !host.status().Recording {
		t.Fatal("not recording after record")
	}
	cancel()
	<-ran
	if st := host.status(); st.Recording {
		t.Errorf("Track says Recording after run returned: %+v", st)
	}
}

// numbered is a link whose current connection a test sets; it keeps what
// is sent.
type numbered struct {
	conn   atomic.Uint32
	sent   chan control
	onSend func(control) // if set, first, on the sender's goroutine
}

func (n *numbered) connID() uint32 { return n.conn.Load() }
func (n *numbered) present() bool  { return n.conn.Load() != 0 }
func (n *numbered) send(c control) {
	if n.onSend != nil {
		n.onSend(c)
	}
	n.sent <- c
}
func (n *numbered) sendFile(context.Context, uint32, []byte) error { return nil }

// TestTrackStaleClose: the news that connection 1 closed, handled after
// connection 2's offer, leaves connection 2's file arriving alone.
func TestTrackStaleClose(t *testing.T) {
	song := loadSong(t, audio.SampleRate)
	link := &numbered{sent: make(chan control, 16)}
	said := newSaid()
	noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
	guest := newTrackController(trackConfig{cacheDir: t.TempDir(), player: track.NewPlayer(), media: noMedia{}, link: link,
		estimate: noClock, now: func() int64 { return 0 }, info: said.info, log: testkit.Logger(t)}, false)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { guest.run(ctx) })
	link.conn.Store(1)
	guest.connected(1)
	link.conn.Store(2) // 1 closed, 2 came up; Run has not told the controller yet
	guest.deliver(2, control{Type: controlTrackOffer, Name: song.Name, Size: int64(len(song.File)), Digest: hex.EncodeToString(song.Digest[:])})
	select {
	case c := <-link.sent:
		if c.Type != controlTrackWant || c.Offset != 0 {
			t.Fatalf("the guest answered %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the offer")
	}
	guest.closed(1) // late
	guest.connected(2)
	msg := make([]byte, 1000)
	for off := 0; off < len(song.File); {
		binary.BigEndian.PutUint64(msg, uint64(off))
		m := copy(msg[chunkHeader:], song.File[off:])
		guest.onFile(2, slices.Clone(msg[:chunkHeader+m]))
		off += m
	}
	said.wait(t, "is here")
}

// TestTrackStaleUp: a host told late that a connection came up, when its
// guest has gone already, does not start the song for nobody.
func TestTrackStaleUp(t *testing.T) {
	link := &numbered{sent: make(chan control, 16)}
	noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
	host := newTrackController(trackConfig{autoPlay: true, player: track.NewPlayer(), media: noMedia{}, link: link,
		estimate: noClock, now: func() int64 { return 0 }, info: newSaid().info, log: testkit.Logger(t)}, true)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { host.run(ctx) })
	link.conn.Store(2) // connection 1 came up and closed; 2 is being made
	host.connected(1)
	host.closed(1)
	if err := host.do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if host.cfg.player.Current().Playing {
		t.Error("the host started the song with no guest")
	}
}

// onLog calls f for each record a logger gets.
type onLog func(r slog.Record)

func (f onLog) Enabled(context.Context, slog.Level) bool      { return true }
func (f onLog) Handle(_ context.Context, r slog.Record) error { f(r); return nil }
func (f onLog) WithAttrs([]slog.Attr) slog.Handler            { return f }
func (f onLog) WithGroup(string) slog.Handler                 { return f }

// TestTrackPauseShownFirst: while a paused take's files are finished,
// Track already shows the song paused and no take.
func TestTrackPauseShownFirst(t *testing.T) {
	song := loadSong(t, audio.SampleRate)
	var host *trackController
	var during []TrackStatus // the controller's goroutine, read after do
	log := slog.New(onLog(func(r slog.Record) {
		if r.Message == "take finished" {
			during = append(during, host.status())
		}
	}))
	noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
	host = newTrackController(trackConfig{track: song, player: track.NewPlayer(), media: noMedia{}, link: alone{},
		estimate: noClock, now: func() int64 { return 0 }, info: newSaid().info, log: log}, true)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { host.run(ctx) })
	if err := host.hostDo(func(h *hostTrack) error { _, err := h.record(t.TempDir()); return err }); err != nil {
		t.Fatal(err)
	}
	if err := host.hostDo(func(h *hostTrack) error { h.pause(); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 {
		t.Fatalf("%d takes finished, want 1", len(during))
	}
	if st := during[0]; st.Recording || st.Playing {
		t.Errorf("while the take was finished, Track showed %+v", st)
	}
}

// TestTrackSizeBeforeTransferred: a guest that has the offered track in
// its cache never shows more of it transferred than its size.
func TestTrackSizeBeforeTransferred(t *testing.T) {
	song := loadSong(t, audio.SampleRate)
	cache := t.TempDir()
	digest := hex.EncodeToString(song.Digest[:])
	if err := os.WriteFile(filepath.Join(cache, digest), song.File, 0o644); err != nil {
		t.Fatal(err)
	}
	var guest *trackController
	shown := make(chan TrackStatus, 16) // as the guest asks for the rest
	link := &numbered{sent: make(chan control, 16), onSend: func(c control) {
		if c.Type == controlTrackWant {
			shown <- guest.status()
		}
	}}
	noClock := func() (clock.Estimate, error) { return clock.Estimate{}, clock.ErrNoSamples }
	guest = newTrackController(trackConfig{cacheDir: cache, player: track.NewPlayer(), media: noMedia{}, link: link,
		estimate: noClock, now: func() int64 { return 0 }, info: newSaid().info, log: testkit.Logger(t)}, false)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { guest.run(ctx) })
	link.conn.Store(1)
	guest.deliver(1, control{Type: controlTrackOffer, Name: song.Name, Size: int64(len(song.File)), Digest: digest})
	select {
	case st := <-shown:
		if st.Transferred > st.Size || st.Size != int64(len(song.File)) {
			t.Errorf("as the guest asked for the rest, Track showed %d of %d bytes", st.Transferred, st.Size)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the guest did not ask for the track within 10 s")
	}
	if err := guest.do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := len(shown); n != 0 {
		t.Errorf("the guest asked %d more times, want once", n)
	}
}

// loadSong writes n samples of bursts to a WAV file and loads it as a
// backing track, as a singer's file would be.
func loadSong(t *testing.T, n int) *track.Track {
	t.Helper()
	path := filepath.Join(t.TempDir(), "song.wav")
	if err := wavfile.WriteFile(path, tone.Bursts(n, 0.5, 0)); err != nil {
		t.Fatal(err)
	}
	song, err := track.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return song
}

// syncCounter is a link that counts the host's syncs.
type syncCounter struct{ syncs int }

func (*syncCounter) connID() uint32 { return 1 }
func (*syncCounter) present() bool  { return true }
func (s *syncCounter) send(c control) {
	if c.Type == controlTrackSync {
		s.syncs++
	}
}
func (*syncCounter) sendFile(context.Context, uint32, []byte) error { return nil }

// TestHostSyncsIdleRarely: while the timeline stands still the host tells
// the guest where it is every idleSync, not every tick (on a slow link
// those syncs crowded the voice); a change is told at once, and while
// the timeline runs every tick is.
func TestHostSyncsIdleRarely(t *testing.T) {
	link := &syncCounter{}
	h := newHostTrack(&trackConfig{player: track.NewPlayer(), media: noMedia{}, link: link,
		now: func() int64 { return 0 }, publish: func() {}, log: slog.New(slog.DiscardHandler)}, &atomic.Int64{}, make(chan uint32, 1))
	t0 := time.Now()
	ticks := func(from time.Duration, n int) {
		for i := range n {
			h.tick(t0.Add(from + time.Duration(i)*syncInterval))
		}
	}
	ticks(0, 16) // 4 s stopped
	if want := int(4 * time.Second / idleSync); link.syncs != want {
		t.Errorf("stopped for 4 s: %d syncs, want %d", link.syncs, want)
	}
	link.syncs = 0
	if err := h.play(0); err != nil {
		t.Fatal(err)
	}
	ticks(4*time.Second, 8)
	if link.syncs != 1+8 {
		t.Errorf("play and 8 ticks playing: %d syncs, want 9", link.syncs)
	}
	link.syncs = 0
	h.pause()
	ticks(6*time.Second, 8)
	if link.syncs != 1+1 {
		t.Errorf("pause and 2 s stopped: %d syncs, want 2", link.syncs)
	}
}
