package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/assets"
	"github.com/duetapp/duet/audio/calibrate"
	"github.com/duetapp/duet/audio/device"
	"github.com/duetapp/duet/audio/meter"
	"github.com/duetapp/duet/audio/miccheck"
	"github.com/duetapp/duet/net/discover"
	"github.com/duetapp/duet/net/ntpcheck"
	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/ui"
)

// runGUI opens Duet's window and returns when it is closed.
func runGUI(ctx context.Context, stderr io.Writer, verbose bool) error {
	a := fyneapp.NewWithID("app.duet.Duet")
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon()))
	w := a.NewWindow("Duet")
	w.Resize(fyne.NewSize(560, 720))
	b := &guiBackend{log: newLogger(stderr, verbose), stderr: stderr}
	defer b.close()
	u := ui.New(w, b)
	w.SetOnClosed(u.Close)
	go func() {
		<-ctx.Done() // Ctrl-C in the terminal closes the window too
		fyne.Do(w.Close)
	}()
	w.ShowAndRun()
	return nil
}

// guiBackend starts sessions for the window on the real audio device, with
// the remembered settings. Without a configured rendezvous server, hosting
// starts one inside the app (port 3838, for a duet on the local network)
// and announces it on the network (DNS-SD, net/discover) while the host's
// session runs; a guest without a configured server looks for it there,
// then on this computer.
type guiBackend struct {
	log    *slog.Logger
	stderr io.Writer

	mu       sync.Mutex
	device   realDevice
	embedded context.CancelFunc // stops the embedded server
	served   chan struct{}
}

func (b *guiBackend) config(onEvent func(app.Event)) (app.Config, error) {
	s, _ := loadSettings(b.stderr)
	df := deviceFlags{input: s.InputDevice, output: s.OutputDevice, buffer: s.Buffer}
	b.device.cfg = df.config()
	dev, err := b.device.open()
	if err != nil {
		return app.Config{}, fmt.Errorf("%w; check the audio devices in the settings (duet devices lists them)", err)
	}
	cfg := app.Config{
		Server:  s.Server,
		Device:  dev,
		Reopen:  b.device.open,
		Monitor: 1,
		Logger:  b.log,
		OnEvent: onEvent,
		// The frame, the jitter bias and the listening mode are the
		// settings' (Speakers runs the echo canceller).
		Frame:      s.Frame,
		Codec:      codecSetting(s.Codec),
		JitterBias: s.JitterBias,
		Speakers:   s.Speakers,
		Name:       s.Name,
		NTPServer:  ntpServer(s.NTPServer),
	}
	if c := s.Calibration; c.Matches(s.InputDevice, s.OutputDevice, s.Buffer) {
		cfg.DeviceRoundTrip = c.RoundTrip
	}
	return cfg, nil
}

func (b *guiBackend) Host(ctx context.Context, onEvent func(app.Event)) (ui.Session, error) {
	cfg, err := b.config(onEvent)
	if err != nil {
		return nil, err
	}
	embedded := cfg.Server == ""
	if embedded {
		if cfg.Server, err = b.embeddedServer(); err != nil {
			cfg.Device.Close()
			return nil, err
		}
	}
	s, err := app.Host(ctx, cfg)
	if err != nil {
		cfg.Device.Close()
		return nil, err
	}
	if !embedded {
		return s, nil
	}
	// Only while this session hosts on the built-in server does the app
	// say so on the network.
	ad, err := discover.Advertise(discover.Config{Port: embeddedPort, Logger: b.log})
	if err != nil {
		b.log.Warn("cannot announce the room on the local network; the guest can set this computer as server", "err", err)
		return s, nil
	}
	return &advertisedSession{Session: s, ad: ad}, nil
}

// embeddedPort is the built-in rendezvous server's port.
const embeddedPort = 3838

// advertisedSession is a host's session announced on the local network
// until its Run returns.
type advertisedSession struct {
	*app.Session
	ad *discover.Advertiser
}

func (s *advertisedSession) Run(ctx context.Context) error {
	defer s.ad.Close()
	return s.Session.Run(ctx)
}

func (b *guiBackend) Join(ctx context.Context, code signal.Code, onEvent func(app.Event)) (ui.Session, error) {
	cfg, err := b.config(onEvent)
	if err != nil {
		return nil, err
	}
	servers, looked := []string{cfg.Server}, cfg.Server == ""
	if looked {
		servers = b.lookAround(ctx)
	}
	for _, server := range servers {
		cfg.Server = server
		cfg.OnEvent = onEvent
		if looked && server != localServer {
			cfg.OnEvent = warnLAN(onEvent)
		}
		var s *app.Session
		if s, err = app.Join(ctx, cfg, code); err == nil {
			return s, nil
		}
		b.log.Info("could not join", "server", server, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	cfg.Device.Close()
	if looked && len(servers) == 1 {
		return nil, fmt.Errorf("%w (%v)", discover.ErrNotFound, err)
	}
	return nil, err
}

// lanWarning ends the first "connected" news of a guest who found the
// room's server on the local network: anyone there can announce one and
// so learn the room code, and only the safety code shows whether it sits
// in the middle.
const lanWarning = " You found this room's server on your local network, where anyone can announce one:" +
	" compare the safety code aloud; the same code on both screens proves nobody listens in." +
	" A server set in the settings is safer."

// warnLAN returns onEvent with lanWarning added to the first event that
// says the partner is connected.
func warnLAN(onEvent func(app.Event)) func(app.Event) {
	warned := false
	return func(e app.Event) {
		if e.State == app.StateConnected && !warned {
			warned = true
			e.Text += lanWarning
		}
		if onEvent != nil {
			onEvent(e)
		}
	}
}

// localServer is the built-in server of a host on this computer.
const localServer = "http://localhost" + rendezvous.DefaultListen

// lookAround lists the rendezvous servers a guest without a configured
// one tries: those announced on the local network, then this computer's.
func (b *guiBackend) lookAround(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	found, err := discover.Browse(ctx, discover.Config{Logger: b.log})
	if err != nil {
		b.log.Info("no rendezvous server announced on the local network", "err", err)
	}
	var servers []string
	for _, f := range found {
		b.log.Info("found a rendezvous server on the local network", "name", f.Instance, "url", f.URL)
		servers = append(servers, f.URL)
	}
	return append(servers, localServer)
}

// embeddedServer starts the in-app rendezvous server once and returns its
// URL.
func (b *guiBackend) embeddedServer() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.embedded == nil {
		ln, err := net.Listen("tcp", rendezvous.DefaultListen)
		if err != nil {
			return "", fmt.Errorf("cannot start the built-in rendezvous server on port %d (%v): set a server in the settings", embeddedPort, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		b.embedded, b.served = cancel, make(chan struct{})
		served := b.served
		go func() {
			defer close(served)
			if err := signal.Serve(ctx, ln, signal.NewServer(signal.ServerConfig{Logger: b.log}), nil); err != nil && !errors.Is(err, context.Canceled) {
				b.log.Error("built-in rendezvous server stopped", "err", err)
			}
			b.mu.Lock()
			if b.served == served { // stopped by itself: start afresh next time
				b.embedded, b.served = nil, nil
			}
			b.mu.Unlock()
		}()
	}
	return "http://localhost" + rendezvous.DefaultListen, nil
}

func (b *guiBackend) close() {
	b.mu.Lock()
	stop, served := b.embedded, b.served
	b.embedded, b.served = nil, nil
	b.mu.Unlock()
	if stop != nil {
		stop()
		<-served
	}
	b.device.close()
}

func (b *guiBackend) Settings() app.Settings {
	s, _ := loadSettings(b.stderr)
	return s
}

func (b *guiBackend) SaveSettings(s app.Settings) error {
	path, err := app.SettingsPath()
	if err != nil {
		return err
	}
	return s.Save(path)
}

func (b *guiBackend) Devices() (inputs, outputs []string, err error) {
	sys, err := device.Init()
	if err != nil {
		return nil, nil, err
	}
	defer sys.Close()
	infos, err := sys.Devices()
	if err != nil {
		return nil, nil, err
	}
	for _, d := range infos {
		if d.Inputs > 0 {
			inputs = append(inputs, d.Name)
		}
		if d.Outputs > 0 {
			outputs = append(outputs, d.Name)
		}
	}
	return inputs, outputs, nil
}

// MicCheck opens the devices s names and reports the input's level until
// ctx ends; it plays silence.
func (b *guiBackend) MicCheck(ctx context.Context, s app.Settings, level func(meter.Level)) error {
	rd := &realDevice{cfg: device.Config{Input: s.InputDevice, Output: s.OutputDevice, Buffer: s.Buffer}}
	defer rd.close()
	dev, err := rd.open()
	if err != nil {
		return fmt.Errorf("%w; choose another microphone", err)
	}
	return miccheck.Run(ctx, dev, miccheck.DefaultEvery, level)
}

// Calibrate measures the round trip of the devices s names, as duet
// calibrate does.
func (b *guiBackend) Calibrate(ctx context.Context, s app.Settings, progress func(float64)) (app.Calibration, error) {
	rd := &realDevice{cfg: device.Config{Input: s.InputDevice, Output: s.OutputDevice, Buffer: s.Buffer}}
	defer rd.close()
	dev, err := rd.open()
	if err != nil {
		return app.Calibration{}, err
	}
	res, err := calibrate.Run(ctx, dev, progress)
	if ctx.Err() != nil {
		return app.Calibration{}, ctx.Err()
	}
	if err == nil {
		err = res.Check()
	}
	if err != nil { // the window shows a sentence, not the package's name
		return app.Calibration{}, errors.New(strings.TrimPrefix(err.Error(), "calibrate: "))
	}
	return calibration(s.InputDevice, s.OutputDevice, s.Buffer, res), nil
}

// ntpServer maps the settings' NTP server to the session's: empty means
// the public pool, "off" none.
func ntpServer(setting string) string {
	switch setting {
	case "":
		return ntpcheck.DefaultServer
	case ntpcheck.Off:
		return ""
	}
	return setting
}
