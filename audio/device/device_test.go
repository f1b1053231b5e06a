package device

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/calibrate"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
)

func TestFind(t *testing.T) {
	infos := []Info{
		{Index: 0, Name: "HDA Intel PCH: ALC3246 Analog", Inputs: 2, Outputs: 2, DefaultInput: true, DefaultOutput: true},
		{Index: 1, Name: "USB Audio CODEC", Inputs: 1, Outputs: 0},
		{Index: 2, Name: "USB Audio Headphones", Inputs: 0, Outputs: 2},
		{Index: 3, Name: "HDMI 0", Inputs: 0, Outputs: 8},
	}
	for _, tc := range []struct {
		spec  string
		input bool
		want  int
		err   string
	}{
		{"", true, 0, ""},
		{"", false, 0, ""},
		{"1", true, 1, ""},
		{"1", false, 0, "no output device number 1"},
		{"codec", true, 1, ""},
		{"usb", false, 2, ""},
		{"usb audio", true, 1, ""},
		{"hdmi", true, 0, `no input device called "hdmi"`},
		{"a", false, 0, "could be any of"},
		{"HDMI 0", false, 3, ""},
	} {
		got, err := find(infos, tc.spec, tc.input)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrNoDevice) {
				t.Errorf("find(%q, input=%v) = %v, %v; want error containing %q", tc.spec, tc.input, got.Index, err, tc.err)
			}
			continue
		}
		if err != nil || got.Index != tc.want {
			t.Errorf("find(%q, input=%v) = %d, %v; want %d", tc.spec, tc.input, got.Index, err, tc.want)
		}
	}
	if _, err := find([]Info{{Index: 0, Name: "x", Outputs: 2}}, "", true); err == nil || !strings.Contains(err.Error(), "no default input") {
		t.Errorf("no default input: err = %v", err)
	}
}

// jackSystem opens PortAudio and returns the JACK device's name. With
// DUET_JACK=1 (set by .ci/run, which starts a JACK server with the dummy
// driver) a missing JACK server fails the test; elsewhere it skips.
func jackSystem(t *testing.T) (*System, string) {
	t.Helper()
	sys, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	infos, err := sys.Devices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range infos {
		if strings.Contains(d.HostAPI, "JACK") && d.Inputs > 0 && d.Outputs > 0 {
			return sys, d.Name
		}
	}
	if os.Getenv("DUET_JACK") == "1" {
		t.Fatalf("no JACK device among %d PortAudio devices, but DUET_JACK=1 says a JACK server runs", len(infos))
	}
	t.Skip("no JACK server: start one with jackd -d dummy -r 48000 -p 128 (DUET_JACK=1 makes this a failure)")
	return nil, ""
}

func TestDuplexOnJACK(t *testing.T) {
	sys, name := jackSystem(t)
	st, err := sys.Open(Config{Input: name, Output: name, Buffer: 128})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blocks := make(chan int, 1000)
	if err := st.Start(func(in, out []float32) {
		select {
		case blocks <- len(in):
		default:
		}
		for i := range out {
			out[i] = in[i]
		}
	}); err != nil {
		t.Fatal(err)
	}
	// Two seconds of 128-frame blocks is 750 callbacks.
	deadline := time.After(10 * time.Second)
	for n := 0; n < 750; n++ {
		select {
		case size := <-blocks:
			if size != 128 {
				t.Fatalf("callback with %d frames, want 128", size)
			}
		case <-deadline:
			t.Fatalf("only %d callbacks in 10 s", n)
		}
	}
	s := st.Stats()
	t.Logf("%d callbacks, %d xruns; reported latency in %v out %v; callback timing in %v out %v",
		s.Callbacks, s.Xruns, s.ReportedInput, s.ReportedOutput, s.CallbackInput, s.CallbackOutput)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
}

// TestCalibrateOnJACK connects the stream's JACK output to its own input
// and measures the round trip. The known figure is what PortAudio reports
// for the open stream (input + output latency, from JACK's port latencies
// and its own buffering): 256 frames, 5.33 ms, at a 128-frame period. It
// must be a whole number of periods: the dummy driver has no converters.
func TestCalibrateOnJACK(t *testing.T) {
	sys, name := jackSystem(t)
	st := openLooped(t, sys, name, false)
	reported := st.Stats()
	res, err := calibrate.Run(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := reported.ReportedInput + reported.ReportedOutput
	t.Logf("calibrated round trip %v (each %v, confidence %.2f); PortAudio reports input %v + output %v",
		res.RoundTrip, res.Each, res.Confidence, reported.ReportedInput, reported.ReportedOutput)
	if d := res.RoundTrip - want; d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("round trip %v, want PortAudio's %v ± 1 ms", res.RoundTrip, want)
	}
	if frames := float64(res.RoundTrip) / float64(audio.Duration(128)); math.Abs(frames-math.Round(frames)) > 0.01 {
		t.Errorf("round trip %v is %.3f periods, want a whole number", res.RoundTrip, frames)
	}
}

// TestSessionOnJACK runs a duet whose host sings on the JACK device, its
// output looped back into its input (monitoring off): the guest's 660 Hz
// goes to the host, out of the host's device, back in, and back to the
// guest, who hears it a round trip later.
func TestSessionOnJACK(t *testing.T) {
	sys, name := jackSystem(t)
	st := openLooped(t, sys, name, false)
	guestVoice := tone.SineAt(audio.SampleRate, 3*audio.SampleRate, 660, 0.3)
	res, err := lab.Run(t.Context(), lab.Config{
		HostDevice: st,
		GuestVoice: guestVoice,
		Monitor:    0,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := st.Stats()
	t.Logf("host device: %d callbacks, %d xruns", s.Callbacks, s.Xruns)
	if s.Callbacks < 2*audio.SampleRate/128 {
		t.Errorf("host device ran %d callbacks, want ≥ 2 s worth", s.Callbacks)
	}
	// The median over 20 ms windows: an xrun on a busy machine breaks the
	// tone's phase, which one long window would count as a quieter tone.
	heard := res.GuestHeard[len(res.GuestHeard)/3 : 2*len(res.GuestHeard)/3]
	var levels []float64
	for w := audio.SampleRate / 50; len(heard) >= w; heard = heard[w:] {
		levels = append(levels, measure.Tone(heard[:w], 660, audio.SampleRate))
	}
	slices.Sort(levels)
	if got := levels[len(levels)/2]; got < 0.1 {
		t.Errorf("the guest hears its voice back through the host's device at %.3f, want ≥ 0.1 (sent at 0.3)", got)
	}
}

// TestSplitStreamsOnJACK opens input and output as two streams joined by
// the drift bridge (as for two devices) and calibrates through the loop:
// the round trip is what PortAudio reports plus the bridge's latency, the
// probes agree to within a couple of samples while the tracker holds the
// level, and the bridge neither runs dry nor overflows but where JACK
// itself skipped a callback.
func TestSplitStreamsOnJACK(t *testing.T) {
	sys, name := jackSystem(t)
	st := openLooped(t, sys, name, true)
	// The drift correction, every 100 ms: a late callback on a loaded
	// machine moves the level a few samples and the correction with it
	// for a moment (5 samples off is 100 ppm); its median is the steady
	// correction, which on one clock is near 0.
	var ppm []int64
	res, err := calibrate.Run(t.Context(), st, func(float64) { ppm = append(ppm, st.Stats().DriftPPM) })
	if err != nil {
		t.Fatal(err)
	}
	s := st.Stats()
	slices.Sort(ppm)
	drift := ppm[len(ppm)/2]
	t.Logf("split streams: round trip %v %v (confidence %.2f); bridge %v, drift %d ppm (median; %d…%d), %d bridge xruns, %d xruns; PortAudio reports %v + %v",
		res.RoundTrip, res.Each, res.Confidence, s.Bridge, drift, ppm[0], ppm[len(ppm)-1], s.BridgeXruns, s.Xruns, s.ReportedInput, s.ReportedOutput)
	if !s.Split {
		t.Fatal("the stream is not split")
	}
	// A callback JACK skipped (an xrun of the device's: the dummy server
	// on a loaded machine) may starve the bridge once; none otherwise.
	if s.BridgeXruns > s.Xruns {
		t.Errorf("the bridge ran dry or overflowed %d times on one clock, with %d xruns of the device's", s.BridgeXruns, s.Xruns)
	}
	// A skipped callback moves the bridge's level a block at once, and
	// the tracker rightly steers it back for the rest of a short run
	// (101…713 ppm after 3 xruns in 3.6 s, once): only a run without one
	// says whether it invents a drift.
	if s.Xruns == 0 && (drift < -100 || drift > 100) {
		t.Errorf("drift correction %d ppm (median) on one clock, want near 0", drift)
	}
	// While the tracker settles the bridge's delay may move a few samples
	// between probes; more than half a millisecond would be a fault.
	lo, hi := slices.Min(res.Each), slices.Max(res.Each)
	if hi-lo > 500*time.Microsecond {
		t.Errorf("probes measured %v…%v: the bridge's delay wanders", lo, hi)
	}
	want := s.ReportedInput + s.ReportedOutput + s.Bridge
	if d := res.RoundTrip - want; d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("round trip %v, want PortAudio's %v plus the bridge's %v (%v) ± 1 ms", res.RoundTrip, s.ReportedInput+s.ReportedOutput, s.Bridge, want)
	}
}

// openLooped opens a stream on the JACK device (split into two streams if
// asked) and connects its first output to its own input.
func openLooped(t *testing.T, sys *System, name string, split bool) *Stream {
	t.Helper()
	before := jackPorts(t)
	st, err := sys.Open(Config{Input: name, Output: name, Buffer: 128, Separate: split})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var in, out string
	for _, p := range jackPorts(t) {
		if slices.Contains(before, p) {
			continue
		}
		switch {
		case strings.HasSuffix(p, ":in_0"):
			in = p
		case strings.HasSuffix(p, ":out_0"):
			out = p
		}
	}
	if in == "" || out == "" {
		t.Fatalf("the stream's JACK ports not found (before %v, after %v)", before, jackPorts(t))
	}
	if b, err := exec.Command("jack_connect", out, in).CombinedOutput(); err != nil {
		t.Fatalf("jack_connect %s %s: %v %s", out, in, err, b)
	}
	return st
}

// jackPorts lists the JACK server's ports.
func jackPorts(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("jack_lsp").Output()
	if err != nil {
		t.Fatalf("jack_lsp: %v", err)
	}
	return strings.Fields(string(out))
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int64
		stop := make(chan struct{})
		lost := make(chan bool, 1)
		go func() { lost <- watch(n.Load, stop, 100*time.Millisecond, time.Second) }()
		// Callbacks keep coming for 3 s: not lost.
		for range 30 {
			n.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case <-lost:
			t.Fatal("watch gave up while callbacks were coming")
		default:
		}
		// They stop: lost after a second.
		start := time.Now()
		if !<-lost {
			t.Fatal("watch did not report the stall")
		}
		if d := time.Since(start); d < 900*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("stall reported after %v, want about 1 s", d)
		}
		// Stopped before any stall: not lost.
		go func() { lost <- watch(n.Load, stop, 100*time.Millisecond, time.Second) }()
		close(stop)
		if <-lost {
			t.Fatal("watch reported a stall after stop")
		}
	})
}
