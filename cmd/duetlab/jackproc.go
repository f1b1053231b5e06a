package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// jackChild is a program the jack scenario started (jackd aside): its
// output, stdout and stderr, is kept line by line for waiting on and
// reading, and copied to a log file.
type jackChild struct {
	name   string // for errors: the log file's name
	cmd    *exec.Cmd
	log    *os.File
	mu     sync.Mutex
	lines  []string
	notify chan struct{} // closed and replaced when a line arrives
	exited chan struct{} // closed when the program ended and its output is read
	once   sync.Once
}

func startJackChild(logPath string, env []string, bin string, args ...string) (*jackChild, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	c := &jackChild{name: strings.TrimSuffix(filepath.Base(logPath), ".log"), cmd: cmd, log: log, notify: make(chan struct{}), exited: make(chan struct{})}
	fmt.Fprintf(log, "$ %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Add(1)
		go func() { // ends at the program's end (EOF)
			defer readers.Done()
			c.read(r)
		}()
	}
	go func() { // ends when the program does; stop makes sure it does
		readers.Wait()
		cmd.Wait()
		c.mu.Lock()
		fmt.Fprintf(c.log, "# exited: %v\n", cmd.ProcessState)
		c.mu.Unlock()
		c.log.Close()
		close(c.exited)
	}()
	return c, nil
}

func (c *jackChild) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		fmt.Fprintln(c.log, line)
		// PortAudio's ALSA probing says the same 50 harmless lines each time.
		if !strings.HasPrefix(line, "ALSA lib") {
			c.lines = append(c.lines, line)
			close(c.notify)
			c.notify = make(chan struct{})
		}
		c.mu.Unlock()
	}
}

// waitLine waits up to timeout for a line (any so far included) matching
// re and returns its submatches.
func (c *jackChild) waitLine(ctx context.Context, re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		lines, notify := c.lines[seen:], c.notify
		seen = len(c.lines)
		c.mu.Unlock()
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m, nil
			}
		}
		select {
		case <-notify:
		case <-c.exited:
			if c.count() == seen {
				return nil, fmt.Errorf("%s ended (%v) without saying %q; it said:\n%s", c.name, c.cmd.ProcessState, re, c.tail(15))
			}
		case <-deadline.C:
			return nil, fmt.Errorf("%s did not say %q within %v; it said:\n%s", c.name, re, timeout, c.tail(15))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *jackChild) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// matches returns the submatches of every line matching re.
func (c *jackChild) matches(re *regexp.Regexp) [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, l := range c.lines {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m)
		}
	}
	return out
}

func (c *jackChild) tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines[max(0, len(c.lines)-n):], "\n")
}

// stop asks the program to end as Ctrl-C would, kills it after 10 s, and
// waits for it. Safe to call twice.
func (c *jackChild) stop() {
	c.once.Do(func() {
		if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.cmd.Process.Kill()
		}
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-c.exited
		}
	})
}
