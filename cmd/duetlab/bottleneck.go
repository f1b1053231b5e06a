package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/peer"
)

// The bottleneck of issue 16: 120 kbit/s each way behind an 80 ms
// drop-tail queue, 30 ms one way with 5 ms of jitter.
const (
	bottleneckBps   = 120_000
	bottleneckQueue = 80 * time.Millisecond
)

// bottleneckPath is that path; limit, if set, is its rate instead.
func bottleneckPath(limit *impair.Limit, observe func([]byte, impair.Fate)) impair.Profile {
	return impair.Profile{
		Name: "bottleneck", Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond,
		RateBps:    bottleneckBps,
		QueueBytes: int(bottleneckQueue * bottleneckBps / 8 / time.Second),
		Overhead:   impair.WireOverhead,
		Limit:      limit, Observe: observe,
		Seed: 1,
	}
}

// bottleneck sings a 40 s duet (the default codec choice, as a singer
// would) whose path is the bottleneck for the first 20 s, both ways, and
// then has no limit. It follows both senders each second: what each
// sends and puts on the wire (its voice packets with RTP, SRTP and IP/UDP
// headers), what else crosses the bottleneck each way on average (RTCP;
// the data channels, DTLS, with ICE's checks), the queue's wait and the
// partner's concealment. The summary, between 5 s and the lift: the
// higher of the two directions' wire rates (sent_kbps) against the
// link's (link_kbps), the 95th percentile of the queue's wait (queue_ms,
// both directions), the worse direction's concealment (concealed_pct)
// and the data channels' share of the link each way (data_kbps, which
// competes with the voice); then how long after the lift both senders
// are back to full quality (what cost each the most on the wire, in
// codec, bitrate and redundancy) and stay so (recover_s; -1: never).
func bottleneck(ctx context.Context, w io.Writer) ([]string, error) {
	const (
		seconds = 40
		lift    = 20 * time.Second
		settle  = 5 * time.Second
	)
	hostVoice, guestVoice := voices(seconds)
	limit := impair.NewLimit(bottleneckBps)
	q := &queueLog{}
	path := bottleneckPath(limit, q.observe)
	var samples []duetSample
	var start time.Time
	_, err := lab.Run(ctx, lab.Config{
		HostVoice: hostVoice, GuestVoice: guestVoice, Network: &path,
		Sessions: func(host, guest *app.Session) {
			start = time.Now()
			samples = followDuet(ctx, host, guest, start, seconds*time.Second, func(at time.Duration) {
				if at >= lift {
					limit.Set(0)
				}
			})
		},
	})
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "s\tlink kbps\tguest sends\tkbps\tred\twire kbps\thost sends\tkbps\tred\twire kbps\trtcp kbps\tdata kbps\tqueue p95 ms\tconcealed % at host\tat guest\t")
	// Full quality is what each sent that cost the most on the wire
	// (the first thing it sent, unless it backed off within the first
	// second).
	var full [2]sent
	var most [2]float64
	for i := 1; i < len(samples); i++ {
		for d := range 2 {
			if r := wireKbps(samples[i-1], samples[i], d); r > most[d] && samples[i].dir[d].codec != "" {
				most[d], full[d] = r, samples[i].dir[d]
			}
		}
	}
	recovered := -time.Second // never
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		link := "120"
		if a.at >= lift {
			link = "none"
		}
		var cells []string
		for d := range 2 {
			s := b.dir[d]
			cells = append(cells, s.codec, fmt.Sprintf("%.0f", float64(s.bitrate)/1000), fmt.Sprint(s.red), fmt.Sprintf("%.0f", wireKbps(a, b, d)))
		}
		waits, bytes := q.between(start.Add(a.at), start.Add(b.at))
		kbps := func(k byte) float64 { return float64(bytes[k]) * 8 / 1000 / (b.at - a.at).Seconds() / 2 }
		fmt.Fprintf(tw, "%.0f\t%s\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t\n", b.at.Seconds(), link, strings.Join(cells, "\t"), kbps('c'), kbps('d')+kbps('s'),
			ms(percentile(waits, 0.95)), concealedPct(a, b, 0), concealedPct(a, b, 1))
		if a.at >= lift {
			switch back := b.dir[0].same(full[0]) && b.dir[1].same(full[1]); {
			case back && recovered < 0:
				recovered = b.at - lift
			case !back:
				recovered = -time.Second
			}
		}
	}
	// The bottleneck's figures over the whole stretch.
	from, to := sampleAt(samples, settle), sampleAt(samples, lift)
	if from < 0 || to <= from {
		return nil, fmt.Errorf("the duet was followed for %d seconds, too few", len(samples))
	}
	a, b := samples[from], samples[to]
	var sentKbps, concealed float64
	for d := range 2 {
		sentKbps = max(sentKbps, wireKbps(a, b, d))
		concealed = max(concealed, concealedPct(a, b, d))
	}
	waits, bytes := q.between(start.Add(a.at), start.Add(b.at))
	queue := ms(percentile(waits, 0.95))
	data := float64(bytes['d']+bytes['s']) * 8 / 1000 / (b.at - a.at).Seconds() / 2
	fmt.Fprintf(tw, "%.0f–%.0f\t120\t\t\t\t%.0f (the more)\t\t\t\t\t\t\t%.1f\t%.2f (the worse)\t\t\n", a.at.Seconds(), b.at.Seconds(), sentKbps, queue, concealed)
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "full quality (what cost the most): guest %s at %d kbit/s, host %s at %d kbit/s; the lift at %v\n",
		full[0].codec, full[0].bitrate/1000, full[1].codec, full[1].bitrate/1000, lift)
	return []string{fmt.Sprintf("sent_kbps=%.0f link_kbps=%d queue_ms=%.1f concealed_pct=%.2f recover_s=%.0f data_kbps=%.0f",
		sentKbps, bottleneckBps/1000, queue, concealed, recovered.Seconds(), data)}, nil
}

// sent is one sender's figures at one moment: what it sends and its
// counters.
type sent struct {
	codec            string
	bitrate, red     int
	packets, bytes   int64 // voice packets sent, their payload
	played, conceals int64 // the partner's voice played here, concealed
}

// same reports whether s sends what full does.
func (s sent) same(full sent) bool {
	return s.codec == full.codec && s.bitrate == full.bitrate && s.red == full.red
}

// duetSample is both senders at one moment, at since the start.
type duetSample struct {
	at  time.Duration
	dir [2]sent // the guest's, the host's
}

func sentOf(st app.Stats) sent {
	return sent{st.Codec, st.Bitrate, st.Redundancy, st.Peer.PacketsSent, st.Peer.BytesSent, st.Voice.PlayedSamples, st.Voice.ConcealedSamples}
}

// followDuet samples both sessions every second from start for length
// (or until ctx is done), calling at with the time since the start before
// each sample.
func followDuet(ctx context.Context, host, guest *app.Session, start time.Time, length time.Duration, at func(time.Duration)) []duetSample {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var out []duetSample
	for {
		now := time.Since(start)
		at(now)
		out = append(out, duetSample{now, [2]sent{sentOf(guest.Stats()), sentOf(host.Stats())}})
		if now >= length {
			return out
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

// sampleAt is the index of the first sample at or after t, -1 if none.
func sampleAt(s []duetSample, t time.Duration) int {
	for i, x := range s {
		if x.at >= t {
			return i
		}
	}
	return -1
}

// wireKbps is what sender d (0: the guest) put on the wire between two
// samples, in kbit/s: its voice packets' payload and every header
// (peer.WireOverhead).
func wireKbps(a, b duetSample, d int) float64 {
	x, y := a.dir[d], b.dir[d]
	bytes := float64(y.bytes-x.bytes) + float64(y.packets-x.packets)*peer.WireOverhead
	return bytes * 8 / 1000 / (b.at - a.at).Seconds()
}

// concealedPct is the share of sender d's voice (0: the guest's) its
// partner concealed between two samples.
func concealedPct(a, b duetSample, d int) float64 {
	x, y := a.dir[1-d], b.dir[1-d] // the partner's playout
	if y.played <= x.played {
		return 0
	}
	return 100 * float64(y.conceals-x.conceals) / float64(y.played-x.played)
}

// queueLog keeps what the bottleneck did to each packet, both
// directions, with when it came.
type queueLog struct {
	mu    sync.Mutex
	at    []time.Time
	wait  []time.Duration // -1: dropped
	bytes []int           // on the wire
	kind  []byte          // RFC 7983's first byte: 'r' RTP (voice), 'c' RTCP, 'd' DTLS (the data channels), 's' STUN
}

func (q *queueLog) observe(b []byte, f impair.Fate) {
	q.mu.Lock()
	defer q.mu.Unlock()
	wait := f.Queued
	if f.Lost || f.RateDropped {
		wait = -1
	}
	q.at = append(q.at, time.Now())
	q.wait = append(q.wait, wait)
	q.bytes = append(q.bytes, len(b)+impair.WireOverhead)
	// RFC 7983: 128–191 is RTP or RTCP (whose packet types are
	// 192–223), 20–63 DTLS, 0–3 STUN.
	k := byte('s')
	switch {
	case len(b) > 1 && b[0] >= 128 && b[0] <= 191 && b[1] >= 192 && b[1] <= 223:
		k = 'c'
	case len(b) > 1 && b[0] >= 128 && b[0] <= 191:
		k = 'r'
	case len(b) > 0 && b[0] >= 20 && b[0] <= 63:
		k = 'd'
	}
	q.kind = append(q.kind, k)
}

// between returns the waits of the packets written between a and b that
// the queue took, and the bytes written meanwhile by kind (see kind). The
// caller holds mu.
func (q *queueLog) between(a, b time.Time) (waits []time.Duration, bytes map[byte]int) {
	bytes = map[byte]int{}
	for i, t := range q.at {
		if !t.Before(a) && t.Before(b) {
			bytes[q.kind[i]] += q.bytes[i]
			if q.wait[i] >= 0 {
				waits = append(waits, q.wait[i])
			}
		}
	}
	return waits, bytes
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
