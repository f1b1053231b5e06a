package main

import (
	"context"
	"image"
	_ "image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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
	gui, stderr, exited := startGUI(t, display, home, "-v")
	defer func() {
		gui.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			gui.Process.Kill()
			t.Errorf("the window did not close within 20 s of SIGINT")
		}
	}()

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
	xdotool("mousemove", "--window", win, "260", "118", "click", "1") // Host a duet

	// The window hosts on a rendezvous server inside the app.
	code := ""
	deadline := time.Now().Add(30 * time.Second)
	for code == "" {
		if m := regexp.MustCompile(`room=([0-9A-Z]{4}-[0-9A-Z]{4})`).FindStringSubmatch(stderr.String()); m != nil {
			code = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room opened within 30 s of clicking Host; app stderr:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := http.Get("http://localhost:3838/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the app's rendezvous server is not up: %v", err)
	}

	guest := start(t, "join", code, "-server", "http://localhost:3838", "-tone", "660")
	guest.waitFor(t, "Connected to your partner")
	// Give the window a few refreshes, then look at it.
	time.Sleep(500 * time.Millisecond)
	screenshot(t, display, win, "session.png")
	guest.cmd.Process.Signal(os.Interrupt)
	if c := guest.wait(t); c != 0 {
		t.Errorf("guest exited %d", c)
	}
}

// startGUI starts the real app on display with home as its home folder;
// exited gets what it exits with.
func startGUI(t *testing.T, display, home string, args ...string) (gui *exec.Cmd, stderr *syncBuffer, exited <-chan error) {
	t.Helper()
	gui = exec.Command(duetBin, args...)
	gui.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LANG=en_US.UTF-8")
	stderr = &syncBuffer{}
	gui.Stderr = stderr
	if err := gui.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- gui.Wait() }()
	return gui, stderr, done
}

// TestWindowFirstRunUnderXvfb starts the real app with no settings: it
// opens on the first-run setup, which lists the devices and watches the
// microphone, and closes cleanly.
func TestWindowFirstRunUnderXvfb(t *testing.T) {
	display := os.Getenv("DUET_DISPLAY")
	if display == "" {
		t.Skip("no DUET_DISPLAY: set it to an X server, e.g. Xvfb :99, to run the window test")
	}
	home := t.TempDir()
	gui, stderr, exited := startGUI(t, display, home)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	search := exec.CommandContext(ctx, "xdotool", "search", "--sync", "--onlyvisible", "--name", "^Duet$")
	search.Env = append(os.Environ(), "DISPLAY="+display)
	out, err := search.Output()
	if err != nil {
		gui.Process.Kill()
		t.Fatalf("no window: %v\napp stderr:\n%s", err, stderr)
	}
	time.Sleep(time.Second) // the device list and the mic check
	screenshot(t, display, strings.Fields(string(out))[0], "setup.png")
	gui.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the app exited with %v; stderr:\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		gui.Process.Kill()
		t.Errorf("the window did not close within 20 s of SIGINT")
	}
}

// screenshot captures window win and checks it is not blank: text and
// bars make many distinct colours. With DUET_SCREENSHOTS set, the picture
// is kept there as name.
func screenshot(t *testing.T, display, win, name string) {
	t.Helper()
	dir := os.Getenv("DUET_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, name)
	imp := exec.Command("import", "-window", win, shot)
	imp.Env = append(os.Environ(), "DISPLAY="+display)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v %s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	t.Logf("window %dx%d, %d colours; screenshot %s", b.Dx(), b.Dy(), len(colours), shot)
	if len(colours) < 20 {
		t.Errorf("the window shows %d colours: blank?", len(colours))
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
