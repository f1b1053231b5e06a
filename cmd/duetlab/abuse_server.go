package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildServer builds cmd/duet-server (the pure-Go twin of "duet serve",
// same flags, same http.Server) into dir and returns the binary's path.
// The attacks run it as a process of its own, so that its descriptors and
// memory are measured alone, and its descriptor limit is not shared with
// the lab's ten thousand client sockets.
func buildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run duetlab from Duet's module (go run ./cmd/duetlab)")
	}
	bin := filepath.Join(dir, "duet-server")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/duet-server")
	build.Dir = filepath.Dir(mod)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/duet-server: %w\n%s", err, b)
	}
	return bin, nil
}

// serverProc is one duet-server process on a loopback port.
type serverProc struct {
	url   string // http://127.0.0.1:PORT
	addr  string // 127.0.0.1:PORT
	token string // what /metrics asks for
	cmd   *exec.Cmd
	log   *tailBuffer // the end of its stderr
	done  chan struct{}
	err   error // of Wait; read after done
}

// startServer starts bin listening on a free loopback port with the extra
// flags args, and returns once it prints its URL.
func startServer(ctx context.Context, bin string, args ...string) (*serverProc, error) {
	cmd := exec.Command(bin, append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	p := &serverProc{cmd: cmd, token: rand.Text(), log: &tailBuffer{max: 16 << 10}, done: make(chan struct{})}
	// A token of the lab's own for /metrics, whatever the environment
	// says (a server that knows no token ignores it).
	cmd.Env = append(os.Environ(), "DUET_METRICS_TOKEN="+p.token)
	cmd.Stderr = p.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	first := make(chan string, 1)
	go func() {
		// The only goroutine that reads stdout: it ends when the
		// process does.
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		io.Copy(io.Discard, stdout)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case line, ok := <-first:
		u, err := url.Parse(strings.TrimSpace(line))
		if !ok || err != nil || u.Host == "" {
			p.stop()
			return nil, fmt.Errorf("duet-server printed %q, not its URL: %s", line, p.log)
		}
		p.url, p.addr = u.String(), u.Host
		return p, nil
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("duet-server did not start within 10 s: %s", p.log)
}

// stop ends the process: SIGTERM (a graceful shutdown), then SIGKILL if
// it has not exited within five seconds.
func (p *serverProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	p.cmd.Process.Kill()
	<-p.done
}

// fds counts the process's open file descriptors.
func (p *serverProc) fds() (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	return len(ents), err
}

// rssMB returns the process's resident memory in MB (2^20 bytes).
func (p *serverProc) rssMB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	kb, err := statusKB(b, "VmRSS")
	return float64(kb) / 1024, err
}

// statusKB reads a "Name:   123 kB" line of /proc/PID/status.
func statusKB(status []byte, name string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(name+":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: %q", name, line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", name)
}

// metric fetches /metrics and returns the value of series (a metric name,
// with its labels if it has any: `x_total{code="room-full"}`).
func (p *serverProc) metric(ctx context.Context, series string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	// A client of its own, so that no idle connection outlives the call.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	v, ok := metricValue(body, series)
	if !ok {
		return 0, fmt.Errorf("/metrics has no %s", series)
	}
	return v, nil
}

// metricValue finds series in a Prometheus text exposition and returns
// its value. A series absent from the text (a counter never incremented
// has no labelled line) is reported as not found.
func metricValue(text []byte, series string) (float64, bool) {
	for line := range bytes.Lines(text) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte(series))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		f := strings.Fields(string(rest))
		v, err := strconv.ParseFloat(f[0], 64)
		return v, err == nil
	}
	return 0, false
}

// tailBuffer keeps the last max bytes written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
