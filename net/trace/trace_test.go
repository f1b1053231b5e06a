package trace

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/net/impair"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	in := &Trace{Frame: 240, Sent: 4, Comments: []string{" hello"}, Records: []Record{
		{Seq: 65535, TS: 4294967040, Arrival: 20 * time.Millisecond},
		{Seq: 1, TS: 240, Arrival: 30 * time.Millisecond},
		{Seq: 0, TS: 0, Arrival: 30 * time.Millisecond},   // reordered
		{Seq: 1, TS: 240, Arrival: 31 * time.Millisecond}, // duplicated
	}}
	var b bytes.Buffer
	if _, err := in.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := "duet-trace v1 frame=240 sent=4\n# hello\n65535 4294967040 20000\n1 240 30000\n0 0 30000\n1 240 31000\n"
	if b.String() != want {
		t.Fatalf("wrote\n%s\nwant\n%s", b.String(), want)
	}
	out, err := Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Frame != in.Frame || out.Sent != in.Sent || !slices.Equal(out.Comments, in.Comments) || !slices.Equal(out.Records, in.Records) {
		t.Errorf("read back %+v, want %+v", out, in)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	const h = "duet-trace v1 frame=240\n"
	for _, tc := range []struct {
		name, in string
		err      error
		msg      string // in the error
	}{
		{"empty", "", ErrFormat, "empty"},
		{"no magic", "seq ts at\n", ErrFormat, "line 1: header"},
		{"other version", "duet-trace v2 frame=240\n", ErrFormat, "line 1"},
		{"no frame", "duet-trace v1\n", ErrFormat, "no frame"},
		{"zero frame", "duet-trace v1 frame=0\n", ErrFormat, "frame=0"},
		{"huge frame", "duet-trace v1 frame=9999\n", ErrFormat, "out of range"},
		{"frame twice", "duet-trace v1 frame=240 frame=480\n", ErrFormat, "repeated"},
		{"unknown key", "duet-trace v1 frame=240 rate=8000\n", ErrFormat, "unknown"},
		{"not key=value", "duet-trace v1 frame=240 x\n", ErrFormat, "key=value"},
		{"two fields", h + "1 2\n", ErrFormat, "line 2"},
		{"four fields", h + "1 2 3 4\n", ErrFormat, "line 2"},
		{"double space", h + "1  2 3\n", ErrFormat, "line 2"},
		{"seq too big", h + "65536 0 0\n", ErrFormat, "seq"},
		{"negative ts", h + "1 -2 0\n", ErrFormat, "timestamp"},
		{"ts too big", h + "1 4294967296 0\n", ErrFormat, "timestamp"},
		{"arrival not a number", h + "1 2 3.5\n", ErrFormat, "arrival"},
		{"arrival too late", h + "1 2 1099511627777\n", ErrFormat, "arrival"},
		{"arrival goes back", h + "1 240 1000\n2 480 999\n", ErrFormat, "line 3: arrival 999"},
		{"long line", h + strings.Repeat("1", 300) + "\n", ErrTooLarge, "line 2"},
		{"many comments", h + strings.Repeat("#\n", MaxComments+1), ErrTooLarge, "comments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v mentioning %q", err, tc.err, tc.msg)
			}
		})
	}
	if tr, err := Parse(strings.NewReader("duet-trace v1 frame=120\r\n1 2 3\r\n")); err != nil || len(tr.Records) != 1 {
		t.Errorf("CRLF: %v, %+v", err, tr)
	}
}

// FuzzParse: Parse never panics, and what it accepts writes back to text
// it reads the same.
func FuzzParse(f *testing.F) {
	f.Add("duet-trace v1 frame=240 sent=3\n# c\n1 240 5000\n2 480 9000\n")
	f.Add("duet-trace v1 frame=120\r\n65535 4294967295 1099511627776\r\n")
	f.Add("duet-trace v1 frame=240\n1 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := Parse(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrTooLarge", err)
			}
			return
		}
		var b bytes.Buffer
		if _, err := tr.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(&b)
		if err != nil {
			t.Fatalf("reading back %q: %v", b.String(), err)
		}
		if back.Frame != tr.Frame || back.Sent != tr.Sent || !slices.Equal(back.Comments, tr.Comments) || !slices.Equal(back.Records, tr.Records) {
			t.Fatalf("read back %+v, want %+v", back, tr)
		}
	})
}

func scenario(t *testing.T, name string) impair.Profile {
	for _, p := range impair.Scenarios() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no scenario %q", name)
	return impair.Profile{}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	p := scenario(t, "mobile")
	p.Seed = 3
	o := Options{Duration: 30 * time.Second, DriftPPM: 200, Seq: 65000}
	a, b := Generate(p, o), Generate(p, o)
	if !slices.Equal(a.Records, b.Records) {
		t.Fatal("one seed gave two traces")
	}
	p.Seed = 4
	if slices.Equal(a.Records, Generate(p, o).Records) {
		t.Fatal("two seeds gave one trace")
	}
	// 200 ppm fast: 6000 packets in 30 s nominal, 1.2 more.
	if want := 6001; a.Sent != want {
		t.Errorf("sent %d packets, want %d", a.Sent, want)
	}
	if loss := 1 - float64(len(a.Records))/float64(a.Sent); loss < 0.02 || loss > 0.09 {
		t.Errorf("%.1f %% lost, want about 5", 100*loss)
	}
	for i, r := range a.Records {
		if i > 0 && r.Arrival < a.Records[i-1].Arrival {
			t.Fatalf("record %d out of arrival order", i)
		}
		k := int(uint16(r.Seq - o.Seq)) // packets since the first; < 2¹⁶ here
		if r.TS != uint32(k*240) {
			t.Fatalf("record %d: seq %d has ts %d, want %d", i, r.Seq, r.TS, k*240)
		}
		// Sent at k periods of the fast clock, then at least the base delay.
		sent := float64(k) * 0.005 / (1 + 200e-6)
		if d := r.Arrival.Seconds() - sent; d < p.Delay.Seconds()-1e-6 || d > 1 {
			t.Fatalf("record %d delayed %.4f s", i, d)
		}
	}
	// The drift shows in the arrivals: measured against the timestamps,
	// the fastest packets of the last second come 6 ms sooner than those
	// of the first (the sender's clock gained 6 ms in 30 s).
	fastest := func(from, to float64) float64 {
		best := math.Inf(1)
		for _, r := range a.Records {
			if s := r.Arrival.Seconds(); s >= from && s < to {
				k := float64(uint16(r.Seq - o.Seq))
				best = min(best, s-k*0.005)
			}
		}
		return best
	}
	if gain := fastest(0, 1) - fastest(29, 30); math.Abs(gain-0.006) > 0.001 {
		t.Errorf("the sender gained %.4f s in 30 s, want 0.006", gain)
	}
}
