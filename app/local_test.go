package app

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/signal"
)

func sine(hz float64, seconds float64) []float32 {
	p := make([]float32, int(seconds*audio.SampleRate))
	audio.ReadFull(&tone.Sine{Hz: hz, Amp: 0.3}, p)
	return p
}

func voice(base float64, seed uint64, seconds float64) []float32 {
	p := make([]float32, int(seconds*audio.SampleRate))
	audio.ReadFull(&tone.Voice{Base: base, Amp: 0.3, Seed: seed}, p)
	return p
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	}
	return slog.New(slog.DiscardHandler)
}

// tones measures the 440 and 660 Hz content of what a singer heard: the
// median over 20 ms windows of the middle half (away from connecting and
// leaving), so a concealed packet here and there does not sway it.
func tones(heard []float32) (a440, a660 float64) {
	mid := heard[len(heard)/4 : 3*len(heard)/4]
	const window = audio.SampleRate / 50
	var w440, w660 []float64
	for i := 0; i+window <= len(mid); i += window {
		w440 = append(w440, measure.Tone(mid[i:i+window], 440, audio.SampleRate))
		w660 = append(w660, measure.Tone(mid[i:i+window], 660, audio.SampleRate))
	}
	return median(w440), median(w660)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// TestDuetMixMinus is the end-to-end test: a real rendezvous server on a
// loopback port, two sessions with real WebRTC and Opus, the host singing
// 440 Hz and the guest 660 Hz with direct monitoring off. Each must hear the
// other, and the guest must not hear its own voice back (mix-minus).
func TestDuetMixMinus(t *testing.T) {
	before := runtime.NumGoroutine()
	res, err := RunLocal(t.Context(), LocalConfig{
		HostVoice:  sine(440, 3),
		GuestVoice: sine(660, 3),
		Monitor:    0,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	h440, h660 := tones(res.HostHeard)
	g440, g660 := tones(res.GuestHeard)
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
	waitGoroutines(t, before)
}

// waitGoroutines waits, up to a deadline, for the goroutine count to come
// back to what it was before a duet: every goroutine has been stopped.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left after the duet, want ≤ %d:\n%s", runtime.NumGoroutine(), want, buf[:n])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDuetMonitor checks that direct monitoring puts a singer's own voice in
// what they hear at the monitor gain and with no delay: subtracting the own
// voice, scaled and unshifted, must cancel it.
func TestDuetMonitor(t *testing.T) {
	hostVoice := sine(440, 3)
	res, err := RunLocal(t.Context(), LocalConfig{
		HostVoice:  hostVoice,
		GuestVoice: sine(660, 3),
		Monitor:    0.5,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	heard := res.HostHeard[:min(len(res.HostHeard), len(hostVoice))]
	rest := make([]float32, len(heard))
	for i := range rest {
		rest[i] = heard[i] - 0.5*hostVoice[i]
	}
	own, _ := tones(heard)
	left, _ := tones(rest)
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
			res, err := RunLocal(t.Context(), LocalConfig{
				HostVoice:  voice(196, 1, 4),
				GuestVoice: voice(330, 2, 4),
				Codec:      k,
				Monitor:    0,
				Logger:     testLogger(t),
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
	var events []Event
	var mu sync.Mutex
	res, err := RunLocal(t.Context(), LocalConfig{
		HostDevice: first,
		HostReopen: func() (audio.Device, error) {
			reopened++
			if reopened < 2 {
				return nil, errors.New("not plugged in yet")
			}
			return filedev.New(filedev.Config{Input: &tone.Sine{Hz: 440, Amp: 0.3}}), nil
		},
		GuestVoice: sine(660, 6),
		Logger:     testLogger(t),
		OnEvent: func(host bool, e Event) {
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
	var states []State
	for _, e := range events {
		states = append(states, e.State)
	}
	lost := slices.Index(states, StateDeviceLost)
	if lost < 0 || !slices.Contains(states[lost:], StateConnected) {
		t.Fatalf("host states %v, want device lost and then connected again", states)
	}
	// The last two seconds the guest heard: the host's tone, back.
	tail := res.GuestHeard[len(res.GuestHeard)-2*audio.SampleRate:]
	if a, _ := tones(tail); a < 0.15 {
		t.Errorf("after the device came back the guest hears the host at %.3f, want ≥ 0.15", a)
	}
}

// TestSignalingLossKeepsDuet drops the guest's rendezvous socket mid-song:
// the host hears "peer-left" from the server but media still flows, so the
// duet goes on, and the host keeps hearing the guest to the end.
func TestSignalingLossKeepsDuet(t *testing.T) {
	srv := signal.NewServer(signal.ServerConfig{})
	hs := httptest.NewServer(srv)
	defer func() { srv.Close(); hs.Close() }()

	hostOut := &memorySink{}
	// The host's song ends first, so the guest's own leaving does not
	// show as a partner leaving.
	hostDev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: sine(440, 3.5)}, Output: hostOut})
	guestDev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: sine(660, 4)}})
	connected := make(chan struct{}, 2)
	var hostStates []State
	var mu sync.Mutex
	cfg := func(dev audio.Device, host bool) Config {
		return Config{Server: hs.URL, Device: dev, Loopback: true, Logger: testLogger(t), OnEvent: func(e Event) {
			if e.State == StateConnected {
				connected <- struct{}{}
			}
			if host {
				mu.Lock()
				hostStates = append(hostStates, e.State)
				mu.Unlock()
			}
		}}
	}
	host, err := Host(t.Context(), cfg(hostDev, true))
	if err != nil {
		t.Fatal(err)
	}
	guest, err := Join(t.Context(), cfg(guestDev, false), host.Code())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var hostErr, guestErr error
	wg.Go(func() { hostErr = host.Run(t.Context()) })
	wg.Go(func() { guestErr = guest.Run(t.Context()) })
	for range 2 {
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("not connected within 10 s")
		}
	}
	guest.sig.Close() // the guest's Wi-Fi blinks; its socket is gone
	wg.Wait()
	if err := errors.Join(hostErr, guestErr); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(hostStates, StatePartnerLeft) {
		t.Errorf("host states %v: the guest was dropped though media flowed", hostStates)
	}
	// The guest's tone in the host's last second and a half.
	tail := hostOut.p[len(hostOut.p)-3*audio.SampleRate/2:]
	if _, g := tones(tail); g < 0.15 {
		t.Errorf("host hears the guest at %.3f at the end, want ≥ 0.15", g)
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
	res, err := RunLocal(t.Context(), LocalConfig{
		HostVoice:  voice(196, 1, 4),
		GuestVoice: voice(330, 2, 4),
		Network:    &p,
		Logger:     testLogger(t),
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

// logLevel is Info, or Debug when DUET_DEBUG is set.
func logLevel() slog.Level {
	if os.Getenv("DUET_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
