package ui

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/wavfile"
)

// The window sizes the session screen must fit without scrolling.
var screenSizes = []fyne.Size{{Width: 1280, Height: 720}, {Width: 800, Height: 600}}

// writeTake writes a take's folder as a session would: the mix (1 s of
// silence, 1 s of a tone at amp, 1 s of silence) and a voice.
func writeTake(t *testing.T, dir string, amp float32) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mix := make([]float32, 3*48000)
	(&tone.Sine{Hz: 440, Amp: amp}).Read(mix[48000:96000])
	for name, p := range map[string][]float32{record.MixFile: mix, record.HostFile: mix[:48000]} {
		if err := wavfile.WriteFile(filepath.Join(dir, name), p); err != nil {
			t.Fatal(err)
		}
	}
}

// fullSession opens a host's screen in its fullest state: connected to
// Ben with the safety code not yet compared, a track on its way to Ben
// and playing, a take recording and the last take's summary shown.
func fullSession(t *testing.T, size fyne.Size) (*UI, fyne.Window, *fakeSession) {
	a := test.NewTempApp(t)
	a.Settings().SetTheme(theme.DefaultTheme())
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "a song with a rather long name, live.wav", Length: 3 * time.Minute,
		Ready: true, Size: 100, Transferred: 50, CountIn: 2 * time.Second, Position: 42 * time.Second}}
	s.stats = app.Stats{SafetyCode: "123 456", PartnerName: "Benedict", Bitrate: 132000, Codec: "Opus Custom 2.7 ms"}
	s.stats.Peer.Candidate, s.stats.Peer.PacketsReceived = "host", 100
	s.latency = app.Latency{Codec: 3 * time.Millisecond, Network: 8 * time.Millisecond, Jitter: 5 * time.Millisecond, Device: 4 * time.Millisecond}
	b := newFake(hostedFake{fakeSession: s, link: "https://duet.example.org/j/K7QM-3XRT"})
	b.settings.RecordDir = t.TempDir()
	writeTake(t, filepath.Join(b.settings.RecordDir, "take-1"), 0.5)
	u, w := newWindow(t, b)
	w.Resize(size)
	inUI(u, func() { test.Tap(button(w, "Host a duet")) })
	eventually(t, u, "the session screen", func() bool { return u.screen != nil && u.screen.news != nil })
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner directly (host candidate). Lost the rendezvous server; reconnecting to it. Your duet goes on meanwhile."})
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "r") })
	eventually(t, u, "recording", func() bool { return button(w, "Stop (R)") != nil })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "r") })
	eventually(t, u, "the take's summary", func() bool { return u.screen.rec.wave.Visible() })
	inUI(u, func() { test.TypeOnCanvas(w.Canvas(), "r") })
	eventually(t, u, "recording again, the track on its way", func() bool {
		return button(w, "Stop (R)") != nil && u.screen.safetyRow.Visible() && u.screen.track.transfer.Visible()
	})
	return u, w, s
}

// placed finds o under root: whether it and everything above it is
// visible, and whether a scroll container holds it.
func placed(root, o fyne.CanvasObject) (found, visible, scrolled bool) {
	if root == o {
		return true, o.Visible(), false
	}
	var children []fyne.CanvasObject
	switch c := root.(type) {
	case *fyne.Container:
		children = c.Objects
	case fyne.Widget:
		children = test.WidgetRenderer(c).Objects()
	}
	for _, child := range children {
		if found, visible, scrolled = placed(child, o); found {
			_, scroll := root.(*container.Scroll)
			return true, visible && root.Visible(), scrolled || scroll
		}
	}
	return false, false, false
}

// TestSessionFits: at 1280 × 720 and 800 × 600, with the plot or the
// details showing, what a singer needs mid-song is inside the window, at
// its full size, shown and not in a scroll container.
func TestSessionFits(t *testing.T) {
	for _, size := range screenSizes {
		for _, details := range []bool{false, true} {
			// A subtest each: its windows are gone before the next one's
			// (Fyne's caches are shared, the windows' locks are not).
			t.Run(fmt.Sprintf("%vx%v details %v", size.Width, size.Height, details), func(t *testing.T) {
				u, w, _ := fullSession(t, size)
				inUI(u, func() {
					if details {
						u.screen.toggleDetails()
					}
					checkFits(t, w, u.screen, size, details)
				})
			})
		}
	}
}

func checkFits(t *testing.T, w fyne.Window, sc *sessionScreen, size fyne.Size, details bool) {
	t.Helper()
	for _, e := range fitErrors(w, sc, size, details) {
		t.Error(e)
	}
	if sc.track.pos.Text != "0:42 / 3:00" || sc.rec.info.Text != "Recording 0:00" {
		t.Errorf("%v: the times read %q and %q", size, sc.track.pos.Text, sc.rec.info.Text)
	}
}

// fitErrors says what of a host's session screen in w is not shown
// whole inside a window of size. UI goroutine.
func fitErrors(w fyne.Window, sc *sessionScreen, size fyne.Size, details bool) []string {
	var errs []string
	where := fmt.Sprintf("%vx%v", size.Width, size.Height)
	if details {
		where += " with the details"
	}
	if min := w.Content().MinSize(); min.Width > size.Width || min.Height > size.Height {
		errs = append(errs, fmt.Sprintf("%s: the screen needs %v", where, min))
	}
	if got := w.Canvas().Size(); got != size {
		errs = append(errs, fmt.Sprintf("%s: the window is %v", where, got))
	}
	controls := map[string]fyne.CanvasObject{
		"the partner's state": sc.partner, "the latency": sc.total, "the light": sc.light,
		"your meter": sc.levels.mic, "the partner's meter": sc.levels.partner, "the track's meter": sc.levels.track,
		"mute": sc.levels.mute, "partner volume": sc.levels.partnerVol, "hear yourself": sc.levels.monitor,
		"position": sc.track.position, "the track's time": sc.track.pos, "the track": sc.track.name,
		"the keys": sc.help, "details": sc.detailsButton, "leave": sc.leave,
	}
	if sc.host {
		controls["play"], controls["record"], controls["the recording's time"] = sc.track.play, sc.rec.record, sc.rec.info
		controls["the browser link"] = sc.linkRow
	}
	if sc.safetyRow.Visible() {
		controls["the safety code"] = sc.safetyRow
	}
	if !details {
		controls["the plot"] = sc.plot
	}
	for name, o := range controls {
		found, visible, scrolled := placed(w.Content(), o)
		pos := fyne.CurrentApp().Driver().AbsolutePositionForObject(o)
		end := pos.Add(o.Size())
		switch {
		case !found || !visible:
			errs = append(errs, fmt.Sprintf("%s: %s is not shown", where, name))
		case scrolled:
			errs = append(errs, fmt.Sprintf("%s: %s is in a scroll container", where, name))
		case pos.X < 0 || pos.Y < 0 || end.X > size.Width+0.5 || end.Y > size.Height+0.5:
			errs = append(errs, fmt.Sprintf("%s: %s lies at %v…%v, outside the window", where, name, pos, end))
		case o.Size().Width+0.5 < o.MinSize().Width || o.Size().Height+0.5 < o.MinSize().Height:
			errs = append(errs, fmt.Sprintf("%s: %s is squeezed to %v of %v", where, name, o.Size(), o.MinSize()))
		}
	}
	return errs
}

// TestGuestFits: a guest's screen, with the track on its way, the
// safety code and two lines of news, fits 800 × 600.
func TestGuestFits(t *testing.T) {
	a := test.NewTempApp(t)
	a.Settings().SetTheme(theme.DefaultTheme())
	s := &fakeSession{code: "K7QM3XRT", track: app.TrackStatus{Name: "song.wav", Length: time.Minute, Ready: true, Size: 100, Transferred: 40, CountIn: 2 * time.Second}}
	s.stats = app.Stats{SafetyCode: "123 456", PartnerName: "Ana"}
	s.stats.Peer.Candidate, s.stats.Peer.PacketsReceived, s.stats.Peer.Relayed = "relay", 100, true
	s.latency = app.Latency{Codec: 3 * time.Millisecond, Network: 28 * time.Millisecond, Jitter: 9 * time.Millisecond}
	b := newFake(s)
	u, w := newWindow(t, b)
	w.Resize(screenSizes[1])
	inUI(u, func() {
		entry, _ := find(w.Content(), func(e *widget.Entry) bool { return true })
		test.Type(entry, "K7QM3XRT")
		test.Tap(button(w, "Join"))
	})
	eventually(t, u, "the session screen", func() bool { return u.screen != nil && u.screen.news != nil })
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner through a relay (relay candidate). " + strings.Repeat("Some news to read. ", 20)})
	eventually(t, u, "the safety code and the track", func() bool {
		return u.screen.safetyRow.Visible() && u.screen.track.transfer.Visible() && hasText(w, "Connected through a relay to Ana")
	})
	inUI(u, func() {
		for _, e := range fitErrors(w, u.screen, screenSizes[1], false) {
			t.Error(e)
		}
	})
}

// TestTabReachesEveryControl: Tab goes round every control of the
// session screen, the details' too once they are open.
func TestTabReachesEveryControl(t *testing.T) {
	u, w, _ := fullSession(t, screenSizes[1])
	inUI(u, func() {
		sc := u.screen
		want := map[fyne.Focusable]string{
			findKeyButton(w, "Copy"): "Copy", findKeyButton(w, "Copy link"): "Copy link", findKeyButton(w, "Same on both screens"): "Same", sc.levels.mute: "Mute",
			sc.levels.partnerVol: "Partner volume", sc.levels.monitor: "Hear yourself", findKeyButton(w, "Load track…"): "Load",
			sc.track.play: "Play", sc.track.position: "Position", sc.rec.record: "Record", sc.rec.showFiles: "Show files",
			sc.detailsButton: "Details", sc.leave: "Leave",
		}
		checkTabs(t, w, want)
		sc.toggleDetails()
		speakers, _ := find(w.Content(), func(c *keyCheck) bool { return strings.Contains(c.Text, "speakers") })
		want[speakers] = "Speakers"
		checkTabs(t, w, want)
	})
}

func findKeyButton(w fyne.Window, label string) *keyButton {
	var found *keyButton
	find(w.Content(), func(o fyne.CanvasObject) bool {
		if b, ok := o.(*keyButton); ok && b.Text == label {
			found = b
		}
		return found != nil
	})
	return found
}

// checkTabs presses Tab until the focus comes round and checks that it
// met every control in want.
func checkTabs(t *testing.T, w fyne.Window, want map[fyne.Focusable]string) {
	t.Helper()
	w.Canvas().Unfocus()
	met := map[fyne.Focusable]bool{}
	for range 50 {
		test.FocusNext(w.Canvas())
		f := w.Canvas().Focused()
		if met[f] {
			break
		}
		met[f] = true
	}
	for f, name := range want {
		if !met[f] {
			t.Errorf("Tab never reaches %s", name)
		}
	}
}

// press types keys as Fyne's window does: each goes to the focused
// widget as a key, then as a rune; with nothing focused, to the canvas.
// (test.TypeOnCanvas always gives them to the canvas.)
func press(c fyne.Canvas, keys string) {
	for _, r := range keys {
		name := fyne.KeyName(strings.ToUpper(string(r)))
		if r == ' ' {
			name = fyne.KeySpace
		}
		if f := c.Focused(); f != nil {
			f.TypedKey(&fyne.KeyEvent{Name: name})
			f.TypedRune(r)
			continue
		}
		if on := c.OnTypedKey(); on != nil {
			on(&fyne.KeyEvent{Name: name})
		}
		c.OnTypedRune()(r)
	}
}

// TestKeysWhileFocused: M and R still work while a control has the
// focus; space on a slider plays, on the mute check it is the check's.
func TestKeysWhileFocused(t *testing.T) {
	u, w, s := fullSession(t, screenSizes[0])
	inUI(u, func() {
		w.Canvas().Focus(u.screen.levels.partnerVol)
		press(w.Canvas(), "m")
	})
	if !s.Muted() {
		t.Fatal("M on the volume slider did not mute")
	}
	inUI(u, func() {
		w.Canvas().Focus(u.screen.rec.record)
		press(w.Canvas(), "m")
	})
	if s.Muted() {
		t.Fatal("M on the Record button did not unmute")
	}
	inUI(u, func() {
		w.Canvas().Focus(u.screen.levels.mute)
		press(w.Canvas(), "r") // stops the take
	})
	eventually(t, u, "the take stopped", func() bool { return !s.Track().Recording })
	inUI(u, func() { press(w.Canvas(), " ") })
	if !s.Muted() || s.Track().Playing {
		t.Fatalf("space on the mute check: muted %v, playing %v; want muted, not playing", s.Muted(), s.Track().Playing)
	}
	inUI(u, func() {
		w.Canvas().Focus(u.screen.track.position)
		press(w.Canvas(), " ")
	})
	eventually(t, u, "playing", func() bool { return s.Track().Playing })
	inUI(u, func() {
		w.Canvas().Focus(u.screen.track.play)
		press(w.Canvas(), " ") // presses Pause
	})
	eventually(t, u, "paused", func() bool { return !s.Track().Playing })
}

// TestTakeSummaryAfterStop: after Stop the screen tells the take's
// length and files and draws its mix: loud in the middle second, silent
// around it.
func TestTakeSummaryAfterStop(t *testing.T) {
	u, _, _ := fullSession(t, screenSizes[0])
	inUI(u, func() {
		text := u.screen.rec.take.Text
		for _, s := range []string{"take-1: 0:03.", "mix.wav (282 KB)", "host.wav (94 KB)"} {
			if !strings.Contains(text, s) {
				t.Errorf("the summary %q does not say %q", text, s)
			}
		}
		peaks := u.screen.rec.wave.peaks
		if len(peaks) != waveColumns {
			t.Fatalf("%d columns", len(peaks))
		}
		third := waveColumns / 3
		for i, p := range peaks {
			loud := i >= third && i < 2*third
			if loud && math.Abs(float64(p)-0.5) > 0.01 || !loud && p != 0 {
				t.Errorf("column %d: peak %.3f", i, p)
			}
		}
	})
}

func TestEnvelopeOfMissingTake(t *testing.T) {
	if _, err := summarize(filepath.Join(t.TempDir(), "nothing")); err == nil {
		t.Fatal("no error for a take that is not there")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, record.MixFile), []byte("not a wav"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := summarize(dir); err == nil || !strings.Contains(err.Error(), "mix.wav") {
		t.Fatalf("a broken mix: %v", err)
	}
}

// wavBytes is a mono 48 kHz WAV file of p in integer PCM of width bytes.
func wavBytes(p []float32, width int) []byte {
	data := make([]byte, 0, len(p)*width)
	for _, x := range p {
		v := int64(float64(x) * float64(int64(1)<<(8*width-1)-1))
		if width == 1 {
			v += 128
		}
		for i := range width {
			data = append(data, byte(v>>(8*i)))
		}
	}
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(data)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // integer PCM
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], 48000)
	binary.LittleEndian.PutUint32(h[28:], uint32(48000*width))
	binary.LittleEndian.PutUint16(h[32:], uint16(width))
	binary.LittleEndian.PutUint16(h[34:], uint16(8*width))
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(data)))
	return append(h, data...)
}

// TestEnvelopeWidths: the waveform of a take in 8-, 16-, 24- and 32-bit
// PCM: half a second of silence, then a tone of amplitude −0.6 to 0.6.
func TestEnvelopeWidths(t *testing.T) {
	p := make([]float32, 48000)
	(&tone.Sine{Hz: 250, Amp: 0.6}).Read(p[24000:])
	for width := 1; width <= 4; width++ {
		path := filepath.Join(t.TempDir(), "mix.wav")
		if err := os.WriteFile(path, wavBytes(p, width), 0o644); err != nil {
			t.Fatal(err)
		}
		peaks, length, err := envelope(path, 4)
		if err != nil {
			t.Fatalf("%d-bit: %v", 8*width, err)
		}
		if length != time.Second {
			t.Errorf("%d-bit: %v long", 8*width, length)
		}
		for i, want := range []float64{0, 0, 0.6, 0.6} {
			if math.Abs(float64(peaks[i])-want) > 0.01 {
				t.Errorf("%d-bit: column %d peaks at %.3f, want %.1f", 8*width, i, peaks[i], want)
			}
		}
	}
}
