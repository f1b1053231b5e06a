package app

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/duetapp/duet/net/trace"
)

// arrivals keeps the partner's packet arrivals for a trace file
// (Config.CaptureTrace): what `duetlab jitter -trace` replays into the
// playout alone, to tune it on a real path. Packets recovered from
// redundancy are not arrivals and are left out, and so is any connection
// after the first (a trace is one stream).
type arrivals struct {
	mu     sync.Mutex
	stream uint32        // the connection captured
	first  time.Duration // arrival of the first packet, on the playout's clock
	// recs is filled in chunks, so that adding never copies what is
	// there on the packet reader's goroutine.
	recs  [][]trace.Record
	count int
	last  trace.Record
	frame uint32 // RTP ticks between consecutive packets, once seen
	// fallback is the frame to write if none was seen (one packet).
	fallback uint32
}

// recChunk is how many records a chunk holds: 80 s of 5 ms packets.
const recChunk = 1 << 14

// add records one arrival; from the peer's reader goroutine.
func (a *arrivals) add(stream uint32, seq uint16, ts uint32, arrival time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.count >= trace.MaxRecords || (a.count > 0 && stream != a.stream) {
		return
	}
	if a.count == 0 {
		a.stream, a.first = stream, arrival
	} else if seq == a.last.Seq+1 && a.frame == 0 && ts != a.last.TS {
		a.frame = ts - a.last.TS
	}
	if a.count%recChunk == 0 {
		a.recs = append(a.recs, make([]trace.Record, 0, recChunk))
	}
	r := trace.Record{Seq: seq, TS: ts, Arrival: max(0, arrival-a.first)}
	a.recs[len(a.recs)-1] = append(a.recs[len(a.recs)-1], r)
	a.last = r
	a.count++
}

// write saves the trace at path.
func (a *arrivals) write(path string) error {
	a.mu.Lock()
	t := &trace.Trace{
		Frame:    int(a.frame),
		Comments: []string{" captured by duet on " + time.Now().Format(time.RFC3339)},
		Records:  make([]trace.Record, 0, a.count),
	}
	for _, c := range a.recs {
		t.Records = append(t.Records, c...)
	}
	a.mu.Unlock()
	if len(t.Records) == 0 {
		return nil // nothing arrived
	}
	if t.Frame <= 0 || t.Frame > trace.MaxFrame {
		// No two packets in a row: the partner's frame is likely ours.
		t.Frame = int(a.fallback)
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
