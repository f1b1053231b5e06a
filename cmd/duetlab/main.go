// Command duetlab runs Duet's measurement scenarios and prints their
// figures: a table, then one summary line "NAME: key=value …".
//
//	go run ./cmd/duetlab latency    mouth-to-ear latency and CPU, per Opus frame
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
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/tone"
)

// scenario runs one measurement, printing a table to w and returning the
// summary's key=value pairs.
type scenario func(ctx context.Context, w io.Writer) ([]string, error)

func scenarios() map[string]scenario {
	return map[string]scenario{
		"latency": latency,
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
	fs.Usage = func() {
		var names []string
		for n := range scenarios() {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(fs.Output(), "Usage: duetlab [flags] SCENARIO\nScenarios: %s\nFlags:\n", strings.Join(names, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one scenario")
	}
	name := fs.Arg(0)
	sc, ok := scenarios()[name]
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

// latency runs a local duet at each Opus frame size and reports the
// mouth-to-ear latency each way (device buffers excluded), the audio
// concealed, and the CPU used by both singers per second of song.
func latency(ctx context.Context, w io.Writer) ([]string, error) {
	const seconds = 6
	n := seconds * audio.SampleRate
	hostVoice, guestVoice := make([]float32, n), make([]float32, n)
	audio.ReadFull(&tone.Voice{Base: 196, Amp: 0.3, Seed: 1}, hostVoice)
	audio.ReadFull(&tone.Voice{Base: 293.7, Amp: 0.3, Seed: 2}, guestVoice)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "frame ms\tguest→host ms\thost→guest ms\tconcealed ms\tCPU % of a core (both)\t")
	var kv []string
	for _, frame := range []time.Duration{2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		res, err := app.RunLocal(ctx, app.LocalConfig{
			HostVoice: hostVoice, GuestVoice: guestVoice, Frame: frame, Monitor: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("frame %v: %w", frame, err)
		}
		cpu := res.CPU
		g2h, _, err := res.Latency(true)
		if err != nil {
			return nil, fmt.Errorf("frame %v guest→host: %w", frame, err)
		}
		h2g, _, err := res.Latency(false)
		if err != nil {
			return nil, fmt.Errorf("frame %v host→guest: %w", frame, err)
		}
		concealed := float64(res.HostStats.Voice.ConcealedSamples+res.GuestStats.Voice.ConcealedSamples) * 1000 / audio.SampleRate
		cpuPct := 100 * cpu.Seconds() / seconds
		fmt.Fprintf(tw, "%g\t%.1f\t%.1f\t%.0f\t%.1f\t\n", ms(frame), ms(g2h), ms(h2g), concealed, cpuPct)
		f := strings.ReplaceAll(fmt.Sprint(ms(frame)), ".", "_")
		kv = append(kv, fmt.Sprintf("f%s_g2h_ms=%.1f f%s_h2g_ms=%.1f f%s_cpu_pct=%.1f", f, ms(g2h), f, ms(h2g), f, cpuPct))
	}
	return kv, tw.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
