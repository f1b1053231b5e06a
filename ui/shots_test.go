package ui

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/tone"
)

// shotsEnv, set to a folder, makes the test binary take the screenshots
// there in Fyne's real window instead of running the tests: Fyne's
// window must own the main thread, which a test does not.
const shotsEnv = "DUET_UI_SHOTS"

// The screens the screenshots show, in the order taken.
var shotScenes = []string{"setup", "home", "session", "details", "take"}

func TestMain(m *testing.M) {
	if dir := os.Getenv(shotsEnv); dir != "" {
		os.Exit(takeShots(dir))
	}
	os.Exit(m.Run())
}

// TestScreenshotsUnderXvfb starts an X server of its own (Xvfb, on a
// display it picks, large enough for 1280 × 720), runs this package's
// test binary in Fyne's real window on it, and checks what comes back: each scene at
// 1280 × 720 and 800 × 600, the size asked, not blank, and the session's
// mid-song controls inside the window, unscrolled (checked in the real
// window). With DUET_SCREENSHOTS set, the pictures are kept there
// (assets/screenshots holds the committed ones). It runs where the
// window tests run: with DUET_DISPLAY set, as in .ci/run, or with
// DUET_SCREENSHOTS.
func TestScreenshotsUnderXvfb(t *testing.T) {
	dir := os.Getenv("DUET_SCREENSHOTS")
	if os.Getenv("DUET_DISPLAY") == "" && dir == "" {
		t.Skip("no DUET_DISPLAY or DUET_SCREENSHOTS: the screenshots need Xvfb")
	}
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	display := startXvfb(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute) // a first build compiles Fyne's GL code
	defer cancel()
	// The child is this package's test binary built without the race
	// detector, whatever this one was built with: under it, Fyne's
	// painting took minutes a scene on two busy cores. The race detector
	// watches the same code in the other tests.
	bin := filepath.Join(t.TempDir(), "ui.test")
	if out, err := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the screenshots' binary: %v\n%s", err, out)
	}
	child := exec.CommandContext(ctx, bin, "-test.run=^$")
	child.Env = append(os.Environ(), shotsEnv+"="+dir, "DISPLAY="+display, "FYNE_SCALE=1",
		"LANG=en_US.UTF-8", "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	var out bytes.Buffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Run(); err != nil {
		t.Fatalf("the screenshots: %v\n%s", err, out.String())
	}
	for _, size := range screenSizes {
		for _, scene := range shotScenes {
			checkShot(t, filepath.Join(dir, shotName(scene, size)), size)
		}
	}
}

func shotName(scene string, size fyne.Size) string {
	return fmt.Sprintf("%s-%vx%v.png", scene, size.Width, size.Height)
}

// startXvfb runs Xvfb until the test ends and returns its display: one
// far from :0 and :99, where other X servers and their clients are
// usually, so none of them talks to this one by mistake.
func startXvfb(t *testing.T) string {
	var tried []string
	for range 5 {
		display := fmt.Sprintf(":%d", 200+rand.IntN(700))
		if err := tryXvfb(t, display); err != nil {
			tried = append(tried, err.Error())
			continue
		}
		return display
	}
	t.Fatalf("no Xvfb started (the screenshots need it: apt-get install xvfb):\n%s", strings.Join(tried, "\n"))
	return ""
}

// tryXvfb starts Xvfb on display and waits until it accepts clients;
// the test's end stops it.
func tryXvfb(t *testing.T, display string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	// -displayfd: it writes the display there once it accepts clients.
	// -noreset: it stays as it is between clients (xdotool, import).
	x := exec.Command("Xvfb", display, "-displayfd", "3", "-noreset", "-screen", "0", "1600x1000x24", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{w}
	log := &syncBuffer{}
	x.Stderr = log
	if err := x.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := bufio.NewReader(r).ReadString('\n'); err != nil {
		x.Process.Kill()
		x.Wait()
		return fmt.Errorf("Xvfb %s: %v: %s", display, err, log.String())
	}
	t.Cleanup(func() {
		x.Process.Signal(syscall.SIGTERM) // it removes its lock and socket
		x.Wait()
		if t.Failed() {
			t.Logf("Xvfb %s said:\n%s", display, log.String())
		}
	})
	return nil
}

// syncBuffer is a bytes.Buffer for a process's output, read while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// checkShot checks a screenshot is the window's size and not blank:
// text, meters and the plot make many distinct colours.
func checkShot(t *testing.T, path string, size fyne.Size) {
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() != int(size.Width) || b.Dy() != int(size.Height) {
		t.Errorf("%s is %dx%d, want the window's %v", path, b.Dx(), b.Dy(), size)
	}
	if n := colours(img); n < 20 {
		t.Errorf("%s shows %d colours: blank?", path, n)
	}
}

func colours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}

// takeShots is the child's side: it shows each scene in a real window at
// each size and writes what the window shows into dir. It returns the
// exit code.
func takeShots(dir string) int {
	a := fyneapp.NewWithID("io.duet.screenshots")
	errc := make(chan error, 1)
	go func() {
		var w fyne.Window
		fyne.DoAndWait(func() {
			w = a.NewWindow("Duet")
			w.Show()
		})
		var errs []error
		for _, size := range screenSizes {
			errs = append(errs, shootAll(w, dir, size))
		}
		errc <- errors.Join(errs...)
		fyne.Do(a.Quit)
	}()
	a.Run()
	if err := <-errc; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// fastClock runs speed times faster than real time from base, so a
// minute of the session's plot fills in a few seconds.
type fastClock struct {
	base  time.Time
	speed float64
}

func (c fastClock) now() time.Time {
	return c.base.Add(time.Duration(float64(time.Since(c.base)) * c.speed))
}

// scriptedSession is a fake session whose figures follow its clock: a
// duet with Ben over a LAN in which, half a minute in, the network gets
// worse for a quarter of a minute (someone starts streaming), with some
// loss, and the jitter buffer grows and slowly shrinks again.
type scriptedSession struct {
	*fakeSession
	now      func() time.Time
	start    time.Time
	recStart time.Time // guarded by fakeSession.mu
}

func newScriptedSession(now func() time.Time) *scriptedSession {
	s := &scriptedSession{now: now, start: now(), fakeSession: &fakeSession{code: "K7QM3XRT"}}
	s.track = app.TrackStatus{Name: "Autumn Leaves (backing).wav", Length: 3*time.Minute + 12*time.Second,
		Size: 1 << 20, Transferred: 1 << 20, Ready: true, PartnerReady: true, CountIn: 2 * time.Second}
	s.stats = app.Stats{PartnerName: "Ben", SafetyCode: "482 913", Bitrate: 132000, Codec: "Opus Custom 2.7 ms",
		PartnerCodec: "Opus Custom 2.7 ms", DeviceRoundTrip: 10600 * time.Microsecond,
		NTP: app.NTPStatus{Server: "pool.ntp.org", Offset: 800 * time.Microsecond}}
	s.stats.Peer.Candidate, s.stats.Peer.Address = "host", "192.168.1.23:50412"
	return s
}

// elapsed is the session's time in seconds.
func (s *scriptedSession) elapsed() float64 { return s.now().Sub(s.start).Seconds() }

// bump is how far into the bad quarter minute t is: 0 outside, rising
// to 1 and back.
func bump(t float64) float64 {
	if t < 30 || t > 45 {
		return 0
	}
	return math.Sin(math.Pi * (t - 30) / 15)
}

func msf(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

func (s *scriptedSession) Latency() app.Latency {
	t := s.elapsed()
	after := 0.0 // the jitter buffer shrinks slowly once it is over
	if t > 45 {
		after = math.Exp(-(t - 45) / 10)
	}
	return app.Latency{
		Device:  5300 * time.Microsecond,
		Codec:   3300 * time.Microsecond,
		Network: msf(4 + 0.4*math.Sin(t*1.7) + 0.3*math.Sin(t*4.1) + 9*bump(t)),
		Jitter:  msf(3 + 0.3*math.Sin(t*0.9) + 6*bump(t) + 4*after),
	}
}

func (s *scriptedSession) Stats() app.Stats {
	st := s.fakeSession.Stats()
	t := s.elapsed()
	const packets = 375           // a second, at 2.67 ms each
	lossy := min(max(t-33, 0), 9) // the worst of the quarter minute
	st.Voice.PacketsReceived = int64(packets * t)
	st.Voice.PacketsLost = int64(packets * (0.0005*t + 0.02*lossy))
	st.Voice.PacketsRecovered = st.Voice.PacketsLost / 3
	st.Voice.PlayedSamples = int64(48000 * t)
	st.Voice.ConcealedSamples = int64(48000 * (0.0004*t + 0.012*lossy))
	st.Peer.PacketsReceived = st.Voice.PacketsReceived
	st.Peer.RTT = 2 * s.Latency().Network
	return st
}

func (s *scriptedSession) Levels() app.Levels {
	t := s.elapsed()
	level := func(base, swing, period, phase float64) meter.Level {
		peak := base + swing*math.Sin(2*math.Pi*t/period+phase)
		return meter.Level{Peak: peak, RMS: peak - 6}
	}
	return app.Levels{Mic: level(-11, 5, 2.3, 0), Partner: level(-19, 5, 3.1, 1), Track: level(-15, 2, 0.7, 2), Output: level(-9, 3, 1.1, 0)}
}

func (s *scriptedSession) Record(dir string) (string, error) {
	take, err := s.fakeSession.Record(dir)
	s.mu.Lock()
	s.recStart = s.now()
	s.mu.Unlock()
	return take, err
}

func (s *scriptedSession) Track() app.TrackStatus {
	t := s.fakeSession.Track()
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Recording {
		t.Recorded = s.now().Sub(s.recStart)
		t.Position = 42*time.Second + t.Recorded
	}
	return t
}

// writeSong writes dir's mix as the take would have it: seconds of two
// voices singing phrases over a quiet track.
func writeSongTake(dir string, seconds int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n := seconds * 48000
	mix := make([]float32, n)
	voice := make([]float32, n)
	for _, v := range []struct {
		hz     float64
		amp    float32
		phrase float64
	}{{220, 0.22, 3.7}, {330, 0.18, 4.3}, {110, 0.08, 0}} {
		(&tone.Sine{Hz: v.hz, Amp: v.amp}).Read(voice)
		env := float32(1)
		for i, x := range voice {
			if i%480 == 0 && v.phrase > 0 { // sung in phrases, with breaths between
				t := float64(i) / 48000
				s := math.Mod(t, v.phrase) / v.phrase
				env = float32(math.Max(0, math.Sin(math.Pi*s*1.15)) * (0.6 + 0.4*math.Sin(t*1.3)))
			}
			mix[i] += x * env
		}
	}
	mixFile := filepath.Join(dir, record.MixFile)
	if err := os.WriteFile(mixFile, wavBytes(mix, 2), 0o644); err != nil {
		return err
	}
	// The other files only need to be there, as large as they would be.
	for _, name := range []string{record.HostFile, record.GuestFile, record.TrackFile, record.LiveFile} {
		if err := os.Link(mixFile, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// onUI runs fn on the UI goroutine, as u's updates run, and waits.
func onUI(u *UI, fn func()) {
	fyne.DoAndWait(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		fn()
	})
}

// until waits up to 20 s for cond (run on the UI goroutine).
func until(u *UI, what string, cond func() bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		onUI(u, func() { ok = cond() })
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for " + what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shooter writes what a window shows.
type shooter struct {
	dir  string
	size fyne.Size
	last []byte // the last picture's pixels
}

// shot waits until the window shows something new (it draws on its next
// frame, up to 60 times a second) and writes it as scene.
func (s *shooter) shot(scene string) error {
	deadline := time.Now().Add(10 * time.Second)
	var img *image.NRGBA
	for {
		captured, err := captureX()
		if err != nil {
			return fmt.Errorf("%s at %v: %w", scene, s.size, err)
		}
		img = toNRGBA(captured)
		if !bytes.Equal(img.Pix, s.last) && colours(img) >= 20 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %v: the window shows nothing new (%d colours, %v)", scene, s.size, colours(img), img.Bounds())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.last = img.Pix
	f, err := os.Create(filepath.Join(s.dir, shotName(scene, s.size)))
	if err != nil {
		return err
	}
	defer f.Close()
	return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(f, img)
}

// captureX takes what the X server shows of the window, as a singer
// sees it. (Fyne's Canvas.Capture reads GL's front buffer, which Mesa's
// software renderer under Xvfb leaves black.) The screens come one
// window at a time, so the window named Duet is the one.
func captureX() (image.Image, error) {
	out, err := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Duet$").Output()
	if err != nil || len(strings.Fields(string(out))) != 1 {
		return nil, fmt.Errorf("xdotool found %q: %v", out, err)
	}
	shot, err := exec.Command("import", "-window", strings.Fields(string(out))[0], "png:-").Output()
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return png.Decode(bytes.NewReader(shot))
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	b := img.Bounds()
	n := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			n.Set(x, y, img.At(x, y))
		}
	}
	return n
}

// show shows a new UI over b in w.
func show(w fyne.Window, b Backend, now func() time.Time) *UI {
	var u *UI
	fyne.DoAndWait(func() { u = newWithClock(w, b, now) })
	return u
}

// shootAll takes every scene at size in w: the first-run setup, home,
// the session a minute into a song being recorded, its details, and the
// take after Stop.
func shootAll(w fyne.Window, dir string, size fyne.Size) error {
	fyne.DoAndWait(func() { w.Resize(size) })
	clock := fastClock{base: time.Now(), speed: 10}
	s := newScriptedSession(clock.now)
	b := newFake(s)
	takes, err := os.MkdirTemp("", "duet-shots")
	if err != nil {
		return err
	}
	defer os.RemoveAll(takes)
	b.settings = app.Settings{Name: "Ana", RecordDir: takes}
	sh := &shooter{dir: dir, size: size}

	u := show(w, b, clock.now)
	err = errors.Join(
		until(u, "the mic check", func() bool { return formWidget[*levelMeter](w, "Level").readout() != "−∞" }),
		sh.shot("setup"))
	u.Close() // no session: nothing comes after
	if err != nil {
		return err
	}
	b.settings.SetupDone = true
	u = show(w, b, clock.now)
	err = errors.Join(sh.shot("home"), shootSession(u, w, b, s, sh, takes))
	u.Close()
	// The home screen follows from the session's goroutine: let it come
	// before the next UI takes the window.
	return errors.Join(err, until(u, "the session's end", func() bool { return u.done == nil }))
}

func shootSession(u *UI, w fyne.Window, b *fakeBackend, s *scriptedSession, sh *shooter, takes string) error {
	onUI(u, func() { button(w, "Host a duet").OnTapped() })
	if err := until(u, "the session", func() bool { return u.screen != nil && u.screen.news != nil }); err != nil {
		return err
	}
	b.emit(app.Event{State: app.StateConnected, Text: "Connected to your partner directly (host candidate)."})
	if err := until(u, "the safety code", func() bool { return u.screen.safetyRow.Visible() }); err != nil {
		return err
	}
	onUI(u, func() {
		u.screen.compare()
		u.screen.key('r')
	})
	// A minute of the song at the clock's speed, then look.
	time.Sleep(time.Duration(float64(63*time.Second) / 10))
	var errs []error
	check := func(details bool) {
		onUI(u, func() {
			for _, e := range fitErrors(w, u.screen, sh.size, details) {
				errs = append(errs, errors.New("in the real window: "+e))
			}
		})
	}
	check(false)
	errs = append(errs, sh.shot("session"))
	onUI(u, u.screen.toggleDetails)
	check(true)
	errs = append(errs, sh.shot("details"))
	onUI(u, u.screen.toggleDetails)
	errs = append(errs, writeSongTake(filepath.Join(takes, "take-1"), 63))
	onUI(u, func() { u.screen.key('r') })
	errs = append(errs,
		until(u, "the take's waveform", func() bool { return u.screen.rec.wave.Visible() }),
		sh.shot("take"))
	return errors.Join(errs...)
}
