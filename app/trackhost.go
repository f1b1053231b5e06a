package app

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/net/peer"
)

// hostTrack is the host's side of the track: it offers and sends the
// file, schedules the timeline, tells the guest where it is, and records
// the take. It belongs to the track controller's goroutine, but for the
// transfer goroutine, which only sends and counts.
type hostTrack struct {
	*trackConfig
	transferred *atomic.Int64
	failed      chan<- uint32 // a transfer that stopped by itself (its number)

	track        *track.Track
	gen          uint32 // the latest schedule's
	paused       int64  // where Play starts from, in samples
	partnerReady bool
	answered     bool      // the guest answered the latest offer
	synced       time.Time // the tick's latest sync
	err          string
	take         *record.Take
	lastTake     string

	transfers uint32             // the latest transfer's number
	sender    context.CancelFunc // the running transfer's
	senders   sync.WaitGroup     // stopTransfer waits for them
}

func newHostTrack(cfg *trackConfig, transferred *atomic.Int64, failed chan<- uint32) *hostTrack {
	h := &hostTrack{trackConfig: cfg, transferred: transferred, failed: failed, track: cfg.track}
	if cfg.track != nil {
		cfg.player.SetTrack(cfg.track)
	}
	return h
}

func (h *hostTrack) snapshot() trackSnap {
	s := trackSnap{track: h.track, partnerReady: h.partnerReady, paused: h.paused, take: h.take, lastTake: h.lastTake, err: h.err}
	if h.track != nil {
		s.size = int64(len(h.track.File))
	}
	return s
}

// setTrack makes t the backing track: the guest gets it at once if
// connected. A stopped timeline goes back to the start.
func (h *hostTrack) setTrack(t *track.Track) {
	h.stopTransfer()
	h.track = t
	h.partnerReady = false
	h.transferred.Store(0)
	h.player.SetTrack(t)
	if !h.player.Current().Playing {
		h.paused = 0
	}
	h.offer()
}

// offer offers the track to the guest, if there are both.
func (h *hostTrack) offer() {
	t := h.track
	if t == nil || h.streamed || !h.link.present() {
		return
	}
	h.partnerReady = false
	h.answered = false
	h.link.send(control{Type: controlTrackOffer, Name: t.Name, Size: int64(len(t.File)), Digest: hex.EncodeToString(t.Digest[:])})
}

// connected offers the track to a new guest and tells it the timeline;
// with nothing to wait for, it starts the song if told to.
func (h *hostTrack) connected() {
	h.offer()
	h.sendSync()
	if h.track == nil || h.streamed {
		h.autoStart()
	}
}

func (h *hostTrack) dropped() { h.stopTransfer() }

func (h *hostTrack) close() {
	h.stopTransfer()
	h.stopTake()
}

// play schedules the track, countIn beats from now, from where it was
// paused or sought to.
func (h *hostTrack) play(countIn int) error {
	h.gen++
	sched := track.Schedule{
		Gen:     h.gen,
		Playing: true,
		Pos:     h.paused,
		CountIn: countIn,
		Beat:    track.DefaultBeat,
		At:      h.now() + int64(scheduleAhead) + int64(countIn)*int64(audio.Duration(track.DefaultBeat)),
	}
	h.player.Schedule(sched)
	h.sendSync()
	return nil
}

// pause stops the track where it is, and the take.
func (h *hostTrack) pause() {
	snap := h.player.Snapshot()
	cur := h.player.Current()
	if snap.Playing && snap.Gen == cur.Gen {
		// During the count-in the song has not begun: it stays where it
		// was to start.
		h.paused = max(cur.Pos, int64(snap.Pos))
	}
	h.gen++
	h.player.Schedule(track.Schedule{Gen: h.gen})
	h.stopTake()
	h.sendSync()
}

// seek moves the track to d; if it plays, it goes on from there at once.
func (h *hostTrack) seek(d time.Duration) error {
	if h.take != nil {
		return errors.New("stop recording before moving in the song")
	}
	playing := h.player.Current().Playing
	pos := int64(audio.Samples(max(0, d)))
	if t := h.track; t != nil {
		pos = min(pos, int64(len(t.Samples)))
	}
	h.paused = pos
	if playing {
		return h.play(0)
	}
	return nil
}

// record starts a take in a new folder under dir and returns the folder.
func (h *hostTrack) record(dir string) (string, error) {
	if h.take != nil {
		return "", errors.New("already recording")
	}
	if h.player.Current().Playing {
		h.pause() // the take starts where the song is
	}
	takeDir := filepath.Join(dir, "take-"+time.Now().Format("20060102-150405"))
	for i := 2; ; i++ { // two takes in one second get two folders
		if _, err := os.Stat(takeDir); errors.Is(err, fs.ErrNotExist) {
			break
		}
		takeDir = filepath.Join(dir, fmt.Sprintf("take-%s-%d", time.Now().Format("20060102-150405"), i))
	}
	take, err := record.Start(record.Config{Dir: takeDir, Track: h.track, Start: h.paused, Logger: h.log})
	if err != nil {
		return "", fmt.Errorf("could not start recording in %s: %w", dir, err)
	}
	h.take, h.lastTake = take, takeDir
	h.media.setTake(take)
	h.info("Recording into " + takeDir + ".")
	return takeDir, h.play(countInBeats)
}

// autoStart plays or records once the guest can play along, if the
// session was told to (Config.AutoPlay).
func (h *hostTrack) autoStart() {
	if !h.autoPlay || h.player.Current().Playing {
		return
	}
	if h.recordDir != "" {
		if _, err := h.record(h.recordDir); err != nil {
			h.info("The take did not start: " + err.Error() + ".")
		}
		return
	}
	h.play(countInBeats)
}

// stopTake finishes the take, if any. Track shows where the song
// stopped, and no take, before the take's files are finished (slow).
func (h *hostTrack) stopTake() {
	take := h.take
	if take != nil {
		h.take = nil
		h.media.setTake(nil)
	}
	h.publish()
	if take == nil {
		return
	}
	if err := take.Close(); err != nil {
		h.info("The recording could not be finished: " + err.Error())
		return
	}
	h.log.Info("take finished", "dir", take.Dir(), "length", take.Length(), "dropped", take.Dropped())
}

// tick runs on the sync tick: it offers the track again until the guest
// answers (the control channel opens a little after the connection), and
// tells the guest where the track is: every tick while the timeline runs
// (the guest steers its player by it), every idleSync while it stands
// still, where a sync only tells a guest that missed a change (it was
// away, or the channel was not open yet) what it missed. Each costs
// about 260 bytes on the wire and an acknowledgement: four a second were
// 10 kbit/s of a slow link's 120 that the voice could have.
func (h *hostTrack) tick(now time.Time) {
	if h.track != nil && !h.answered {
		h.offer()
	}
	if h.player.Current().Playing || now.Sub(h.synced) >= idleSync {
		h.synced = now
		h.sendSync()
	}
}

// sendSync tells the guest the schedule and where the player is.
func (h *hostTrack) sendSync() {
	if !h.link.present() {
		return
	}
	sched := h.player.Current()
	snap := h.player.Snapshot()
	h.link.send(control{Type: controlTrackSync, Sched: &sched, Snap: &snap})
}

// onControl handles the guest's messages.
func (h *hostTrack) onControl(ctx context.Context, m trackMsg) {
	switch c := m.msg; c.Type {
	case controlTrackWant:
		h.answered = true
		h.startTransfer(ctx, c.Offset)
	case controlTrackReady:
		h.partnerReady = true
		h.info("Your partner has the backing track.")
		h.autoStart()
	case controlTrackError:
		text := cleanText(c.Text, maxPartnerText)
		h.err = "your partner could not use the track: " + text
		h.info("Your partner could not use the backing track (" + text + ").")
	case controlVoicePos:
		if h.take != nil {
			h.media.guestPosition(m.conn, c.TS, c.Pos)
		}
	}
}

// startTransfer sends the track from offset on the file channel, from a
// goroutine that stops with the connection or a newer transfer.
func (h *hostTrack) startTransfer(ctx context.Context, offset int64) {
	h.stopTransfer()
	t := h.track
	conn := h.link.connID()
	if t == nil || !h.link.present() || offset < 0 || offset > int64(len(t.File)) {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	h.transfers++
	n := h.transfers
	h.sender = cancel
	h.transferred.Store(offset)
	if offset == int64(len(t.File)) {
		return // the guest has it all
	}
	h.info(fmt.Sprintf("Sending the backing track %q to your partner.", t.Name))
	h.senders.Go(func() {
		msg := make([]byte, peer.MaxFileMessage)
		for off := offset; off < int64(len(t.File)); {
			binary.BigEndian.PutUint64(msg, uint64(off))
			m := copy(msg[chunkHeader:], t.File[off:])
			if err := h.link.sendFile(ctx, conn, msg[:chunkHeader+m]); err != nil {
				h.log.Debug("track transfer stopped", "err", err)
				if ctx.Err() == nil {
					select { // offer again: the guest resumes
					case h.failed <- n:
					case <-ctx.Done():
					}
				}
				return
			}
			off += int64(m)
			h.transferred.Store(off)
		}
	})
}

// transferFailed offers the track again after transfer n stopped by
// itself (the guest resumes where it got to).
func (h *hostTrack) transferFailed(n uint32) {
	if n == h.transfers {
		h.answered = false
	}
}

// stopTransfer cancels a running transfer and waits for its goroutine.
func (h *hostTrack) stopTransfer() {
	if h.sender != nil {
		h.sender()
		h.sender = nil
	}
	h.senders.Wait()
}
