package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
)

// statusEvery is how often host and join print their status line.
const statusEvery = 5 * time.Second

// printStatus writes a status line to w every interval until ctx is done,
// once the partner's voice has begun to arrive: the window's latency and
// quality figures for a singer without the window.
func printStatus(ctx context.Context, w io.Writer, interval time.Duration, s *app.Session) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last app.Stats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.Stats()
		if st.Voice.PacketsReceived == 0 {
			continue
		}
		fmt.Fprintln(w, statusLine(st, last, s.Latency()))
		last = st
	}
}

// statusLine says in one line how the partner reaches this singer: the
// latency by stage, what was lost and concealed since the last line (prev),
// and what this side sends.
func statusLine(st, prev app.Stats, l app.Latency) string {
	var b strings.Builder
	fmt.Fprintf(&b, "duet: partner %.1f ms away (codec %.1f + network %.1f + buffer %.1f + device %.1f)",
		ms(l.Total()), ms(l.Codec), ms(l.Network), ms(l.Jitter), ms(l.Device))
	lost := st.Voice.PacketsLost - prev.Voice.PacketsLost
	late := st.Voice.PacketsDiscarded - prev.Voice.PacketsDiscarded
	events := st.Voice.ConcealmentEvents - prev.Voice.ConcealmentEvents
	concealed := (st.Voice.ConcealedSamples - prev.Voice.ConcealedSamples) * 1000 / audio.SampleRate
	fmt.Fprintf(&b, "; lost %d, late %d, concealed %d× (%d ms)", lost, late, events, concealed)
	// Not late: older than where the playout (re)started.
	if skipped := st.Voice.PacketsSkipped - prev.Voice.PacketsSkipped; skipped > 0 {
		fmt.Fprintf(&b, "; %d skipped to start", skipped)
	}
	// Dropouts of this computer's own making, not the network's.
	if stalls := st.DeviceStalls - prev.DeviceStalls; stalls > 0 {
		fmt.Fprintf(&b, "; this computer's audio ran late %d×", stalls)
	}
	fmt.Fprintf(&b, "; sending %s at %d kb/s", st.Codec, st.Bitrate/1000)
	if st.Redundancy > 0 {
		fmt.Fprintf(&b, " + %d redundant", st.Redundancy)
	}
	return b.String()
}
