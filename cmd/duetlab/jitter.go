package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/jitter/jittertest"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/trace"
)

// jitterLab replays synthetic traces of each impaired path (seeded, the
// sender's clock 200 ppm fast) into the adaptive playout alone, on a
// simulated clock, and sets its figures beside the oracle's: the smallest
// fixed delay that keeps late loss within 1 % on the same trace. It prints
// the playout at its default setting per path, then the trade-off as the
// user's bias sweeps from tight to safe; the summary is the mobile path
// (the hardest) at the default. Then it plays a clean path as JACK runs
// two singers on one machine (jittertest.Simulate): device blocks of 64
// and 128 samples framing packets of 64, 120 and 240, with and without rare
// goroutine stalls, reading at the device's smoothed instant (ReadAt) or
// the callback's wall clock (Read).
func jitterLab(traceFile string) scenario {
	return func(ctx context.Context, w io.Writer) ([]string, error) {
		if traceFile != "" {
			return replayFile(w, traceFile)
		}
		return jitterPaths(ctx, w)
	}
}

// replayFile replays one trace file (a capture of a real session: duet
// host|join -capture FILE) into the playout at each bias.
func replayFile(w io.Writer, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr, err := trace.Parse(f)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "Playout on %s: %d packets of %d ticks.\n\n", path, len(tr.Records), tr.Frame)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "bias\tlate %\tdelay ms\tp95 ms\toracle ms\t× oracle\tconcealed %\t\n")
	var kv []string
	for _, bias := range []float64{-1, 0, 1} {
		cfg := jitter.PlayoutConfig{Bias: bias, Config: jitter.Config{MaxPacket: 1275, WaitStep: 120}}
		r, err := jittertest.Replay(cfg, tr, jittertest.Options{})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(tw, "%+g\t%.2f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t\n", bias, r.LatePct, ms(r.MeanDelay), ms(r.P95Delay), ms(r.Oracle), r.Ratio, r.ConcealedPct)
		if bias == 0 {
			kv = append(kv, fmt.Sprintf("trace=%s late_loss_pct=%.2f delay_ms=%.1f oracle_ms=%.1f delay_vs_oracle=%.2f", path, r.LatePct, ms(r.MeanDelay), ms(r.Oracle), r.Ratio))
		}
	}
	return kv, tw.Flush()
}

func jitterPaths(ctx context.Context, w io.Writer) ([]string, error) {
	const duration = 3 * time.Minute
	base := jitter.PlayoutConfig{Config: jitter.Config{MaxPacket: 1275, WaitStep: 120}}
	traces := map[string]*trace.Trace{}
	var names []string
	for i, p := range impair.Scenarios() {
		p.Seed = uint64(i + 1)
		traces[p.Name] = trace.Generate(p, trace.Options{Duration: duration, DriftPPM: 200, Seq: 65000})
		names = append(names, p.Name)
	}
	row := func(tw io.Writer, label string, r jittertest.Result) {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%.1f\t\n", label, r.LatePct,
			ms(r.MeanDelay), ms(r.P95Delay), ms(r.Target), ms(r.BufferDelay), ms(r.Oracle), r.Ratio, r.ConcealedPct, r.ConcealPerMin)
	}
	header := "\tlate %\tdelay ms\tp95 ms\ttarget ms\tbuffer ms\toracle ms\t× oracle\tconcealed %\tevents/min\t\n"
	fmt.Fprintf(w, "Playout on %v traces (5 ms packets, 128-sample reads, sender +200 ppm), first 5 s left out;\n"+
		"delay from each packet's fastest possible arrival; oracle: least fixed delay with ≤ 1 %% late.\n\n", duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "path"+header)
	results := map[string]jittertest.Result{}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := jittertest.Replay(base, traces[name], jittertest.Options{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		results[name] = r
		row(tw, name, r)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}

	fmt.Fprintf(w, "\nTrade-off on mobile and continent: the target quantile swept.\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "path, quantile"+header)
	for _, name := range []string{"mobile", "continent"} {
		for _, q := range []float64{0.9, 0.95, 0.98, 0.99, 0.995, 0.999} {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			cfg := base
			cfg.Quantile = q
			r, err := jittertest.Replay(cfg, traces[name], jittertest.Options{})
			if err != nil {
				return nil, fmt.Errorf("%s at %v: %w", name, q, err)
			}
			row(tw, fmt.Sprintf("%s %v", name, q), r)
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	clean, err := cleanPaths(ctx, w)
	if err != nil {
		return nil, err
	}
	m := results["mobile"]
	return append([]string{
		"scenario=mobile",
		fmt.Sprintf("late_loss_pct=%.2f", m.LatePct),
		fmt.Sprintf("delay_ms=%.1f", ms(m.MeanDelay)),
		fmt.Sprintf("oracle_ms=%.1f", ms(m.Oracle)),
		fmt.Sprintf("delay_vs_oracle=%.2f", m.Ratio),
	}, clean...), nil
}

// cleanPaths prints the clean-path table and returns its summary: the
// most concealment events a minute and the most delay above the oracle's
// without stalls, and the most jumps of over 1 ms a minute with them.
func cleanPaths(ctx context.Context, w io.Writer) ([]string, error) {
	fmt.Fprintf(w, "\nA clean path as JACK runs two singers on one machine (one clock, the receiver's callback in the\n"+
		"sender's cycle ±0.3 ms, packets 0.1–0.3 ms on their way), a minute each; stalls: 1 packet in 2,000\n"+
		"held up 0.5–3 ms. Delay from a frame's last sample captured to its first played; oracle: the least\n"+
		"at which every packet not stalled is in before the read that plays it.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "block\tframe\tclock\tstalls\tevents/min\tlate\tdelay ms\toracle ms\ttarget ms\texcursion ms\tjumps/min\tsettled s\t\n")
	var worstEvents, worstExcess, worstJumps float64
	for _, block := range []int{64, 128} {
		for _, frame := range []int{64, 120, 240} {
			for _, device := range []bool{true, false} {
				for _, stalls := range []int{0, 2000} {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					p := jittertest.Path{Block: block, Frame: frame, Phase: 20 * time.Microsecond,
						CallbackJitter: 300 * time.Microsecond, Duration: time.Minute, Seed: uint64(block + frame),
						DeviceClock: device, HiccupEvery: stalls, HiccupMin: 500 * time.Microsecond, HiccupMax: 3 * time.Millisecond}
					cfg := jitter.PlayoutConfig{Config: jitter.Config{MaxPacket: 1275, WaitStep: min(frame, 120)}}
					r, err := jittertest.Simulate(cfg, p)
					if err != nil {
						return nil, err
					}
					clock, stall := "wall", "-"
					if device {
						clock = "device"
					}
					if stalls > 0 {
						stall = "yes"
						worstJumps = max(worstJumps, r.JumpsPerMin)
					} else {
						worstEvents = max(worstEvents, r.ConcealPerMin)
						worstExcess = max(worstExcess, ms(r.MeanDelay-r.Oracle))
					}
					fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f\t\n", block, frame, clock, stall,
						r.ConcealPerMin, r.Late, ms(r.MeanDelay), ms(r.Oracle), ms(r.Target), ms(r.MaxExcursion), r.JumpsPerMin, r.Settle.Seconds())
				}
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("clean_events_per_min=%.1f", worstEvents),
		fmt.Sprintf("clean_over_oracle_ms=%.2f", worstExcess),
		fmt.Sprintf("stalls_jumps_per_min=%.1f", worstJumps),
	}, nil
}
