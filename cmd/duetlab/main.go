// Command duetlab runs Duet's measurement scenarios and prints their
// figures: a table, then one summary line "NAME: key=value …".
//
//	go run ./cmd/duetlab latency    mouth-to-ear latency and CPU, per Opus frame
//	go run ./cmd/duetlab network    the same over the lab's impaired networks
//	go run ./cmd/duetlab bottleneck a 120 kbit/s link (80 ms queue) both ways for 20 s, then none: wire rate, queue, concealment, recovery
//	go run ./cmd/duetlab load       10,000 rooms (20,000 sockets) on the rendezvous server: relay latency p50/p99, lost, misrouted, server memory per room (and across two instances with $DUET_REDIS)
//	go run ./cmd/duetlab abuse      issue 12's attacks (WAV bomb, descriptor leak, rooms flood, wrong codes, partner burst, 10,000 sockets, TURN flood, 101,000 addresses, idle and slow connections), each on a server of its own, timing honest singers who create and join meanwhile
//	go run ./cmd/duetlab relay      a relay-only (TURN) connection on loopback against a direct one (the relay's added latency), then one credential floods the relay with allocations
//	go run ./cmd/duetlab echo       echo cancellers on a synthetic room: ERLE, double talk, CPU
//	go run ./cmd/duetlab jitter     the playout alone on traces, against the oracle (-trace FILE: a captured one)
//	go run ./cmd/duetlab clock      the session clock estimator per path (simulated), and this machine against DUET_NTP
//	go run ./cmd/duetlab track      how far apart the two copies of the backing track play, guest card 100 ppm fast
//	go run ./cmd/duetlab record     where each voice sits on the track in a take, over impaired paths
//	go run ./cmd/duetlab jack       port to port through JACK (dummy driver), host and guest as two processes, both ways, per period; and Jamulus when installed
//	go run ./cmd/duetlab browser    mouth-to-ear latency of a guest in headless Chromium and Firefox (the guest page) against a desktop guest, both ways
//	go run ./cmd/duetlab glitch     a steady tone each way through the whole chain, clean and lossy (35 ± 12 ms, 3 % loss): level dips and phase steps a minute
//
// Each scenario runs the real stack (rendezvous server, WebRTC on loopback,
// Opus) on file devices at real time; the figures exclude device buffers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	ossignal "os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
)

// scenario runs one measurement, printing a table to w and returning the
// summary's key=value pairs.
type scenario func(ctx context.Context, w io.Writer) ([]string, error)

// options are the flags some scenarios take.
type options struct {
	songSeconds int
	traceFile   string
	jack        jackFlags
}

func scenarios(o options) map[string]scenario {
	return map[string]scenario{
		"track":   trackLab(o.songSeconds),
		"record":  recordLab,
		"clock":   clockLab,
		"jitter":  jitterLab(o.traceFile),
		"latency": latency,
		"network": network,
		"load":    load,
		"abuse":   abuse,
		"relay":   relayLab,
		"echo":    echo,
		"jack":    jackLab(&o.jack),
		"browser": browserLab,

		"bottleneck": bottleneck,
		"glitch":     glitchLab,
	}
}

func main() {
	ctx, stop := ossignal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "duetlab:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("duetlab", flag.ContinueOnError)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to `file`")
	var o options
	fs.IntVar(&o.songSeconds, "song-seconds", 60, "track: the song's length in `seconds` (300: the five-minute drift)")
	o.jack.register(fs)
	fs.StringVar(&o.traceFile, "trace", "", "jitter: replay this captured `file` (duet host|join -capture) instead of the lab's paths")
	fs.Usage = func() {
		var names []string
		for n := range scenarios(o) {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(fs.Output(), "Usage: duetlab [flags] SCENARIO\nScenarios: %s\nFlags:\n", strings.Join(names, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return errors.New("name one scenario")
	}
	// Flags may also follow the scenario's name.
	name := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errors.New("name one scenario")
	}
	sc, ok := scenarios(o)[name]
	if !ok {
		fs.Usage()
		return fmt.Errorf("no scenario %q", name)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	kv, err := sc(ctx, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", name, strings.Join(kv, " "))
	return nil
}
