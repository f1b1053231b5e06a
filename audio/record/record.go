// Package record writes a duet's take: the host's voice, the guest's voice
// and the backing track as aligned stems, their mix, and what the host
// heard live, as WAV files written as the song goes.
//
// Aligned means placed on the track's timeline by the track position at
// which each voice was sung, not by when it arrived: the host's voice by
// the position its own player was at (less the device's round trip: the
// singer hears a sample that long after it is played, and the microphone
// delivers it that long after it was sung), the guest's by the positions
// the guest reports for its RTP timestamps. Network delay and jitter drop
// out of the take; the guest's voice is decoded again here from the
// packets, in order, so playout's concealment does not reach the take.
//
// Crash safety: a writer goroutine flushes every 250 ms what is older than
// the guest voice's hold (500 ms) and rewrites the WAV headers each time,
// so a killed process leaves files that open, missing under a second.
//
// HostVoice and Live belong to the audio thread and neither block nor
// allocate; GuestPacket to the network goroutine; GuestPosition to any
// one goroutine. Close stops the writer.
package record

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/ring"
	"github.com/duetapp/duet/audio/track"
)

// The files of a take.
const (
	HostFile  = "host.wav"
	GuestFile = "guest.wav"
	TrackFile = "track.wav"
	MixFile   = "mix.wav"
	LiveFile  = "live.wav"
)

// Config describes a take.
type Config struct {
	// Dir is the take's folder, created if missing; its files must not
	// exist yet.
	Dir string
	// Track is the backing track, or nil for a take without one.
	Track *track.Track
	// Start is the track position (samples) at which the take begins.
	Start int64
	// Hold is how late the guest's voice may arrive and still be in the
	// take; 0 means 500 ms.
	Hold time.Duration
	// Flush is how often files are written; 0 means 250 ms.
	Flush  time.Duration
	Logger *slog.Logger
}

// block is a piece of the host's voice on the track's timeline.
type block struct {
	pos  int64
	n    int
	data [256]float32
}

type packet struct {
	guest uint32 // which guest sent it (NewGuest)
	kind  codec.Kind
	ts    uint32
	n     int
	data  [codec.MaxPacket]byte
}

// Take is a recording in progress. See the package doc.
type Take struct {
	cfg Config
	log *slog.Logger

	host    *ring.Ring[block]
	hostBuf []block // one-element scratch, audio thread
	live    *ring.Ring[float32]
	packets *ring.Ring[packet]
	pktBuf  []packet // one-element scratch, network goroutine

	mu       sync.Mutex
	pairs    []pair   // the current guest's (RTP time, track position), newest last
	reported bool     // the current guest reports its positions: no estimates
	est      estimate // the current window's earliest arrival (GuestArrived)
	recent   []pair   // the last windows' bounds, oldest first (GuestArrived)

	guest atomic.Uint32 // the current guest's number

	dropped atomic.Int64 // samples or packets that did not fit or came too late
	written atomic.Int64 // samples in the stems so far

	files [5]*wavWriter // host, guest, track, mix, live
	stop  chan struct{}
	done  chan struct{}
	err   error
	once  sync.Once
}

type pair struct {
	ts  int64 // unwrapped by the writer; as sent before
	pos float64
}

// estimate is the packet of an estimate window that met the least delay:
// its RTP time and the latest track position it can have been sung at.
type estimate struct {
	open  bool
	start uint32 // the window's first RTP time
	ts    uint32
	pos   float64
}

// estimateWindow is how much of the guest's voice (samples) one estimate
// covers: long enough that some packet in it met no queue, short enough to
// follow the two sound cards' drift (100 ppm: 0.05 ms a window).
const estimateWindow = audio.SampleRate / 2

// floorWindows is how many windows an estimate takes the tightest bound
// of (two seconds): a delay on the way that rises for a second, such as
// a loaded browser's sending (56-88 ms at its first note, seen in CI),
// does not move the voice; drift costs at most 0.2 ms.
const floorWindows = 4

// Start creates the take's files and starts its writer.
func Start(cfg Config) (*Take, error) {
	if cfg.Hold == 0 {
		cfg.Hold = 500 * time.Millisecond
	}
	if cfg.Flush == 0 {
		cfg.Flush = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	t := &Take{
		cfg:     cfg,
		log:     cfg.Logger,
		host:    ring.New[block](1024), // 5 s of 256-sample pieces
		hostBuf: make([]block, 1),
		live:    ring.New[float32](1 << 16),
		packets: ring.New[packet](512),
		pktBuf:  make([]packet, 1),
		pairs:   make([]pair, 0, maxPairs), // GuestArrived and GuestPosition never allocate
		recent:  make([]pair, 0, floorWindows),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	for i, name := range []string{HostFile, GuestFile, TrackFile, MixFile, LiveFile} {
		w, err := createWAV(filepath.Join(cfg.Dir, name))
		if err != nil {
			for _, f := range t.files[:i] {
				f.close()
				os.Remove(f.path)
			}
			return nil, fmt.Errorf("record: %w", err)
		}
		t.files[i] = w
	}
	go t.run()
	return t, nil
}

// Dir is the take's folder.
func (t *Take) Dir() string { return t.cfg.Dir }

// HostVoice adds the host's microphone block p, whose first sample was
// sung at track position pos. Audio thread.
func (t *Take) HostVoice(pos int64, p []float32) {
	for len(p) > 0 {
		b := &t.hostBuf[0]
		b.pos = pos
		b.n = copy(b.data[:], p)
		if t.host.Write(t.hostBuf) == 0 {
			t.dropped.Add(int64(b.n))
		}
		pos += int64(b.n)
		p = p[b.n:]
	}
}

// Live adds what the host heard. Audio thread.
func (t *Take) Live(p []float32) {
	if n := t.live.Write(p); n < len(p) {
		t.dropped.Add(int64(len(p) - n))
	}
}

// GuestPacket adds one of the guest's voice packets (RTP time ts) in
// codec kind; the codec may change from packet to packet (codec.Switch).
// Network goroutine.
func (t *Take) GuestPacket(ts uint32, kind codec.Kind, payload []byte) {
	p := &t.pktBuf[0]
	p.guest = t.guest.Load()
	p.kind = kind
	p.ts = ts
	p.n = copy(p.data[:], payload)
	if t.packets.Write(t.pktBuf) == 0 {
		t.dropped.Add(1)
	}
}

// NewGuest says that the packets and positions from now on come from a
// new guest (a new connection: its RTP clock starts anywhere). The take
// goes on; the new voice is placed by its own reports. Call it before the
// new guest's first packet.
func (t *Take) NewGuest() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pairs = t.pairs[:0]
	t.reported, t.est, t.recent = false, estimate{}, t.recent[:0]
	t.guest.Add(1) // under mu: the writer reads both together
}

// GuestPosition records that the guest's voice at RTP time ts was sung at
// track position pos.
func (t *Take) GuestPosition(ts uint32, pos float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.reported {
		t.reported = true
		t.pairs = t.pairs[:0] // the guest's word beats the estimates
	}
	t.addPair(ts, pos)
}

// GuestArrived tells the take that the guest's voice at RTP time ts can
// have been sung at track position latest at the latest: the position the
// host heard when the packet arrived, less the least time a packet takes
// to come. A guest that reports where it sang (GuestPosition: Duet's app)
// is placed by its reports; one that cannot (a browser) by these bounds,
// each half second's tightest (its packet met no queue on the way), or
// the last two seconds' if tighter (floorWindows). Its voice then lands
// late by whatever the bound leaves out, such as the browser's capture
// latency. Network goroutine.
func (t *Take) GuestArrived(ts uint32, latest float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reported {
		return
	}
	e := &t.est
	if !e.open {
		*e = estimate{open: true, start: ts, ts: ts, pos: latest}
		return
	}
	if latest-e.pos < float64(int32(ts-e.ts)) { // a tighter bound: less delay on the way
		e.ts, e.pos = ts, latest
	}
	if int32(ts-e.start) >= estimateWindow || len(t.pairs) == 0 && int32(ts-e.start) >= estimateWindow/10 {
		best := e.pos
		for _, r := range t.recent {
			best = min(best, r.pos+float64(int32(e.ts-uint32(r.ts))))
		}
		t.addPair(e.ts, best)
		t.recent = append(t.recent, pair{int64(e.ts), e.pos})
		if len(t.recent) >= floorWindows {
			t.recent = append(t.recent[:0], t.recent[1:]...)
		}
		e.open = false
	}
}

// maxPairs is how many of a guest's (RTP time, position) pairs a take
// keeps: half a minute of estimates, more of reports.
const maxPairs = 64

// addPair appends a (RTP time, position) pair in RTP order, keeping the
// latest maxPairs. Under mu.
func (t *Take) addPair(ts uint32, pos float64) {
	if n := len(t.pairs); n > 0 && int32(ts-uint32(t.pairs[n-1].ts)) <= 0 {
		return // old or repeated news
	}
	if len(t.pairs) == maxPairs {
		copy(t.pairs, t.pairs[1:])
		t.pairs = t.pairs[:maxPairs-1]
	}
	t.pairs = append(t.pairs, pair{int64(ts), pos})
}

// unwrap places the 32-bit RTP time ts nearest to the unwrapped ref.
func unwrap(ref int64, ts uint32) int64 {
	d := int64(int32(ts - uint32(ref)))
	return ref + d
}

// Dropped counts samples and packets that did not make it into the take.
func (t *Take) Dropped() int64 { return t.dropped.Load() }

// Close writes what is left and finishes the files.
func (t *Take) Close() error {
	t.once.Do(func() { close(t.stop) })
	<-t.done
	return t.err
}

// Length is how much of the take is in the files so far.
func (t *Take) Length() time.Duration {
	return audio.Duration(int(t.written.Load()))
}
