package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/impair"
)

// latency runs a local duet in Opus at each frame size, in Opus Custom and
// in L16 (packets of the file device's 128-sample blocks) and reports the
// mouth-to-ear latency each way (device buffers excluded), the audio
// concealed, and the CPU used by both singers per second of song.
func latency(ctx context.Context, w io.Writer) ([]string, error) {
	const seconds = 6
	hostVoice, guestVoice := voices(seconds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "codec\tframe ms\tguest→host ms\thost→guest ms\tconcealed ms\tCPU % of a core (both)\t")
	var kv []string
	type run struct {
		kind  codec.Kind
		frame time.Duration
	}
	for _, r := range []run{{codec.Opus, 2500 * time.Microsecond}, {codec.Opus, 5 * time.Millisecond}, {codec.Opus, 10 * time.Millisecond},
		{codec.Opus, 20 * time.Millisecond}, {codec.OpusCustom, audio.Duration(128)}, {codec.L16, audio.Duration(128)}} {
		frame := r.frame
		cfg := lab.Config{HostVoice: hostVoice, GuestVoice: guestVoice, Codec: r.kind, Monitor: 1}
		if r.kind == codec.Opus {
			cfg.Frame = frame
		}
		res, err := lab.Run(ctx, cfg)
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
		fmt.Fprintf(tw, "%v\t%.3g\t%.1f\t%.1f\t%.0f\t%.1f\t\n", r.kind, ms(frame), ms(g2h), ms(h2g), concealed, cpuPct)
		f := "f" + strings.ReplaceAll(fmt.Sprint(ms(frame)), ".", "_")
		if r.kind != codec.Opus {
			f = r.kind.String()
		}
		kv = append(kv, fmt.Sprintf("%s_g2h_ms=%.1f %s_h2g_ms=%.1f %s_cpu_pct=%.1f", f, ms(g2h), f, ms(h2g), f, cpuPct))
	}
	return kv, tw.Flush()
}

// voices returns the two synthetic singers of the lab, a fifth apart,
// each with irregular bursts: a sung vowel repeats every pitch period
// (5 ms at 196 Hz), which a cross-correlation can mistake for the delay;
// the bursts make each stretch unlike any other.
func voices(seconds int) (host, guest []float32) {
	n := seconds * audio.SampleRate
	host, guest = make([]float32, n), make([]float32, n)
	audio.ReadFull(&tone.Voice{Base: 196, Amp: 0.3, Seed: 1}, host)
	audio.ReadFull(&tone.Voice{Base: 293.7, Amp: 0.3, Seed: 2}, guest)
	for v, p := range [][]float32{host, guest} {
		for i, b := range tone.Bursts(n, 0.3, v+1) {
			p[i] += b
		}
	}
	return host, guest
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// network runs a local duet over each of the lab's impaired networks
// (net/impair, both directions), and over the bottleneck of bottleneck.go
// (120 kbit/s behind an 80 ms queue, all along), and reports latency,
// loss and concealment each way: the baseline for the jitter buffer's
// work. Then it runs the bottleneck scenario (bottleneck.go: the link
// lifts after 20 s) and ends its line with that scenario's figures, after
// scenario=bottleneck.
func network(ctx context.Context, w io.Writer) ([]string, error) {
	const seconds = 20
	hostVoice, guestVoice := voices(seconds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "network\tone way ms\tguest→host ms\thost→guest ms\tlost %\tlate %\tconcealed %\t")
	var kv []string
	for _, p := range append(impair.Scenarios(), bottleneckPath(nil, nil)) {
		p.Seed = 1
		res, err := lab.Run(ctx, lab.Config{HostVoice: hostVoice, GuestVoice: guestVoice, Monitor: 0, Network: &p})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		lat := func(toHost bool) string {
			l, _, err := res.Latency(toHost)
			if err != nil {
				return "—"
			}
			return fmt.Sprintf("%.1f", ms(l))
		}
		g2h, h2g := lat(true), lat(false)
		v1, v2 := res.HostStats.Voice, res.GuestStats.Voice
		sent := float64(res.HostStats.Peer.PacketsSent + res.GuestStats.Peer.PacketsSent)
		played := float64(v1.PlayedSamples + v2.PlayedSamples)
		lost := 100 * float64(v1.PacketsLost+v2.PacketsLost) / sent
		late := 100 * float64(v1.PacketsDiscarded+v2.PacketsDiscarded) / sent
		concealed := 100 * float64(v1.ConcealedSamples+v2.ConcealedSamples) / played
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%.2f\t%.2f\t%.2f\t\n", p.Name, ms(p.Delay+p.Jitter), g2h, h2g, lost, late, concealed)
		kv = append(kv, fmt.Sprintf("%s_g2h_ms=%s %s_concealed_pct=%.2f", p.Name, g2h, p.Name, concealed))
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "\nThe bottleneck scenario (duetlab bottleneck):")
	b, err := bottleneck(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("bottleneck scenario: %w", err)
	}
	return append(append(kv, "scenario=bottleneck"), b...), nil
}
