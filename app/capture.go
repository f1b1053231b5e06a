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
	recs   []trace.Record
	frame  uint32 // RTP ticks between consecutive packets, once seen
}

// add records one arrival; from the peer's reader goroutine.
func (a *arrivals) add(stream uint32, seq uint16, ts uint32, arrival time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.recs) >= trace.MaxRecords || (len(a.recs) > 0 && stream != a.stream) {
		return
	}
	if len(a.recs) == 0 {
		a.stream, a.first = stream, arrival
	} else if last := a.recs[len(a.recs)-1]; seq == last.Seq+1 && a.frame == 0 && ts != last.TS {
		a.frame = ts - last.TS
	}
	a.recs = append(a.recs, trace.Record{Seq: seq, TS: ts, Arrival: max(0, arrival-a.first)})
}

// write saves the trace at path.
func (a *arrivals) write(path string) error {
	a.mu.Lock()
	t := &trace.Trace{
		Frame:    int(a.frame),
		Comments: []string{" captured by duet on " + time.Now().Format(time.RFC3339)},
		Records:  a.recs,
	}
	a.mu.Unlock()
	if len(t.Records) == 0 {
		return nil // nothing arrived
	}
	if t.Frame <= 0 || t.Frame > trace.MaxFrame {
		return fmt.Errorf("packet trace: could not tell the partner's frame size")
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
