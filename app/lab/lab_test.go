package lab

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/impair"
)

// TestDuetMixMinus is the end-to-end test: a real rendezvous server on a
// loopback port, two sessions with real WebRTC and Opus, the host singing
// 440 Hz and the guest 660 Hz with direct monitoring off. Each must hear the
// other, and the guest must not hear its own voice back (mix-minus).
func TestDuetMixMinus(t *testing.T) {
	before := runtime.NumGoroutine()
	res, err := Run(t.Context(), Config{
		HostVoice:  testkit.Sine(440, 3),
		GuestVoice: testkit.Sine(660, 3),
		Monitor:    0,
		Logger:     testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	h440, h660 := testkit.Tone(res.HostHeard, 440), testkit.Tone(res.HostHeard, 660)
	g440, g660 := testkit.Tone(res.GuestHeard, 440), testkit.Tone(res.GuestHeard, 660)
	t.Logf("host heard 440 Hz at %.3f, 660 Hz at %.3f; guest heard 440 Hz at %.3f, 660 Hz at %.3f", h440, h660, g440, g660)
	if h660 < 0.15 {
		t.Errorf("host hears the guest's 660 Hz at %.3f, want ≥ 0.15 (sent at 0.3)", h660)
	}
	if g440 < 0.15 {
		t.Errorf("guest hears the host's 440 Hz at %.3f, want ≥ 0.15 (sent at 0.3)", g440)
	}
	// Monitoring is off: neither hears their own tone; for the guest this is
	// the mix-minus. 0.003 is −40 dB below the partner's tone.
	if g660 > 0.003 {
		t.Errorf("guest hears its own 660 Hz back at %.4f, want < 0.003", g660)
	}
	if h440 > 0.003 {
		t.Errorf("host hears its own 440 Hz at %.4f with monitoring off, want < 0.003", h440)
	}
	t.Logf("guest voice at the host: %+v", res.HostStats.Voice)
	t.Logf("host voice at the guest: %+v", res.GuestStats.Voice)
	if res.GuestStats.Peer.Candidate != "host" {
		t.Errorf("guest's ICE candidate type %q, want host (loopback)", res.GuestStats.Peer.Candidate)
	}
	if h, g := res.HostStats.SafetyCode, res.GuestStats.SafetyCode; h == "" || h != g {
		t.Errorf("safety codes: host %q, guest %q; want the same", h, g)
	}
	// Both clocks are this machine's: the guest's estimate of the host's
	// session clock must match the sessions' true offset.
	c := res.GuestStats.Clock
	t.Logf("clock: estimated offset %v (true %v), RTT %v, %d samples", c.Offset, res.ClockOffset, c.RTT, c.Samples)
	if c.Samples < 10 {
		t.Errorf("only %d clock samples in 3 s, want ≥ 10", c.Samples)
	} else if d := c.Offset - res.ClockOffset; d.Abs() > 500*time.Microsecond {
		t.Errorf("clock offset estimated %v, true %v: off by %v, want ≤ 0.5 ms", c.Offset, res.ClockOffset, d)
	}
	testkit.WaitGoroutines(t, before)
}

// TestDuetMonitor checks that direct monitoring puts a singer's own voice in
// what they hear at the monitor gain and with no delay: subtracting the own
// voice, scaled and unshifted, must cancel it.
func TestDuetMonitor(t *testing.T) {
	hostVoice := testkit.Sine(440, 3)
	res, err := Run(t.Context(), Config{
		HostVoice:  hostVoice,
		GuestVoice: testkit.Sine(660, 3),
		Monitor:    0.5,
		Logger:     testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	heard := res.HostHeard[:min(len(res.HostHeard), len(hostVoice))]
	rest := make([]float32, len(heard))
	for i := range rest {
		rest[i] = heard[i] - 0.5*hostVoice[i]
	}
	own := testkit.Tone(heard, 440)
	left := testkit.Tone(rest, 440)
	if own < 0.14 || own > 0.16 {
		t.Errorf("host hears itself at %.3f, want 0.15 (0.3 at monitor gain 0.5)", own)
	}
	if left > 0.003 {
		t.Errorf("after subtracting the own voice, %.4f of it is left: it is delayed or at another gain", left)
	}
}

// TestDuetLatency measures mouth-to-ear latency both ways with the real
// stack, in Opus at 5 ms frames, Opus Custom and L16. It logs the figures;
// it asserts only that the voice was found, since wall-clock timing on
// shared machines is not a test result.
func TestDuetLatency(t *testing.T) {
	for _, k := range []codec.Kind{codec.Opus, codec.OpusCustom, codec.L16} {
		t.Run(k.String(), func(t *testing.T) {
			res, err := Run(t.Context(), Config{
				HostVoice:  testkit.Voice(196, 1, 4),
				GuestVoice: testkit.Voice(330, 2, 4),
				Codec:      k,
				Monitor:    0,
				Logger:     testkit.Logger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, toHost := range []bool{true, false} {
				lat, score, err := res.Latency(toHost)
				if err != nil {
					t.Fatalf("toHost=%v: %v", toHost, err)
				}
				dir := "host→guest"
				if toHost {
					dir = "guest→host"
				}
				t.Logf("%v: %s latency %.2f ms (correlation %.2f)", k, dir, float64(lat)/float64(time.Millisecond), score)
			}
		})
	}
}

// unpluggedDevice is a file device whose end is not the input ending but
// the device being lost, as when a USB interface is pulled out.
type unpluggedDevice struct{ *filedev.Device }

func (unpluggedDevice) Err() error { return errors.New("unplugged") }

// TestDeviceLostAndBack pulls the host's device out after a second and
// plugs a new one in: the duet goes on, says so, and the guest hears the
// host again once the device is back.
func TestDeviceLostAndBack(t *testing.T) {
	first := unpluggedDevice{filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.3, Length: audio.SampleRate}})}
	reopened := 0
	var events []app.Event
	var mu sync.Mutex
	res, err := Run(t.Context(), Config{
		HostDevice: first,
		HostReopen: func() (audio.Device, error) {
			reopened++
			if reopened < 2 {
				return nil, errors.New("not plugged in yet")
			}
			return filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.3}}), nil
		},
		GuestVoice: testkit.Sine(660, 6),
		Logger:     testkit.Logger(t),
		OnEvent: func(host bool, e app.Event) {
			if host {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var states []app.State
	for _, e := range events {
		states = append(states, e.State)
	}
	lost := slices.Index(states, app.StateDeviceLost)
	if lost < 0 || !slices.Contains(states[lost:], app.StateConnected) {
		t.Fatalf("host states %v, want device lost and then connected again", states)
	}
	// The last two seconds the guest heard: the host's tone, back.
	tail := res.GuestHeard[len(res.GuestHeard)-2*audio.SampleRate:]
	if a := testkit.Tone(tail, 440); a < 0.15 {
		t.Errorf("after the device came back the guest hears the host at %.3f, want ≥ 0.15", a)
	}
}

// TestDuetOverImpairedNetwork sings over the lab's "continent" path (40 ms
// ± 10 each way, 1 % bursty loss): the partners still hear each other, the
// loss shows in the statistics, and the latency includes the path.
func TestDuetOverImpairedNetwork(t *testing.T) {
	p := impair.Scenarios()[3]
	if p.Name != "continent" {
		t.Fatalf("scenario 3 is %q", p.Name)
	}
	p.Seed = 1
	res, err := Run(t.Context(), Config{
		HostVoice:  testkit.Voice(196, 1, 4),
		GuestVoice: testkit.Voice(330, 2, 4),
		Network:    &p,
		Logger:     testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	lat, score, err := res.Latency(true)
	if err != nil {
		t.Fatal(err)
	}
	v := res.HostStats.Voice
	t.Logf("guest→host %v (correlation %.2f); %+v", lat, score, v)
	if lat < p.Delay {
		t.Errorf("latency %v below the path's %v: the impairment is not on the path", lat, p.Delay)
	}
	if v.PacketsLost == 0 && v.ConcealedSamples == 0 {
		t.Error("no loss or concealment over a path with 1 % loss")
	}
}
