package app

import (
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/net/signal/server"
)

// TestSignalingLossKeepsDuet drops the guest's rendezvous socket mid-song:
// the host hears "peer-left" from the server but media still flows, so the
// duet goes on, and the host keeps hearing the guest to the end.
func TestSignalingLossKeepsDuet(t *testing.T) {
	srv := server.New(server.Config{})
	hs := httptest.NewServer(srv)
	defer func() { srv.Close(); hs.Close() }()

	hostOut := &testkit.Sink{}
	// The host's song ends first, so the guest's own leaving does not
	// show as a partner leaving.
	hostDev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: testkit.Sine(440, 3.5)}, Output: hostOut})
	guestDev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: testkit.Sine(660, 4)}})
	connected := make(chan struct{}, 2)
	var hostStates []State
	var mu sync.Mutex
	cfg := func(dev audio.Device, host bool) Config {
		return Config{Server: hs.URL, Device: dev, Loopback: true, Logger: testkit.Logger(t), OnEvent: func(e Event) {
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
	guest.supervisor.snapshot().signaling.Close() // the guest's Wi-Fi blinks; its socket is gone
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
	tail := hostOut.P[len(hostOut.P)-3*audio.SampleRate/2:]
	if g := testkit.Tone(tail, 660); g < 0.15 {
		t.Errorf("host hears the guest at %.3f at the end, want ≥ 0.15", g)
	}
}
