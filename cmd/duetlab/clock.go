package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/net/clock"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/ntpcheck"
)

// clockPath is one lab path for the clock: a profile per direction.
type clockPath struct {
	name      string
	out, back impair.Profile // guest→host, host→guest
	symmetric bool
}

// clockPaths are impair's scenarios (both directions alike) and two
// asymmetric ones: one slower one way (a bias no ping can see), and one
// with its jitter mostly one way.
func clockPaths() []clockPath {
	var paths []clockPath
	for _, p := range impair.Scenarios() {
		paths = append(paths, clockPath{name: p.Name, out: p, back: p, symmetric: true})
	}
	paths = append(paths,
		clockPath{name: "asym 10/30",
			out:  impair.Profile{Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond},
			back: impair.Profile{Delay: 30 * time.Millisecond, Jitter: 2 * time.Millisecond}},
		clockPath{name: "asym jitter 10/1",
			out:  impair.Profile{Delay: 40 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: impair.Bursty(0.01, 2)},
			back: impair.Profile{Delay: 40 * time.Millisecond, Jitter: time.Millisecond, Loss: impair.Bursty(0.01, 2)}},
	)
	return paths
}

// clockCheck is the estimator's state at one instant of a simulated duet.
type clockCheck struct {
	at  time.Duration  // since the first ping
	est clock.Estimate // the estimate then
	err time.Duration  // est.Offset minus the true offset at its newest sample
}

// simulateClock plays a duet's clock traffic over a path on a simulated
// clock, as the app (app/clockfollow.go) does: the guest pings every
// 100 ms and the host answers 50 µs after a ping arrives, both sharing
// each direction with 200 voice packets a second (impair's models keep
// send order, so a ping waits behind a delayed voice packet). With voice,
// each voice packet carries its sender's clock (clock.Stamp): the host
// reports the fastest of the guest's every 100 ms (clock.Heard, itself a
// packet on the host→guest path), and the guest adds the fastest of the
// host's at each ping. The host's clock is offset0 ahead and runs ppm
// faster. It returns the estimator's state at each checkpoint.
func simulateClock(path clockPath, seed uint64, ppm float64, offset0 time.Duration, checkpoints []time.Duration, voice bool) []clockCheck {
	const (
		voiceEvery = 5 * time.Millisecond
		pingEvery  = 100 * time.Millisecond
		hold       = 50 * time.Microsecond // the host's time to answer
		size       = 100                   // bytes on the wire, voice or clock
	)
	end := checkpoints[len(checkpoints)-1]
	guest := func(t time.Duration) int64 { return int64(t) }
	host := func(t time.Duration) int64 { return int64(offset0) + int64(math.Round(float64(t)*(1+ppm*1e-6))) }

	// What happens, in time order, once the paths have had their say.
	type event struct {
		at time.Duration
		do func()
	}
	var events []event
	add := func(at time.Duration, do func()) { events = append(events, event{at, do}) }
	e := clock.New(30 * time.Second)
	var atHost, atGuest clock.Fastest

	type packet struct {
		at   time.Duration // sent
		ping int           // the ping's number; −1 for voice, −2 for a report
	}
	out, back := path.out, path.back
	out.Seed, back.Seed = seed, seed^0xbac
	outM, backM := impair.NewModel(out), impair.NewModel(back)

	// Guest → host: voice, and the pings between voice packets.
	var sends []packet
	for t := time.Duration(0); t < end; t += voiceEvery {
		sends = append(sends, packet{at: t, ping: -1})
		if t%pingEvery == 0 {
			sends = append(sends, packet{at: t + voiceEvery/2, ping: int(t / pingEvery)})
		}
	}
	sent, hostIn := map[int]time.Duration{}, map[int]time.Duration{}
	var replies []packet // the host's pongs, answered at
	for _, p := range sends {
		f := outM.Send(p.at, size)
		switch {
		case f.Copies == 0:
		case p.ping >= 0:
			sent[p.ping], hostIn[p.ping] = p.at, f.Arrival
			replies = append(replies, packet{at: f.Arrival + hold, ping: p.ping})
		case voice:
			add(f.Arrival, func() { atHost.Add(clock.Stamp(guest(p.at)), host(f.Arrival)) })
		}
	}
	// Host → guest: voice, the pongs and the reports, in send order.
	sends = sends[:0]
	for t := voiceEvery / 3; t < end; t += voiceEvery {
		sends = append(sends, packet{at: t, ping: -1})
	}
	for t := pingEvery / 2; voice && t < end; t += pingEvery {
		sends = append(sends, packet{at: t, ping: -2})
	}
	sends = append(sends, replies...)
	slices.SortStableFunc(sends, func(a, b packet) int { return cmp.Compare(a.at, b.at) })
	for _, p := range sends {
		f := backM.Send(p.at, size)
		switch {
		case p.ping >= 0:
			if f.Copies > 0 {
				s := clock.Sample{T1: guest(sent[p.ping]), T2: host(hostIn[p.ping]), T3: host(p.at), T4: guest(f.Arrival)}
				add(f.Arrival, func() { e.Add(s) })
			}
		case p.ping == -2: // the host takes its fastest as it sends
			add(p.at, func() {
				stamp, at, ok := atHost.Take()
				if ok && f.Copies > 0 {
					add(f.Arrival, func() { e.AddForward(clock.Unstamp(stamp, guest(f.Arrival)), at) })
				}
			})
		case voice && f.Copies > 0:
			add(f.Arrival, func() { atGuest.Add(clock.Stamp(host(p.at)), guest(f.Arrival)) })
		}
	}
	// The guest's pings: it adds its fastest of the host's voice.
	for t := time.Duration(0); voice && t < end; t += pingEvery {
		add(t, func() {
			stamp, at, ok := atGuest.Take()
			if est, err := e.Estimate(); ok && err == nil {
				e.AddBackward(clock.Unstamp(stamp, at+int64(est.Offset)), at)
			}
		})
	}
	var checks []clockCheck
	var newest time.Duration
	for _, at := range checkpoints {
		add(at, func() {
			est, err := e.Estimate()
			if err != nil {
				checks = append(checks, clockCheck{at: at, err: time.Duration(math.MaxInt64)})
				return
			}
			truth := time.Duration(host(newest) - guest(newest))
			checks = append(checks, clockCheck{at: at, est: est, err: est.Offset - truth})
		})
	}
	// Run them; events added on the way (a report sent) come later than
	// the one adding them and are sorted in.
	slices.SortStableFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	for len(events) > 0 {
		ev := events[0]
		events = events[1:]
		n := len(events)
		if ev.at > end {
			continue
		}
		ev.do()
		newest = max(newest, ev.at)
		added := slices.Clone(events[n:])
		events = events[:n]
		for _, a := range added {
			i, _ := slices.BinarySearchFunc(events, a.at, func(e event, at time.Duration) int { return cmp.Compare(e.at, at) })
			events = slices.Insert(events, i, a)
		}
	}
	return checks
}

// clockLab measures the session clock's estimator (net/clock) on each lab
// path, simulated deterministically with impair's per-packet model: 8
// seeds × host clock ±100 ppm, the offset's error after 5 s and 20 s
// (worst and mean of |error|, and the mean signed error: the bias), with
// the voice's stamps as the app has them, and for comparison the worst
// with pings alone (a partner whose voice is not stamped). Then, if
// DUET_NTP names a server, this machine's offset to it (net/ntpcheck).
func clockLab(ctx context.Context, w io.Writer) ([]string, error) {
	checkpoints := []time.Duration{5 * time.Second, 20 * time.Second}
	fmt.Fprintf(w, "Session clock estimator (a 30 s window, a ping every 100 ms, 200 voice packets/s each way, stamped),\n"+
		"8 seeds × host clock ±100 ppm; error = estimated minus true offset.\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tone way ms\tRTT ms\t5 s worst ms\t5 s mean ms\t5 s bias ms\t20 s worst ms\t20 s mean ms\t20 s bias ms\tdrift err ppm\tuncertainty ms\tpings alone: 5 s worst\t20 s worst\t")
	var symWorst5, symWorst20 float64
	var kv []string
	for _, path := range clockPaths() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		type stat struct{ worst, sumAbs, sum, driftWorst, bound float64 }
		stats := make([]stat, len(checkpoints))
		pingsWorst := make([]float64, len(checkpoints))
		var rtt time.Duration
		n := 0
		for seed := range uint64(8) {
			for _, ppm := range []float64{100, -100} {
				n++
				for i, c := range simulateClock(path, seed+1, ppm, 3700*time.Millisecond, checkpoints, false) {
					pingsWorst[i] = max(pingsWorst[i], math.Abs(ms(c.err)))
				}
				for i, c := range simulateClock(path, seed+1, ppm, 3700*time.Millisecond, checkpoints, true) {
					e := ms(c.err)
					s := &stats[i]
					s.worst = max(s.worst, math.Abs(e))
					s.sumAbs += math.Abs(e)
					s.sum += e
					s.driftWorst = max(s.driftWorst, math.Abs(c.est.DriftPPM-ppm))
					s.bound = max(s.bound, ms(errorBound(c.est)))
					rtt = c.est.RTT
				}
			}
		}
		s5, s20 := stats[0], stats[1]
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.3f\t%.3f\t%+.3f\t%.3f\t%.3f\t%+.3f\t%.0f\t%.2f\t%.3f\t%.3f\t\n", path.name, oneWay(path), ms(rtt),
			s5.worst, s5.sumAbs/float64(n), s5.sum/float64(n), s20.worst, s20.sumAbs/float64(n), s20.sum/float64(n), s20.driftWorst, s20.bound,
			pingsWorst[0], pingsWorst[1])
		if path.symmetric {
			symWorst5, symWorst20 = max(symWorst5, s5.worst), max(symWorst20, s20.worst)
			kv = append(kv, fmt.Sprintf("%s_20s_ms=%.3f %s_pings_20s_ms=%.3f", path.name, s20.worst, path.name, pingsWorst[1]))
		} else if path.name == "asym 10/30" {
			kv = append(kv, fmt.Sprintf("asym_bias_ms=%+.2f", s20.sum/float64(n)))
		} else {
			kv = append(kv, fmt.Sprintf("asym_jitter_bias_ms=%+.3f", s20.sum/float64(n)))
		}
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	kv = append([]string{fmt.Sprintf("symmetric_worst_5s_ms=%.3f symmetric_worst_ms=%.3f", symWorst5, symWorst20)}, kv...)

	server := os.Getenv("DUET_NTP")
	if server == "" {
		fmt.Fprintln(w, "\nNTP: DUET_NTP unset, not asked (the lab never asks a public server).")
		return append(kv, "ntp=unset"), nil
	}
	res, err := ntpcheck.Check(ctx, ntpcheck.Config{Server: server, Timeout: 2 * time.Second})
	switch {
	case errors.Is(err, ntpcheck.ErrUnreachable):
		fmt.Fprintf(w, "\nNTP %s: %v\n", server, err)
		return append(kv, "ntp=unreachable"), nil
	case err != nil:
		return nil, err
	}
	fmt.Fprintf(w, "\nNTP %s: this machine's offset %.3f ms, RTT %.3f ms, stratum %d\n", server, ms(res.Offset), ms(res.RTT), res.Stratum)
	return append(kv, fmt.Sprintf("ntp_offset_ms=%.3f ntp_rtt_ms=%.3f", ms(res.Offset), ms(res.RTT))), nil
}

// oneWay describes a path's one-way delays: base+jitter, per direction
// when they differ.
func oneWay(p clockPath) string {
	f := func(p impair.Profile) string { return fmt.Sprintf("%g+%g", ms(p.Delay), ms(p.Jitter)) }
	if p.out.Delay == p.back.Delay && p.out.Jitter == p.back.Jitter {
		return f(p.out)
	}
	return f(p.out) + " / " + f(p.back)
}

// errorBound is the estimator's own scale for its error (Uncertainty).
func errorBound(e clock.Estimate) time.Duration { return e.Uncertainty }
