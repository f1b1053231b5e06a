// Package browsertest runs real web browsers, headless, as the other side
// of Duet's tests: Debian's chromium and firefox-esr, with a fake
// microphone and no permission prompts, pointed at a page the test serves
// (over httptest on localhost, a secure origin for the microphone). No
// WebDriver: the page reports back to the test itself, over fetch or a
// WebSocket.
//
// A browser that is not installed skips the test, unless DUET_BROWSERS is
// set (CI sets it: there the browser tests must run). Each browser runs in
// its own process group with a temporary profile, and is killed with its
// children when the test ends. Firefox gets a PulseAudio server of its own
// (package pulseaudio) to play through.
package browsertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind is a browser.
type Kind string

// The browsers. Their Debian packages are chromium and firefox-esr.
const (
	Chromium Kind = "chromium"
	Firefox  Kind = "firefox"
)

// Kinds returns every browser, for a test to run against each.
func Kinds() []Kind { return []Kind{Chromium, Firefox} }

// binary returns the executable's path of kind k, or "".
func (k Kind) binary() string {
	names := map[Kind][]string{
		Chromium: {"chromium", "chromium-browser", "google-chrome"},
		Firefox:  {"firefox-esr", "firefox"},
	}[k]
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Options are what the page's browser is given.
type Options struct {
	// AudioFile is a WAV file Chromium plays as its microphone, looped
	// (a 48 kHz mono 16-bit file plays as it is).
	AudioFile string
	// ToneHz is the frequency of Firefox's fake microphone, a steady
	// sine (Firefox takes no file); 0 means its default, 1000 Hz.
	ToneHz int
	// Microphone is what the page gets when it asks for the microphone:
	// the fake one (the default), none at all, or a refusal.
	Microphone Microphone
}

// Microphone is what a browser's page gets when it asks for one.
type Microphone int

const (
	FakeMicrophone   Microphone = iota // a fake device, granted without asking
	NoMicrophone                       // no device at all
	DeniedMicrophone                   // the user says no
)

// Browser is one running browser.
type Browser struct {
	Kind Kind
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// Start launches browser k headless at url and stops it when the test
// ends; its output is logged if the test fails. It skips the test when the
// browser is not installed, unless DUET_BROWSERS is set.
func Start(t testing.TB, k Kind, url string, o Options) *Browser {
	t.Helper()
	bin := k.binary()
	if bin == "" {
		if os.Getenv("DUET_BROWSERS") != "" {
			t.Fatalf("%s is not installed (DUET_BROWSERS is set: apt-get install chromium firefox-esr)", k)
		}
		t.Skipf("%s is not installed (apt-get install chromium firefox-esr runs this test)", k)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "HOME="+dir) // Firefox and Chromium write caches there
	var args []string
	switch k {
	case Chromium:
		args = []string{
			"--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
			"--disable-gpu", "--user-data-dir=" + dir,
			"--autoplay-policy=no-user-gesture-required",
			// Loopback candidates, which Duet's test peers use.
			"--allow-loopback-in-peer-connection",
		}
		switch o.Microphone {
		case FakeMicrophone:
			args = append(args, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
			if o.AudioFile != "" {
				args = append(args, "--use-file-for-fake-audio-capture="+o.AudioFile)
			}
		case NoMicrophone: // this machine has no sound card: no device to find
			args = append(args, "--use-fake-ui-for-media-stream")
		case DeniedMicrophone:
			args = append(args, "--use-fake-device-for-media-stream", "--deny-permission-prompts")
		}
	case Firefox:
		// Firefox plays audio (and paces its own capture) only through
		// a sound server; a private PulseAudio with a null sink stands
		// in for a sound card.
		if o.Microphone != NoMicrophone { // PulseAudio's null sink has a monitor: a microphone
			env = append(env, "PULSE_SERVER=unix:"+startPulse(t))
		}
		if err := os.WriteFile(filepath.Join(dir, "user.js"), firefoxPrefs(o), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"-headless", "-no-remote", "-profile", dir}
	default:
		t.Fatalf("browsertest: unknown browser %q", k)
	}
	cmd := exec.Command(bin, append(args, url)...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("browsertest: start %s: %v", k, err)
	}
	b := &Browser{Kind: k, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { // owned by Start's cleanup, which waits for it
		cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		// The browser's helpers (renderers, content processes) share
		// its process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("browsertest: %s did not exit after SIGKILL", k)
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", k, tail(out.Bytes(), 4000))
		}
	})
	return b
}

// Exited is closed when the browser's main process has exited (it should
// not before the test ends).
func (b *Browser) Exited() <-chan struct{} { return b.done }

// Output returns what the browser has printed so far.
func (b *Browser) Output() string { return string(b.out.Bytes()) }

// firefoxPrefs returns the user.js of a test profile: fake media without
// prompts, loopback ICE candidates with plain addresses, and none of a
// first run's chores.
func firefoxPrefs(o Options) []byte {
	prefs := map[string]string{
		"media.navigator.streams.fake":                      strconv.FormatBool(o.Microphone != NoMicrophone),
		"media.navigator.permission.disabled":               strconv.FormatBool(o.Microphone != DeniedMicrophone),
		"media.autoplay.default":                            "0",
		"media.autoplay.block-webaudio":                     "false",
		"media.peerconnection.ice.loopback":                 "true",
		"media.peerconnection.ice.obfuscate_host_addresses": "false",
		"browser.shell.checkDefaultBrowser":                 "false",
		"browser.aboutwelcome.enabled":                      "false",
		"datareporting.policy.dataSubmissionEnabled":        "false",
		"toolkit.telemetry.reportingpolicy.firstRun":        "false",
		"app.update.enabled":                                "false",
		"browser.startup.homepage_override.mstone":          `"ignore"`,
		"network.captive-portal-service.enabled":            "false",
		"network.connectivity-service.enabled":              "false",
	}
	if o.Microphone == DeniedMicrophone {
		prefs["permissions.default.microphone"] = "2" // blocked, as a user who said no
	}
	if o.ToneHz > 0 {
		prefs["media.navigator.audio.fake_frequency"] = strconv.Itoa(o.ToneHz)
	}
	var b bytes.Buffer
	for k, v := range prefs {
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, v)
	}
	return b.Bytes()
}

// startPulse starts a PulseAudio server of the test's own, with a null
// sink (played in real time, to nowhere), stopped when the test ends, and
// returns its socket. Without one, Firefox's AudioContext never leaves
// "suspended"; its test context (media.cubeb.force_mock_context) runs, but
// on a clock 12 % slow on a loaded machine, and the fake microphone, and so
// the packets Firefox sends, with it.
func startPulse(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("pulseaudio")
	if err != nil {
		if os.Getenv("DUET_BROWSERS") != "" {
			t.Fatal("pulseaudio is not installed (DUET_BROWSERS is set: apt-get install pulseaudio)")
		}
		t.Skip("pulseaudio is not installed (Firefox plays audio through it: apt-get install pulseaudio)")
	}
	dir, err := os.MkdirTemp("", "pulse") // short: a socket's path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "native")
	cmd := exec.Command(bin, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--realtime=no", "--high-priority=no",
		"-L", "module-null-sink", "-L", "module-native-protocol-unix auth-anonymous=1 socket="+socket)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("browsertest: start pulseaudio: %v", err)
	}
	done := make(chan struct{})
	go func() { // owned by the cleanup below, which waits for it
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		os.RemoveAll(dir)
		if t.Failed() {
			t.Logf("pulseaudio's output:\n%s", tail(out.Bytes(), 2000))
		}
	})
	// It creates the socket once it is ready for clients.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil {
			return socket
		}
		select {
		case <-done:
			t.Fatalf("browsertest: pulseaudio exited:\n%s", out.Bytes())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("browsertest: pulseaudio made no socket within 10 s")
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// lockedBuffer is the browser's output, written by exec's copier and read
// by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}
