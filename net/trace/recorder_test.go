package trace

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecorder keeps the first connection's arrivals relative to the
// first, learns the frame from two packets in a row, and writes a file
// that parses back.
func TestRecorder(t *testing.T) {
	t.Parallel()
	r := NewRecorder(240)
	if r.Trace() != nil {
		t.Fatal("an empty recorder made a trace")
	}
	r.Add(1, 10, 1000, 5*time.Second)
	r.Add(1, 12, 1256, 5*time.Second+6*time.Millisecond) // 11 was lost: no frame from this pair
	r.Add(2, 1, 7, 6*time.Second)                        // a later connection: not this stream
	r.Add(1, 13, 1384, 5*time.Second+9*time.Millisecond)
	tr := r.Trace()
	if tr.Frame != 128 {
		t.Errorf("frame %d, want 128 (13 follows 12 by 128 ticks)", tr.Frame)
	}
	want := []Record{{10, 1000, 0}, {12, 1256, 6 * time.Millisecond}, {13, 1384, 9 * time.Millisecond}}
	if len(tr.Records) != len(want) {
		t.Fatalf("records %v, want %v", tr.Records, want)
	}
	for i := range want {
		if tr.Records[i] != want[i] {
			t.Errorf("record %d: %+v, want %+v", i, tr.Records[i], want[i])
		}
	}
	path := filepath.Join(t.TempDir(), "a.trace")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if back.Frame != 128 || len(back.Records) != 3 {
		t.Errorf("read back frame %d with %d records", back.Frame, len(back.Records))
	}
}

// TestRecorderFallbackFrame writes the fallback frame when no two packets
// in a row arrived, and no file at all when nothing did.
func TestRecorderFallbackFrame(t *testing.T) {
	t.Parallel()
	r := NewRecorder(240)
	path := filepath.Join(t.TempDir(), "none.trace")
	if err := r.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a file was written with nothing recorded: %v", err)
	}
	r.Add(1, 5, 100, time.Second)
	if tr := r.Trace(); tr.Frame != 240 {
		t.Errorf("frame %d, want the fallback 240", tr.Frame)
	}
}
