package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio/track"
)

// noLink is a connection that is never there.
type noLink struct{}

func (noLink) connID() uint32 { return 0 }
func (noLink) present() bool  { return false }
func (noLink) send(control)   {}
func (noLink) sendFile(context.Context, uint32, []byte) error {
	return errConnectionGone
}

// TestTrackCachePrune prunes a cache at three times: old files and stale
// parts go, then the least recently used until the offered track fits; the
// offered track's own files and anything not named like a track stay.
func TestTrackCachePrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	name := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	keep := name("offered")
	put := func(file string, size int, used time.Time) {
		t.Helper()
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, used, used); err != nil {
			t.Fatal(err)
		}
	}
	put(name("a"), 400, now.Add(-time.Hour))
	put(name("b"), 400, now.Add(-2*time.Hour))
	put(name("c"), 400, now.Add(-31*24*time.Hour))      // unused for a month
	put(name("d")+".part", 100, now.Add(-25*time.Hour)) // abandoned a day ago
	put(name("e")+".part", 100, now.Add(-time.Hour))
	put(keep, 300, now.Add(-40*24*time.Hour))
	put(keep+".part", 300, now.Add(-40*24*time.Hour))
	put("notes.txt", 5000, now.Add(-400*24*time.Hour))
	put(strings.ToUpper(name("f")), 5000, now.Add(-400*24*time.Hour))
	if err := os.Mkdir(filepath.Join(dir, name("g")), 0o755); err != nil {
		t.Fatal(err)
	}
	lim := cacheLimits{maxBytes: 1000, maxAge: 30 * 24 * time.Hour, partAge: 24 * time.Hour}
	for _, step := range []struct {
		at      time.Time
		need    int64
		removed []string
	}{
		// c and d by age; then 900 + 300 bytes > 1000: b, the least
		// recently used, goes.
		{now, 300, []string{name("b"), name("c"), name("d") + ".part"}},
		// Two days on the part has not grown.
		{now.Add(48 * time.Hour), 0, []string{name("e") + ".part"}},
		// A month on nothing was used.
		{now.Add(31 * 24 * time.Hour), 0, []string{name("a")}},
		{now.Add(400 * 24 * time.Hour), 0, nil},
	} {
		removed, err := pruneCache(dir, keep, step.need, step.at, lim)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(removed)
		slices.Sort(step.removed)
		if !slices.Equal(removed, step.removed) {
			t.Errorf("at %v: removed %q, want %q", step.at, removed, step.removed)
		}
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	want := []string{keep, keep + ".part", "notes.txt", strings.ToUpper(name("f")), name("g")}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("left %q, want %q", names, want)
	}
}

// TestTrackErrorCleaned has a guest send the host a track-error with
// control characters (a terminal escape, a newline) and 10,000 runes: the
// host's status and event show it printable and bounded.
func TestTrackErrorCleaned(t *testing.T) {
	var told []string
	c := newTrackController(trackConfig{
		player: track.NewPlayer(),
		link:   noLink{},
		info:   func(text string) { told = append(told, text) },
		log:    testkit.Logger(t),
	}, true)
	text := "bad\x1b[2J\x1b[31mfile\nnext\u202e" + strings.Repeat("é", 10000)
	c.onControl(context.Background(), trackMsg{msg: control{Type: controlTrackError, Text: text}})
	c.publish()
	shown := append([]string{c.status().Error}, told...)
	if len(shown) != 2 {
		t.Fatalf("shown %q, want the status and one event", shown)
	}
	for _, got := range shown {
		if !strings.Contains(got, "bad[2J[31mfilenext") {
			t.Errorf("%q lost the printable text", got)
		}
		if strings.ContainsFunc(got, func(r rune) bool { return !unicode.IsPrint(r) }) {
			t.Errorf("%q has unprintable characters", got)
		}
		if n := utf8.RuneCountInString(got); n > maxPartnerText+60 {
			t.Errorf("%d runes shown, want at most %d of the partner's", n, maxPartnerText)
		}
	}
}

func TestTrackName(t *testing.T) {
	for in, want := range map[string]string{
		"song.mp3":                 "song.mp3",
		"/home/ana/Music/song.mp3": "song.mp3",
		"../../etc/passwd":         "passwd",
		"":                         "track",
		"/":                        "track",
		"\x1b[2Jsong\n.mp3":        "[2Jsong.mp3",
		strings.Repeat("a", 500):   strings.Repeat("a", maxTrackName),
	} {
		if got := trackName(in); got != want {
			t.Errorf("trackName(%q) = %q, want %q", in, got, want)
		}
	}
}
