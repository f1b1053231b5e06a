package main

import (
	"strings"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
)

func TestStatusLine(t *testing.T) {
	prev := app.Stats{}
	prev.Voice.PacketsLost = 3
	prev.Voice.ConcealmentEvents = 2
	prev.Voice.ConcealedSamples = 480
	st := prev
	st.Voice.PacketsLost = 5
	st.Voice.ConcealmentEvents = 3
	st.Voice.ConcealedSamples = 480 + 240
	st.Voice.PacketsDiscarded = 4
	st.Voice.PacketsSkipped = 38
	prev.DeviceStalls, st.DeviceStalls = 4, 7
	st.Codec, st.Bitrate, st.Redundancy = "Opus 5ms", 96000, 1
	l := app.Latency{Codec: 7500 * time.Microsecond, Network: 100 * time.Microsecond, Jitter: 3 * time.Millisecond, Device: 2700 * time.Microsecond}
	got := statusLine(st, prev, l)
	for _, want := range []string{
		"partner 13.3 ms away",
		"codec 7.5 + network 0.1 + buffer 3.0 + device 2.7",
		"lost 2, late 4, concealed 1× (5 ms)", // since the last line only
		"38 skipped to start",                 // apart from the late ones
		"this computer's audio ran late 3×",   // since the last line only
		"sending Opus 5ms at 96 kb/s + 1 redundant",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("status line %q lacks %q", got, want)
		}
	}
	// A quiet device goes unmentioned.
	st.DeviceStalls = prev.DeviceStalls
	if got := statusLine(st, prev, l); strings.Contains(got, "ran late") {
		t.Errorf("status line %q speaks of stalls that did not happen", got)
	}
}
