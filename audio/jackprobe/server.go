package jackprobe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServerConfig describes a JACK server with the dummy driver: real-time
// paced, no sound card.
type ServerConfig struct {
	// Name is the server's name (jackd -n); clients find it through
	// $JACK_DEFAULT_SERVER or Config.Server.
	Name string
	// Rate is in frames per second; Period in frames.
	Rate, Period int
	// Realtime asks for real-time scheduling (jackd -R -P 70, as root),
	// which gives far fewer xruns; when jackd refuses it, the server runs
	// without.
	Realtime bool
	// Log receives jackd's output; nil discards it.
	Log io.Writer
}

// Server is a jackd this package started.
type Server struct {
	cmd      *exec.Cmd
	exited   chan struct{}
	realtime bool
	once     sync.Once
}

// ErrRunning reports that a server of that name already runs: StartDummy
// never takes over one it did not start.
var ErrRunning = errors.New("jackprobe: a JACK server of that name already runs")

// StartDummy starts jackd with the dummy driver and returns once clients
// can connect to it (jack_wait -w), or with an error within about 10 s.
func StartDummy(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Name == "" {
		return nil, errors.New("jackprobe: a dummy server needs a name")
	}
	// jack_wait -c exits 0 either way; it says "running" or "not running".
	if out, _ := exec.CommandContext(ctx, "jack_wait", "-s", cfg.Name, "-c").Output(); strings.TrimSpace(string(out)) == "running" {
		return nil, fmt.Errorf("%w: %s", ErrRunning, cfg.Name)
	}
	modes := []bool{false}
	if cfg.Realtime {
		modes = []bool{true, false}
	}
	var errs []error
	for _, rt := range modes {
		s, err := startDummy(ctx, cfg, rt)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startDummy(ctx context.Context, cfg ServerConfig, rt bool) (*Server, error) {
	args := []string{"--no-realtime"}
	if rt {
		args = []string{"-R", "-P", "70"}
	}
	args = append(args, "-n", cfg.Name, "-d", "dummy", "-r", strconv.Itoa(cfg.Rate), "-p", strconv.Itoa(cfg.Period))
	cmd := exec.Command("jackd", args...)
	// No D-Bus device reservation: there is no device to reserve.
	cmd.Env = append(os.Environ(), "JACK_NO_AUDIO_RESERVATION=1")
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("jackprobe: start jackd: %w", err)
	}
	s := &Server{cmd: cmd, exited: make(chan struct{}), realtime: rt}
	go func() { // owned by s: ends when jackd does, which Close ensures
		cmd.Wait()
		close(s.exited)
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waited := make(chan error, 1)
	go func() { // ends with wctx at the latest
		waited <- exec.CommandContext(wctx, "jack_wait", "-s", cfg.Name, "-w", "-t", "10").Run()
	}()
	select {
	case err := <-waited:
		if err == nil {
			return s, nil
		}
		s.Close()
		return nil, fmt.Errorf("jackprobe: jackd %v did not come up: %w", args, err)
	case <-s.exited:
		cancel()
		<-waited
		return nil, fmt.Errorf("jackprobe: jackd %v exited: %v", args, cmd.ProcessState)
	}
}

// Realtime says whether the server runs with real-time scheduling.
func (s *Server) Realtime() bool { return s.realtime }

// Close stops the server (SIGTERM, then SIGKILL after 5 s) and waits for
// it. Safe to call twice.
func (s *Server) Close() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
}
