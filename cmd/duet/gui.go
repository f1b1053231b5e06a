package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/assets"
	"github.com/duetapp/duet/audio/device"
	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/ui"
)

// runGUI opens Duet's window and returns when it is closed.
func runGUI(ctx context.Context, stderr io.Writer, verbose bool) error {
	a := fyneapp.NewWithID("app.duet.Duet")
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon()))
	w := a.NewWindow("Duet")
	w.Resize(fyne.NewSize(520, 600))
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
// starts one inside the app (port 3838, for a duet on the local network);
// the guest then needs the host's address in its settings ("server").
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
	if cfg.Server == "" {
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
	return s, nil
}

func (b *guiBackend) Join(ctx context.Context, code signal.Code, onEvent func(app.Event)) (ui.Session, error) {
	cfg, err := b.config(onEvent)
	if err != nil {
		return nil, err
	}
	if cfg.Server == "" {
		cfg.Server = "http://localhost" + rendezvous.DefaultListen
	}
	s, err := app.Join(ctx, cfg, code)
	if err != nil {
		cfg.Device.Close()
		return nil, err
	}
	return s, nil
}

// embeddedServer starts the in-app rendezvous server once and returns its
// URL.
func (b *guiBackend) embeddedServer() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.embedded == nil {
		ln, err := net.Listen("tcp", rendezvous.DefaultListen)
		if err != nil {
			return "", fmt.Errorf("cannot start the built-in rendezvous server on port 3838 (%v): set a server in the settings", err)
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
