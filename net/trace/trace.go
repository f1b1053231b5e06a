// Package trace holds packet-arrival traces of one audio stream, to replay
// into a jitter buffer offline and deterministically: for each packet that
// arrived, its RTP sequence number, RTP timestamp and arrival time on the
// receiver's clock. Lost packets are absent; duplicates appear twice.
// Generate synthesises a trace from one of net/impair's profiles; Parse and
// WriteTo read and write the text format below, so a trace captured from a
// real session can be replayed the same way.
//
// # Format (version 1)
//
// UTF-8 text, one item per line, lines at most MaxLine bytes, ending in
// "\n" (a "\r" before it is allowed). The first line is the header:
//
//	duet-trace v1 frame=240 sent=12000
//
// frame is the RTP ticks per packet (48 kHz clock, so samples; 1…5760) and
// is required; sent, the packets the sender sent (lost ones included), is
// optional. Lines starting with "#" are comments (at most MaxComments), kept
// in order. Every other line is one packet, in arrival order:
//
//	<seq> <rtp-timestamp> <arrival-µs>
//
// three unsigned decimal numbers separated by single spaces: seq < 2¹⁶,
// timestamp < 2³², arrival in microseconds since the capture started,
// ≤ MaxArrival and never smaller than the line before's. A trace holds at
// most MaxRecords packets. Parse reports the first offence with its line
// number, wrapping ErrFormat or ErrTooLarge.
//
// Traces are plain values: not safe for concurrent mutation.
package trace

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Limits on what Parse accepts.
const (
	MaxLine     = 256
	MaxComments = 64
	MaxRecords  = 1 << 22 // 5.8 h of 5 ms packets
	MaxArrival  = 1 << 40 // µs: 12.7 days
	MaxFrame    = 5760    // 120 ms, Opus's longest packet
)

// Errors Parse wraps.
var (
	ErrFormat   = errors.New("trace: bad format")
	ErrTooLarge = errors.New("trace: too large")
)

const magic = "duet-trace v1"

// Record is one packet's arrival.
type Record struct {
	Seq     uint16
	TS      uint32        // RTP timestamp, 48 kHz
	Arrival time.Duration // since the trace began; whole microseconds in files
}

// Trace is one stream's arrivals. See the package doc.
type Trace struct {
	Frame    int      // RTP ticks per packet
	Sent     int      // packets sent, lost ones included; 0 if unknown
	Comments []string // without the leading "#"
	Records  []Record // in arrival order
}

// Parse reads a trace in the format of the package doc.
func Parse(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, MaxLine+2), MaxLine+2) // room for "\r\n"
	t := &Trace{}
	line := 0
	fail := func(err error, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", err, line, fmt.Sprintf(format, args...))
	}
	var last time.Duration
	for sc.Scan() {
		line++
		s := strings.TrimSuffix(sc.Text(), "\r")
		if len(s) > MaxLine {
			return nil, fail(ErrTooLarge, "longer than %d bytes", MaxLine)
		}
		if line == 1 {
			if err := t.parseHeader(s); err != nil {
				return nil, fail(ErrFormat, "%v", err)
			}
			continue
		}
		if c, ok := strings.CutPrefix(s, "#"); ok {
			if len(t.Comments) == MaxComments {
				return nil, fail(ErrTooLarge, "more than %d comments", MaxComments)
			}
			t.Comments = append(t.Comments, c)
			continue
		}
		if len(t.Records) == MaxRecords {
			return nil, fail(ErrTooLarge, "more than %d packets", MaxRecords)
		}
		rec, err := parseRecord(s)
		if err != nil {
			return nil, fail(ErrFormat, "%v", err)
		}
		if rec.Arrival < last {
			return nil, fail(ErrFormat, "arrival %d µs before the previous packet's %d µs", rec.Arrival.Microseconds(), last.Microseconds())
		}
		last = rec.Arrival
		t.Records = append(t.Records, rec)
	}
	if err := sc.Err(); err != nil {
		line++
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail(ErrTooLarge, "longer than %d bytes", MaxLine)
		}
		return nil, fmt.Errorf("trace: line %d: %w", line, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%w: empty, want the header %q", ErrFormat, magic)
	}
	return t, nil
}

func (t *Trace) parseHeader(s string) error {
	rest, ok := strings.CutPrefix(s, magic)
	if !ok || (rest != "" && rest[0] != ' ') {
		return fmt.Errorf("header %.40q, want it to start %q", s, magic)
	}
	for _, kv := range strings.Split(rest, " ")[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("header field %q, want key=value", kv)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		switch {
		case err != nil:
			return fmt.Errorf("header %s=%q: not an unsigned number", k, v)
		case k == "frame" && t.Frame == 0 && n >= 1 && n <= MaxFrame:
			t.Frame = int(n)
		case k == "sent" && t.Sent == 0:
			t.Sent = int(min(n, 1<<31-1))
		case k == "frame" || k == "sent":
			return fmt.Errorf("header %s=%s: repeated or out of range", k, v)
		default:
			return fmt.Errorf("header field %q unknown", k)
		}
	}
	if t.Frame == 0 {
		return errors.New("header has no frame=")
	}
	return nil
}

func parseRecord(s string) (Record, error) {
	f := strings.Split(s, " ")
	if len(f) != 3 {
		return Record{}, fmt.Errorf("%.40q: want \"seq timestamp arrival-µs\"", s)
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 16)
	ts, err2 := strconv.ParseUint(f[1], 10, 32)
	at, err3 := strconv.ParseUint(f[2], 10, 64)
	switch {
	case err1 != nil:
		return Record{}, fmt.Errorf("seq %.20q: want 0…65535", f[0])
	case err2 != nil:
		return Record{}, fmt.Errorf("timestamp %.20q: want 0…4294967295", f[1])
	case err3 != nil || at > MaxArrival:
		return Record{}, fmt.Errorf("arrival %.20q: want 0…%d µs", f[2], uint64(MaxArrival))
	}
	return Record{Seq: uint16(seq), TS: uint32(ts), Arrival: time.Duration(at) * time.Microsecond}, nil
}

// WriteTo writes t in the format of the package doc, arrivals rounded down
// to whole microseconds. Comments must not hold newlines.
func (t *Trace) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	count := func(k int, _ error) { n += int64(k) }
	if t.Sent > 0 {
		count(fmt.Fprintf(bw, "%s frame=%d sent=%d\n", magic, t.Frame, t.Sent))
	} else {
		count(fmt.Fprintf(bw, "%s frame=%d\n", magic, t.Frame))
	}
	for _, c := range t.Comments {
		count(fmt.Fprintf(bw, "#%s\n", c))
	}
	buf := make([]byte, 0, 40)
	for _, r := range t.Records {
		buf = strconv.AppendUint(buf[:0], uint64(r.Seq), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendUint(buf, uint64(r.TS), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, r.Arrival.Microseconds(), 10)
		buf = append(buf, '\n')
		count(bw.Write(buf))
	}
	return n, bw.Flush()
}
