package main

import (
	"context"
	"errors"
	"image"
	_ "image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
)

// TestWindowUnderXvfb runs the real app in a real window on the X server
// named by DUET_DISPLAY (.ci/run starts Xvfb and a JACK server), clicks
// "Host a duet", joins that room from the command line, and takes a
// screenshot of the connected session (kept in DUET_SCREENSHOTS, if set).
// Without DUET_DISPLAY it skips.
func TestWindowUnderXvfb(t *testing.T) {
	display := os.Getenv("DUET_DISPLAY")
	if display == "" {
		t.Skip("no DUET_DISPLAY: set it to an X server, e.g. Xvfb :99, to run the window test")
	}
	home := t.TempDir()
	// Set up already: the window opens on the home screen.
	settings := filepath.Join(home, ".config", "duet", "settings.json")
	// Tests never ask the internet for the time: the local NTP server
	// .ci/run starts, or none.
	ntp := os.Getenv("DUET_NTP")
	if ntp == "" {
		ntp = "off"
	}
	if err := (app.Settings{SetupDone: true, Name: "Ana", NTPServer: ntp}).Save(settings); err != nil {
		t.Fatal(err)
	}
	// The built-in server on a port the system chooses: the test binds
	// no fixed port.
	gui, stderr, exited := startGUI(t, display, home, "en_US.UTF-8", "-v", "-listen", "127.0.0.1:0")
	defer closeWindow(t, gui, exited, stderr)

	xdotool := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "xdotool", args...)
		cmd.Env = append(os.Environ(), "DISPLAY="+display)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xdotool %v: %v\napp stderr:\n%s", args, err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	// --sync waits for the window, for 30 s at most.
	win := strings.Fields(xdotool("search", "--sync", "--onlyvisible", "--name", "^Duet$"))[0]
	homeScreen := screenshot(t, display, win, "home.png", drawn)
	xdotool("mousemove", "--window", win, "260", "118", "click", "1") // Host a duet

	// The window hosts on the rendezvous server inside the app, and logs
	// where it listens and the room's code.
	logged := regexp.MustCompile(`built-in rendezvous server started[^\n]* url=(\S+)(?s:.*)room=([0-9A-Z]{4}-[0-9A-Z]{4})`)
	if !stderr.await(logged.MatchString, 30*time.Second) {
		t.Fatalf("no room opened on the built-in server within 30 s of clicking Host; app stderr:\n%s", stderr)
	}
	m := logged.FindStringSubmatch(stderr.String())
	server, code := m[1], m[2]
	if resp, err := http.Get(server + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the app's rendezvous server at %s is not up: %v", server, err)
	}

	guest := start(t, "join", code, "-server", server, "-tone", "660")
	guest.waitFor(t, "Connected to your partner")
	// The window logs each news just before it shows it.
	if !stderr.await(func(s string) bool { return strings.Contains(s, "Connected to your partner") }, 30*time.Second) {
		t.Fatalf("the window did not say it is connected within 30 s; app stderr:\n%s", stderr)
	}
	screenshot(t, display, win, "session.png", newScreen(homeScreen))
	guest.cmd.Process.Signal(os.Interrupt)
	if c := guest.wait(t); c != 0 {
		t.Errorf("guest exited %d", c)
	}
}

// startGUI starts the real app on display with home as its home folder,
// under the locale lang; exited gets what it exits with.
func startGUI(t *testing.T, display, home, lang string, args ...string) (gui *exec.Cmd, stderr *syncBuffer, exited <-chan error) {
	t.Helper()
	gui = exec.Command(duetBin, args...)
	gui.Env = append(withoutLocale(os.Environ()), "DISPLAY="+display, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LANG="+lang)
	stderr = newSyncBuffer()
	gui.Stderr = stderr
	if err := gui.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gui.Wait() }()
	return gui, stderr, done
}

// closeWindow interrupts the app, as Ctrl-C would, and expects it to exit
// cleanly within 20 s. If it hangs, SIGQUIT makes Go print every
// goroutine's stack to stderr, which the error shows: what blocked.
func closeWindow(t *testing.T, gui *exec.Cmd, exited <-chan error, stderr *syncBuffer) {
	t.Helper()
	gui.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the app exited with %v; stderr:\n%s", err, stderr)
		}
		return
	case <-time.After(20 * time.Second):
	}
	gui.Process.Signal(syscall.SIGQUIT)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		gui.Process.Kill()
		<-exited
	}
	t.Errorf("the window did not close within 20 s of SIGINT; stderr with its goroutines:\n%s", stderr)
}

// TestWindowFirstRunUnderXvfb starts the real app with no settings, under
// Debian's default locale (C.UTF-8): it opens on the first-run setup,
// which lists the devices and watches the microphone, says nothing about
// the locale, and closes cleanly.
func TestWindowFirstRunUnderXvfb(t *testing.T) {
	display := os.Getenv("DUET_DISPLAY")
	if display == "" {
		t.Skip("no DUET_DISPLAY: set it to an X server, e.g. Xvfb :99, to run the window test")
	}
	home := t.TempDir()
	gui, stderr, exited := startGUI(t, display, home, "C.UTF-8", "-v")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	search := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Duet$")
	search.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := search.Output()
	if err != nil {
		gui.Process.Kill()
		t.Fatalf("no window: %v\napp stderr:\n%s", err, stderr)
	}
	if !stderr.await(func(s string) bool { return strings.Contains(s, "checking the microphone") }, 30*time.Second) {
		gui.Process.Kill()
		t.Fatalf("the setup did not check the microphone within 30 s; app stderr:\n%s", stderr)
	}
	screenshot(t, display, strings.Fields(string(out))[0], "setup.png", drawn)
	closeWindow(t, gui, exited, stderr)
	// Only the locale: Fyne also writes its own preferences file on exit
	// and may read it back half-written ("Preferences load error: EOF",
	// about 1 run in 16), a race of its own.
	if s := stderr.String(); strings.Contains(s, "locale") {
		t.Errorf("under LANG=C.UTF-8 the window's stderr speaks of the locale:\n%s", s)
	}
}

// screenshot takes pictures of window win until one satisfies ok, for at
// most 20 s (the window draws what it was told on a later frame, which
// under the race detector and a software renderer can take a while), and
// checks it is not blank: text and bars make many distinct colours. With
// DUET_SCREENSHOTS set, the picture is kept there as name.
func screenshot(t *testing.T, display, win, name string, ok func(image.Image) bool) image.Image {
	t.Helper()
	dir := os.Getenv("DUET_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, name)
	deadline := time.Now().Add(20 * time.Second)
	for {
		img := capture(t, display, win, shot)
		if ok(img) {
			n := colours(img)
			t.Logf("window %dx%d, %d colours; screenshot %s", img.Bounds().Dx(), img.Bounds().Dy(), n, shot)
			if n < 20 {
				t.Errorf("the window shows %d colours: blank?", n)
			}
			return img
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window did not show what the test waits for within 20 s; last picture %s", shot)
		}
	}
}

// capture writes a picture of window win to path and decodes it.
func capture(t *testing.T, display, win, path string) image.Image {
	t.Helper()
	imp := exec.CommandContext(t.Context(), "import", "-window", win, path)
	imp.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v %s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// drawn holds once the window shows more than a background: 20 colours.
func drawn(img image.Image) bool { return colours(img) >= 20 }

// colours counts the distinct colours of every third pixel in each
// direction.
func colours(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			seen[rgb(img, x, y)] = true
		}
	}
	return len(seen)
}

func rgb(img image.Image, x, y int) uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return r>>8<<16 | g>>8<<8 | b>>8
}

// newScreen returns a check that a picture shows another screen than
// before: over a tenth of the pixels they share differ (a label or a
// button's state changes a few hundredths; a window growing for the new
// screen shows the old one in its old part until it is drawn).
func newScreen(before image.Image) func(image.Image) bool {
	return func(img image.Image) bool {
		r := img.Bounds().Intersect(before.Bounds())
		var n, diff int
		for y := r.Min.Y; y < r.Max.Y; y += 3 {
			for x := r.Min.X; x < r.Max.X; x += 3 {
				n++
				if rgb(img, x, y) != rgb(before, x, y) {
					diff++
				}
			}
		}
		return diff*10 > n
	}
}

func TestWarnLAN(t *testing.T) {
	var got []app.Event
	on := warnLAN(func(e app.Event) { got = append(got, e) })
	on(app.Event{State: app.StateConnecting, Text: "Connecting…"})
	on(app.Event{State: app.StateConnected, Text: "Connected to your partner directly."})
	on(app.Event{State: app.StateReconnecting, Text: "Reconnecting…"})
	on(app.Event{State: app.StateConnected, Text: "Connected to your partner directly."})
	if len(got) != 4 {
		t.Fatalf("%d events passed on, want 4", len(got))
	}
	for i, e := range got {
		warned := strings.Contains(e.Text, "compare the safety code aloud")
		if warned != (i == 1) {
			t.Errorf("event %d %q: warned %v, want only the first connected one", i, e.Text, warned)
		}
	}
}

// TestBrowserLink: the window offers the guest page's link only where a
// browser on another computer gets the microphone from it.
func TestBrowserLink(t *testing.T) {
	const code = "K7QM3XRT"
	for _, tc := range []struct {
		server  string
		builtin bool
		want    string // "": no link
	}{
		{"https://duet.example.org", false, "https://duet.example.org/j/K7QM-3XRT"},
		{"wss://duet.example.org:8443/ws", false, "https://duet.example.org:8443/j/K7QM-3XRT"},
		{"http://127.0.0.1:3838", false, "http://127.0.0.1:3838/j/K7QM-3XRT"},
		{"http://localhost:3838", false, "http://localhost:3838/j/K7QM-3XRT"},
		{"http://192.168.1.20:3838", false, ""},
		{"http://localhost:41035", true, ""},
	} {
		link, err := browserLink(tc.server, tc.builtin, code)
		switch {
		case tc.want != "" && (link != tc.want || err != nil):
			t.Errorf("%s (built in %v): %q, %v; want %s", tc.server, tc.builtin, link, err, tc.want)
		case tc.want == "" && (link != "" || !errors.Is(err, errBrowserNeedsHTTPS)):
			t.Errorf("%s (built in %v): %q, %v; want no link, as it needs HTTPS", tc.server, tc.builtin, link, err)
		}
	}
}
