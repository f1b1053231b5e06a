package ui

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// loopBackend hosts and joins real sessions (package app) on file devices
// that sing a tone, over WebRTC on loopback, through a rendezvous server
// on a loopback port; settings and device checks are the fake's.
type loopBackend struct {
	*fakeBackend
	server string
	cache  string
	hz     float64
	name   string
}

func (b *loopBackend) config(on func(app.Event)) app.Config {
	return app.Config{
		Server:   b.server,
		Device:   filedev.New(filedev.Config{Input: &tone.Sine{Hz: b.hz, Amp: 0.3}}),
		Monitor:  1,
		Loopback: true,
		CacheDir: b.cache,
		Name:     b.name,
		OnEvent:  on,
	}
}

func (b *loopBackend) Host(ctx context.Context, on func(app.Event)) (Session, error) {
	return app.Host(ctx, b.config(on))
}

func (b *loopBackend) Join(ctx context.Context, code signal.Code, on func(app.Event)) (Session, error) {
	return app.Join(ctx, b.config(on), code)
}

// serveRendezvous runs a rendezvous server on a loopback port until the
// test ends and returns its URL.
func serveRendezvous(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { server.Serve(ctx, ln, server.New(server.Config{}), nil) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// writeSong writes seconds of a 330 Hz tone as a 48 kHz WAV file.
func writeSong(t *testing.T, path string, seconds int) {
	p := make([]float32, seconds*audio.SampleRate)
	(&tone.Sine{Hz: 330, Amp: 0.5}).Read(p)
	if err := wavfile.WriteFile(path, p); err != nil {
		t.Fatal(err)
	}
}

// TestDuetOnLoopback drives two windows through a real duet: the host
// opens a room, the guest types its code and joins, both see the partner
// connected by name, the safety code once, what they send, and the
// partner's meter move; the host loads a WAV file as the
// backing track, sees it reach the guest (100 %, "Your partner has it"),
// plays it with the space key and sees the position move on both sides,
// then records a take and finds its folder.
func TestDuetOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("a real duet on loopback takes seconds")
	}
	server := serveRendezvous(t)
	hostB := &loopBackend{fakeBackend: newFake(nil), server: server, cache: t.TempDir(), hz: 440, name: "Ana"}
	hostB.settings.RecordDir = t.TempDir()
	guestB := &loopBackend{fakeBackend: newFake(nil), server: server, cache: t.TempDir(), hz: 660, name: "Ben"}
	host, hw := newUI(t, hostB)
	guest, gw := newWindow(t, guestB, host)
	const slow = 30 * time.Second // the race detector makes WebRTC slow

	inUI(host, func() { test.Tap(button(hw, "Host a duet")) })
	var code signal.Code
	waitFor(t, host, slow, "the room", func() bool {
		if host.screen == nil || host.screen.s == nil {
			return false
		}
		code = host.screen.s.Code()
		return hasText(hw, code.String())
	})
	inUI(guest, func() {
		entry, _ := find(gw.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, code.String())
		test.Tap(button(gw, "Join"))
	})
	waitFor(t, host, slow, "the host connected to Ben", func() bool { return hasText(hw, "Connected directly to Ben") })
	waitFor(t, guest, slow, "the guest connected to Ana", func() bool { return hasText(gw, "Connected directly to Ana") })
	for _, side := range []struct {
		u *UI
		w fyne.Window
	}{{host, hw}, {guest, gw}} {
		waitFor(t, side.u, slow, "the safety code and what is sent", func() bool {
			// The codec is the one negotiated: Opus Custom between Duet
			// peers, L16 once the loopback path has proved clean.
			return side.u.screen.s.Stats().SafetyCode != "" && hasText(side.w, " kb/s") && hasText(side.w, "Sending ")
		})
		inUI(side.u, func() {
			if n := countLabels(side.w, side.u.screen.s.Stats().SafetyCode); n != 1 {
				t.Errorf("the safety code shows %d times", n)
			}
		})
	}
	waitFor(t, host, slow, "the partner's meter", func() bool {
		return formWidget[*levelMeter](hw, "Partner").b.bar > -30
	})

	song := filepath.Join(t.TempDir(), "song.wav")
	writeSong(t, song, 6)
	inUI(host, func() { host.screen.track.load(song) })
	waitFor(t, host, slow, "the track sent", func() bool {
		return host.screen.track.transfer.Value == 1 && hasText(hw, "Your partner has it.") && hasText(hw, "song.wav (0:06)") &&
			hasText(hw, "Play counts in for 2 s,")
	})
	waitFor(t, guest, slow, "the track on the guest's side", func() bool {
		return guest.screen.track.transfer.Value == 1 && hasText(gw, "song.wav (0:06)")
	})

	inUI(host, func() { test.TypeOnCanvas(hw.Canvas(), " ") })
	waitFor(t, host, slow, "the host's track playing", func() bool {
		return host.screen.track.position.Value > 0.5 && button(hw, "Pause (space)") != nil
	})
	waitFor(t, guest, slow, "the guest's track playing", func() bool {
		return guest.screen.track.position.Value > 0.5 && hasText(gw, "In step with the host's track")
	})
	waitFor(t, host, slow, "the track's meter", func() bool {
		return formWidget[*levelMeter](hw, "Track").b.bar > -30
	})

	inUI(host, func() { test.Tap(button(hw, "Record (R)")) })
	var take string
	waitFor(t, host, slow, "the take", func() bool {
		take = host.screen.s.Track().Take
		return take != "" && hasText(hw, "Recording 0:") && button(hw, "Stop (R)") != nil
	})
	if filepath.Dir(take) != hostB.settings.RecordDir {
		t.Errorf("the take went to %s, not into %s", take, hostB.settings.RecordDir)
	}
	waitFor(t, host, slow, "the take's files", func() bool {
		files, _ := os.ReadDir(take)
		return len(files) > 0
	})
	inUI(host, func() { test.Tap(button(hw, "Stop (R)")) })
	waitFor(t, host, slow, "the take finished", func() bool {
		return button(hw, "Record (R)") != nil && hasText(hw, "Last take: "+filepath.Base(take))
	})
}
