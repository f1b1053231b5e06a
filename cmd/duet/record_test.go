package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/wavfile"
)

// TestRecordingSurvivesKill records a take with a backing track, kills the
// host with SIGKILL mid-song, and checks that every file of the take is a
// valid WAV whose header says what it holds, missing at most a second.
func TestRecordingSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	srv, url := serve(t)
	song := filepath.Join(dir, "song.wav")
	writeTone(t, song, 220, 30)
	takes := filepath.Join(dir, "takes")
	host := start(t, "host", "-server", url, "-tone", "440", "-loopback", "-track", song, "-record", takes, "-status", "1s")
	code := host.line(t)
	start(t, "join", code, "-server", url, "-tone", "660", "-loopback")
	host.waitFor(t, "Recording into ")
	began := time.Now()
	m := regexp.MustCompile(`Recording into (\S+)\.\s`).FindStringSubmatch(host.stderr.String())
	take := m[1]
	// Sing until the stems hold a few seconds of the song: the count-in
	// and the schedule's lead (3 s) and more, by the host's status lines,
	// a second apart.
	host.waitCount(t, "Recording into ", "duet: partner", 6)
	if err := host.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	host.wait(t)
	killed := time.Since(began)

	for _, name := range []string{record.HostFile, record.GuestFile, record.TrackFile, record.MixFile, record.LiveFile} {
		path := filepath.Join(take, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) < 44 || string(data[:4]) != "RIFF" || string(data[36:40]) != "data" {
			t.Fatalf("%s: not a WAV file", name)
		}
		riff, size := binary.LittleEndian.Uint32(data[4:]), binary.LittleEndian.Uint32(data[40:])
		// The header may trail the data by what was written after the
		// last flush; never claim more than is there.
		if int(size) > len(data)-44 || int(riff) != 36+int(size) {
			t.Errorf("%s: header says %d bytes of data (RIFF %d), the file has %d", name, size, riff, len(data)-44)
		}
		p, err := wavfile.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := audio.Duration(len(p))
		// live.wav runs from the take's start; the stems from the song's:
		// a count-in (2.5 s) later, and the half second the host's
		// schedule gives the guest to hear of it (app's scheduleAhead).
		// Counting only the count-in left half the second's allowance,
		// and a slow machine's flush missed it by 18 ms.
		want := killed
		if name != record.LiveFile {
			want -= 3 * time.Second
		}
		t.Logf("%s: %v of %v", name, got.Round(time.Millisecond), want.Round(time.Millisecond))
		if got < want-time.Second {
			t.Errorf("%s holds %v, want at least %v less a second", name, got, want)
		}
	}
	stopServer(t, srv)
}
