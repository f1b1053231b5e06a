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
// children when the test ends (Start) or on Close (Launch, for duetlab).
// Firefox gets a PulseAudio server of its own (Debian's pulseaudio) to
// play through. Close is safe for concurrent use.
package browsertest

import (
	"bytes"
	"errors"
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
	// NoWebRTC turns WebRTC off, as in a browser without it (Firefox
	// only: media.peerconnection.enabled); Launch refuses it for Chromium.
	NoWebRTC bool
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
	Kind    Kind
	cmd     *exec.Cmd
	out     *lockedBuffer
	done    chan struct{}
	dir     string
	pulse   *pulse // Firefox's sound server, if it has one
	closeMu sync.Mutex
	closed  bool
}

// ErrNotInstalled reports a browser that is not on this machine.
var ErrNotInstalled = errors.New("browsertest: not installed (apt-get install chromium firefox-esr pulseaudio)")

// Start launches browser k headless at url and stops it when the test
// ends; its output is logged if the test fails. It skips the test when the
// browser is not installed, unless DUET_BROWSERS is set.
func Start(t testing.TB, k Kind, url string, o Options) *Browser {
	t.Helper()
	b, err := Launch(k, url, o)
	if errors.Is(err, ErrNotInstalled) && os.Getenv("DUET_BROWSERS") == "" {
		t.Skipf("%s: %v", k, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s's output:\n%s", k, tail(b.out.Bytes(), 4000))
		}
	})
	return b
}

// Launch starts browser k headless at url, in a temporary profile; Close
// stops it. For measurements outside tests (duetlab); tests use Start.
func Launch(k Kind, url string, o Options) (_ *Browser, err error) {
	bin := k.binary()
	if bin == "" {
		return nil, fmt.Errorf("%s: %w", k, ErrNotInstalled)
	}
	if o.NoWebRTC && k != Firefox {
		return nil, fmt.Errorf("browsertest: %s cannot be started without WebRTC", k)
	}
	dir, err := os.MkdirTemp("", "duet-"+string(k))
	if err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}
	b := &Browser{Kind: k, dir: dir, out: &lockedBuffer{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			b.pulse.close()
			os.RemoveAll(dir)
		}
	}()
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
			if b.pulse, err = startPulse(); err != nil {
				return nil, err
			}
			env = append(env, "PULSE_SERVER=unix:"+b.pulse.socket)
		}
		if err := os.WriteFile(filepath.Join(dir, "user.js"), firefoxPrefs(o), 0o600); err != nil {
			return nil, fmt.Errorf("browsertest: %w", err)
		}
		args = []string{"-headless", "-no-remote", "-profile", dir}
	default:
		return nil, fmt.Errorf("browsertest: unknown browser %q", k)
	}
	b.cmd = exec.Command(bin, append(args, url)...)
	b.cmd.Stdout, b.cmd.Stderr = b.out, b.out
	b.cmd.Env = env
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("browsertest: start %s: %w", k, err)
	}
	go func() { // owned by Close, which waits for it
		b.cmd.Wait()
		close(b.done)
	}()
	return b, nil
}

// Close stops the browser and its helpers (renderers, content processes,
// which share its process group) and removes its profile. Safe to call
// twice.
func (b *Browser) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	var err error
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("browsertest: %s did not exit after SIGKILL", b.Kind)
	}
	b.pulse.close()
	os.RemoveAll(b.dir)
	return err
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
	if o.NoWebRTC {
		prefs["media.peerconnection.enabled"] = "false"
	}
	var b bytes.Buffer
	for k, v := range prefs {
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, v)
	}
	return b.Bytes()
}

// pulse is a PulseAudio server of a browser's own.
type pulse struct {
	cmd    *exec.Cmd
	dir    string
	socket string
	out    *lockedBuffer
	done   chan struct{}
}

// startPulse starts a PulseAudio server with a null sink (played in real
// time, to nowhere) and waits for its socket. Without one, Firefox's
// AudioContext never leaves "suspended"; its test context
// (media.cubeb.force_mock_context) runs, but on a clock 12 % slow on a
// loaded machine, and the fake microphone, and so the packets Firefox
// sends, with it.
func startPulse() (*pulse, error) {
	bin, err := exec.LookPath("pulseaudio")
	if err != nil {
		return nil, fmt.Errorf("pulseaudio: %w", ErrNotInstalled)
	}
	dir, err := os.MkdirTemp("", "pulse") // short: a socket's path has at most 107 bytes
	if err != nil {
		return nil, fmt.Errorf("browsertest: %w", err)
	}
	p := &pulse{dir: dir, socket: filepath.Join(dir, "native"), out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--realtime=no", "--high-priority=no",
		"-L", "module-null-sink", "-L", "module-native-protocol-unix auth-anonymous=1 socket="+p.socket)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR="+dir)
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("browsertest: start pulseaudio: %w", err)
	}
	go func() { // owned by close, which waits for it
		p.cmd.Wait()
		close(p.done)
	}()
	// It creates the socket once it is ready for clients.
	deadline := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(p.socket); err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			p.close()
			return nil, fmt.Errorf("browsertest: pulseaudio exited:\n%s", p.out.Bytes())
		case <-deadline:
			p.close()
			return nil, errors.New("browsertest: pulseaudio made no socket within 10 s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// close stops the server; nil does nothing.
func (p *pulse) close() {
	if p == nil {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
	os.RemoveAll(p.dir)
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
