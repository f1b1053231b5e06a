package trace

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Recorder keeps a partner's packet arrivals as they happen, for a trace
// file: what `duetlab jitter -trace` replays into the playout alone, to
// tune it on a real path. Only the first connection is kept (a trace is
// one stream). Add may be called from one goroutine while another writes.
type Recorder struct {
	mu    sync.Mutex
	conn  uint32        // the connection recorded
	first time.Duration // arrival of the first packet
	// recs is filled in chunks, so that adding never copies what is
	// there on the packet reader's goroutine.
	recs  [][]Record
	count int
	last  Record
	frame uint32 // RTP ticks between consecutive packets, once seen
	// fallback is the frame to write if none was seen (one packet).
	fallback uint32
}

// recChunk is how many records a chunk holds: 80 s of 5 ms packets.
const recChunk = 1 << 14

// NewRecorder returns an empty recorder; fallback is the frame (RTP
// ticks per packet) to write when no two packets in a row arrived.
func NewRecorder(fallback int) *Recorder { return &Recorder{fallback: uint32(fallback)} }

// Add records one arrival on connection conn, at any clock's time at (only
// differences are kept). Its signature is app.Config.OnArrival's.
func (r *Recorder) Add(conn uint32, seq uint16, ts uint32, at time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count >= MaxRecords || (r.count > 0 && conn != r.conn) {
		return
	}
	if r.count == 0 {
		r.conn, r.first = conn, at
	} else if seq == r.last.Seq+1 && r.frame == 0 && ts != r.last.TS {
		r.frame = ts - r.last.TS
	}
	if r.count%recChunk == 0 {
		r.recs = append(r.recs, make([]Record, 0, recChunk))
	}
	rec := Record{Seq: seq, TS: ts, Arrival: max(0, at-r.first)}
	r.recs[len(r.recs)-1] = append(r.recs[len(r.recs)-1], rec)
	r.last = rec
	r.count++
}

// Trace returns what was recorded so far, or nil if nothing arrived.
func (r *Recorder) Trace() *Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == 0 {
		return nil
	}
	t := &Trace{
		Frame:    int(r.frame),
		Comments: []string{" captured by duet on " + time.Now().Format(time.RFC3339)},
		Records:  make([]Record, 0, r.count),
	}
	for _, c := range r.recs {
		t.Records = append(t.Records, c...)
	}
	if t.Frame <= 0 || t.Frame > MaxFrame {
		// No two packets in a row: the partner's frame is likely ours.
		t.Frame = int(r.fallback)
	}
	return t
}

// WriteFile saves the trace at path; with nothing recorded it writes no
// file.
func (r *Recorder) WriteFile(path string) error {
	t := r.Trace()
	if t == nil {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("packet trace: %w", err)
	}
	if _, err := t.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("packet trace: %w", err)
	}
	return f.Close()
}
