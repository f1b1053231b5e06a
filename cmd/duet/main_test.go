package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/wavfile"
)

// These tests run the real binary: a rendezvous server process and two
// singer processes talking real WebRTC over loopback.

var duetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "duet-bin")
	if err != nil {
		panic(err)
	}
	duetBin = filepath.Join(dir, "duet")
	if out, err := exec.Command("go", "build", "-race", "-o", duetBin, ".").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		panic("building duet: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running duet process whose stdout lines and stderr are captured.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *syncBuffer
	done   chan error
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(duetBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 100), stderr: newSyncBuffer(), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return p
}

// line waits for the next stdout line.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%v ended without printing; stderr:\n%s", p.cmd.Args, p.stderr)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("%v printed nothing within 20 s; stderr:\n%s", p.cmd.Args, p.stderr)
	}
	return ""
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for lines := p.lines; lines != nil; {
		select {
		case _, ok := <-lines:
			if !ok {
				lines = nil
			}
		case <-timeout:
			p.hung(t)
		}
	}
	select {
	case err := <-p.done:
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	case <-timeout:
		p.hung(t)
	}
	return -1
}

// hung fails the test for a process that did not exit, with its stderr
// and the stacks of its goroutines: SIGQUIT makes a Go program print
// them as it dies.
func (p *proc) hung(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	t.Fatalf("%v did not exit within 30 s; stderr, with its goroutines' stacks:\n%s", p.cmd.Args, p.stderr)
}

// waitFor waits until the process has said what on stderr.
func (p *proc) waitFor(t *testing.T, what string) {
	t.Helper()
	if !p.stderr.await(func(s string) bool { return strings.Contains(s, what) }, 40*time.Second) {
		t.Fatalf("%v did not say %q within 40 s; stderr:\n%s", p.cmd.Args, what, p.stderr)
	}
}

// waitCount waits until the process has said what n times on stderr
// after its first `after`.
func (p *proc) waitCount(t *testing.T, after, what string, n int) {
	t.Helper()
	count := func(s string) bool {
		_, rest, ok := strings.Cut(s, after)
		return ok && strings.Count(rest, what) >= n
	}
	if !p.stderr.await(count, 40*time.Second) {
		t.Fatalf("%v did not say %q %d times after %q within 40 s; stderr:\n%s", p.cmd.Args, what, n, after, p.stderr)
	}
}

// syncBuffer collects a process's stderr; exec writes it from one goroutine
// while the test reads it, and waits for it, from another.
type syncBuffer struct {
	mu    sync.Mutex
	b     strings.Builder
	wrote chan struct{} // a token after a Write, for the one waiter in await
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default: // a token is waiting already
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// await waits until ok holds for what was written, checking after each
// Write, for at most within; it reports whether ok held. One goroutine at
// a time may await.
func (s *syncBuffer) await(ok func(string) bool, within time.Duration) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for !ok(s.String()) {
		select {
		case <-s.wrote:
		case <-deadline.C:
			return ok(s.String())
		}
	}
	return true
}

func writeTone(t *testing.T, path string, hz float64, seconds float64) {
	t.Helper()
	p := make([]float32, int(seconds*audio.SampleRate))
	audio.ReadFull(&tone.Sine{Hz: hz, Amp: 0.3}, p)
	if err := wavfile.WriteFile(path, p); err != nil {
		t.Fatal(err)
	}
}

func serve(t *testing.T) (*proc, string) {
	t.Helper()
	srv := start(t, "serve", "-listen", "127.0.0.1:0")
	url := srv.line(t)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("serve printed %q, want its URL", url)
	}
	return srv, url
}

func stopServer(t *testing.T, srv *proc) {
	t.Helper()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.wait(t); code != 0 {
		t.Errorf("serve exited %d after SIGTERM; stderr:\n%s", code, srv.stderr)
	}
}

// TestHostJoinFiles is the walkthrough: serve, host and join with
// WAV files, until the inputs end.
func TestHostJoinFiles(t *testing.T) {
	dir := t.TempDir()
	srv, url := serve(t)
	a, b := filepath.Join(dir, "a.wav"), filepath.Join(dir, "b.wav")
	writeTone(t, a, 440, 3)
	writeTone(t, b, 660, 3)
	heardA, heardB := filepath.Join(dir, "heard-a.wav"), filepath.Join(dir, "heard-b.wav")

	host := start(t, "host", "-server", url, "-in", a, "-out", heardA, "-loopback", "-monitor", "0", "-codec", "pcm", "-status", "1s")
	code := host.line(t)
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("host printed %q, want a room code like K7QM-3XRT on its own line", code)
	}
	// Read aloud and typed in lower case without the dash.
	guest := start(t, "join", strings.ToLower(strings.ReplaceAll(code, "-", "")), "-server", url, "-in", b, "-out", heardB, "-loopback", "-monitor", "0")
	if c := guest.wait(t); c != 0 {
		t.Fatalf("join exited %d; stderr:\n%s", c, guest.stderr)
	}
	if c := host.wait(t); c != 0 {
		t.Fatalf("host exited %d; stderr:\n%s", c, host.stderr)
	}
	if want := url + "/j/" + code; !strings.Contains(host.stderr.String(), "joins from a browser at "+want) {
		t.Errorf("the host does not give the browser's link %s:\n%s", want, host.stderr)
	}
	// -codec pcm: the host sends L16, and says so in its status line.
	if !strings.Contains(host.stderr.String(), "sending L16 at 768 kb/s") {
		t.Errorf("the host's status does not say it sends L16:\n%s", host.stderr)
	}
	for _, tc := range []struct {
		file       string
		hear, self float64
	}{{heardA, 660, 440}, {heardB, 440, 660}} {
		p, err := wavfile.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) < 2*audio.SampleRate {
			t.Fatalf("%s holds %d samples, want ≥ 2 s", tc.file, len(p))
		}
		mid := p[len(p)/4 : 3*len(p)/4]
		if got := measure.Tone(mid, tc.hear, audio.SampleRate); got < 0.1 {
			t.Errorf("%s: partner's %v Hz at %.3f, want ≥ 0.1", tc.file, tc.hear, got)
		}
		if got := measure.Tone(mid, tc.self, audio.SampleRate); got > 0.003 {
			t.Errorf("%s: own %v Hz at %.4f with monitoring off, want < 0.003", tc.file, tc.self, got)
		}
	}
	stopServer(t, srv)
}

// TestInterrupt stops a host and a guest with SIGINT mid-song: both exit 0
// and leave complete, valid WAV files.
func TestInterrupt(t *testing.T) {
	dir := t.TempDir()
	srv, url := serve(t)
	heardA, heardB := filepath.Join(dir, "heard-a.wav"), filepath.Join(dir, "heard-b.wav")
	host := start(t, "host", "-server", url, "-tone", "440", "-out", heardA, "-loopback", "-status", "1s")
	code := host.line(t)
	guest := start(t, "join", code, "-server", url, "-tone", "660", "-out", heardB, "-loopback", "-status", "1s")
	// Sing until both have heard each other for two status lines, a
	// second apart: over a second of audio written.
	for _, p := range []*proc{host, guest} {
		p.waitCount(t, "Connected to your partner", "duet: partner", 2)
	}
	guest.cmd.Process.Signal(os.Interrupt)
	host.cmd.Process.Signal(os.Interrupt)
	for _, p := range []*proc{guest, host} {
		if c := p.wait(t); c != 0 {
			t.Fatalf("%v exited %d after SIGINT; stderr:\n%s", p.cmd.Args, c, p.stderr)
		}
	}
	for _, f := range []string{heardA, heardB} {
		p, err := wavfile.ReadFile(f)
		if err != nil {
			t.Fatalf("%s is not a valid WAV after SIGINT: %v", f, err)
		}
		if len(p) < audio.SampleRate {
			t.Errorf("%s holds %d samples, want ≥ 1 s", f, len(p))
		}
	}
	stopServer(t, srv)
}

// TestBadInput checks that wrong codes, full rooms and broken files give a
// clear error and a non-zero exit, not a crash.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	srv, url := serve(t)

	wrong := start(t, "join", "K7QM-3XRT", "-server", url, "-loopback", "-tone", "220")
	if c := wrong.wait(t); c != 1 || !strings.Contains(wrong.stderr.String(), "K7QM-3XRT not found") {
		t.Errorf("join with a wrong code: exit %d, stderr %q; want 1 and an error naming the code", c, wrong.stderr)
	}

	codec := start(t, "host", "-server", url, "-tone", "220", "-codec", "mp3")
	if c := codec.wait(t); c == 0 || !strings.Contains(codec.stderr.String(), `"mp3"`) {
		t.Errorf("host -codec mp3: exit %d, stderr %q; want an error naming it", c, codec.stderr)
	}

	broken := filepath.Join(dir, "broken.wav")
	os.WriteFile(broken, []byte("RIFF\x10\x00\x00\x00WAVEfmt garbage"), 0o644)
	bad := start(t, "host", "-server", url, "-in", broken)
	if c := bad.wait(t); c != 1 || !strings.Contains(bad.stderr.String(), "broken.wav") {
		t.Errorf("host with a broken WAV: exit %d, stderr %q; want 1 and an error naming the file", c, bad.stderr)
	}

	host := start(t, "host", "-server", url, "-loopback", "-tone", "220")
	code := host.line(t)
	guest := start(t, "join", code, "-server", url, "-loopback", "-tone", "330")
	guest.waitFor(t, "Joined the room")
	third := start(t, "join", code, "-server", url, "-loopback", "-tone", "440")
	if c := third.wait(t); c != 1 || !strings.Contains(third.stderr.String(), "is full") {
		t.Errorf("third singer: exit %d, stderr %q; want 1 and 'is full'", c, third.stderr)
	}
	if strings.Contains(third.stderr.String(), "goroutine") {
		t.Errorf("third singer's error is a stack trace:\n%s", third.stderr)
	}
	guest.cmd.Process.Signal(os.Interrupt)
	host.cmd.Process.Signal(os.Interrupt)
	guest.wait(t)
	host.wait(t)

	noServer := start(t, "host", "-server", "http://127.0.0.1:1", "-tone", "220")
	if c := noServer.wait(t); c != 1 || !strings.Contains(noServer.stderr.String(), "cannot reach the rendezvous server") {
		t.Errorf("host without a server: exit %d, stderr %q", c, noServer.stderr)
	}
	stopServer(t, srv)
}

// TestRelayOnlyThroughServe runs duet serve with its TURN relay and two
// singers who may only use it: they connect, through the relay.
func TestRelayOnlyThroughServe(t *testing.T) {
	srv := start(t, "serve", "-listen", "127.0.0.1:0", "-turn", "127.0.0.1:0", "-public-ip", "127.0.0.1", "-relay-private")
	url := srv.line(t)
	host := start(t, "host", "-server", url, "-loopback", "-relay-only", "-tone", "440")
	code := host.line(t)
	guest := start(t, "join", code, "-server", url, "-loopback", "-relay-only", "-tone", "660")
	guest.waitFor(t, "through a relay (relay candidate)")
	host.waitFor(t, "through a relay (relay candidate)")
	guest.cmd.Process.Signal(os.Interrupt)
	host.cmd.Process.Signal(os.Interrupt)
	for _, p := range []*proc{guest, host} {
		if c := p.wait(t); c != 0 {
			t.Fatalf("%v exited %d; stderr:\n%s", p.cmd.Args, c, p.stderr)
		}
	}
	stopServer(t, srv)
}

// TestQuietLocale runs the commands a user types first under the C locale
// in its Debian spelling (C.UTF-8, the default in containers and on
// servers) and its bare one: none prints Fyne's complaint about the locale
// (internal/locale), and each still does its job.
func TestQuietLocale(t *testing.T) {
	for _, lang := range []string{"C.UTF-8", "C"} {
		for _, tc := range []struct {
			args []string
			says string // on stdout or stderr: a regexp
		}{
			{[]string{"-h"}, "Usage:"},
			{[]string{"serve", "-h"}, "Usage: duet serve"},
			{[]string{"host", "-h"}, "Usage: duet host"},
			{[]string{"join", "-h"}, "Usage: duet join"},
			{[]string{"demo", "-h"}, "Usage: duet demo"},
			{[]string{"devices"}, "No audio devices|host API"},
		} {
			t.Run(lang+" "+strings.Join(tc.args, " "), func(t *testing.T) {
				cmd := exec.CommandContext(t.Context(), duetBin, tc.args...)
				cmd.Env = append(withoutLocale(os.Environ()), "LANG="+lang, "HOME="+t.TempDir())
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				cmd.Run() // -h exits 2: the output says whether it ran
				if !regexp.MustCompile(tc.says).MatchString(stdout.String() + stderr.String()) {
					t.Fatalf("%v did not say %q; stdout:\n%s\nstderr:\n%s", tc.args, tc.says, &stdout, &stderr)
				}
				if s := stderr.String(); strings.Contains(s, "Fyne") || strings.Contains(s, "locale") {
					t.Errorf("LANG=%s duet %v: stderr speaks of Fyne or the locale:\n%s", lang, strings.Join(tc.args, " "), s)
				}
			})
		}
	}
}

// withoutLocale is env without the variables that name a locale.
func withoutLocale(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "LANG" && k != "LANGUAGE" && !strings.HasPrefix(k, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}
