package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
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
	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/lan"
	"github.com/duetapp/duet/net/ntpcheck"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/ui"
)

// fyneExitGrace is how long a closed window waits for Fyne to return.
const fyneExitGrace = 3 * time.Second

// runGUI opens Duet's window and returns when it is closed. listen is
// the built-in rendezvous server's address (lan.Config.Listen).
func runGUI(ctx context.Context, stderr io.Writer, verbose bool, listen string) error {
	a := fyneapp.NewWithID("app.duet.Duet")
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon()))
	w := a.NewWindow("Duet")
	w.Resize(fyne.NewSize(560, 720))
	log := newLogger(stderr, verbose)
	lanCfg := lan.Config{Listen: listen, Logger: log}
	b := &guiBackend{log: log, stderr: stderr, lan: lanCfg, builtin: lan.NewServer(lanCfg)}
	defer b.close()
	u := ui.New(w, b)
	var shut, closingOnce sync.Once
	shutDown := func() { shut.Do(func() { u.Close(); b.close() }) } // Duet's own parts
	closing := make(chan struct{})                                  // the window closed
	w.SetOnClosed(func() {
		shutDown()
		closingOnce.Do(func() { close(closing) })
	})
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-returned:
			return
		case <-ctx.Done():
			// Ctrl-C in the terminal closes the window too. Fyne also
			// quits on the signal by itself, without closing the window.
			// Not waited for: a Fyne that has quit may never run it.
			go fyne.Do(w.Close)
		case <-closing:
		}
		// Fyne 2.7.1 can hang for ever once it quits: its shutdown drains
		// the main thread's queue and then closes it, and a lifecycle
		// callback queued in between is never run (about 1 close in 10
		// under load). After a grace Duet leaves without waiting for Fyne
		// (a take in progress is on disk to its last quarter second).
		select {
		case <-returned:
		case <-time.After(fyneExitGrace):
			log.Warn("the window toolkit did not finish closing; exiting without it")
			os.Exit(0)
		}
	}()
	w.ShowAndRun()
	return nil
}

// guiBackend starts sessions for the window on the real audio device, with
// the remembered settings. Without a configured rendezvous server, hosting
// starts the one built into the app (net/lan) and announces it on the
// local network while the host's session runs; a guest without a
// configured server looks for one there, then on this computer.
type guiBackend struct {
	log     *slog.Logger
	stderr  io.Writer
	lan     lan.Config
	builtin *lan.Server
	device  realDevice
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
	builtin := cfg.Server == ""
	if builtin {
		if cfg.Server, err = b.builtin.Start(); err != nil {
			cfg.Device.Close()
			return nil, err
		}
	}
	s, err := app.Host(ctx, cfg)
	if err != nil {
		cfg.Device.Close()
		return nil, err
	}
	hosted := &hostedSession{Session: s}
	hosted.link, hosted.linkErr = browserLink(cfg.Server, builtin, s.Code())
	if !builtin {
		return hosted, nil
	}
	// Only while this session hosts on the built-in server does the app
	// say so on the network.
	if hosted.ad, err = b.builtin.Announce(); err != nil {
		b.log.Warn("cannot announce the room on the local network; the guest can set this computer as server", "err", err)
	}
	return hosted, nil
}

// hostedSession is a host's session with the link a partner without Duet
// opens in a browser (ui.BrowserLinker) and, on the built-in server, its
// announcement on the local network until Run returns.
type hostedSession struct {
	*app.Session
	link    string
	linkErr error
	ad      *discover.Advertiser // nil: not announced
}

func (s *hostedSession) Run(ctx context.Context) error {
	if s.ad != nil {
		defer s.ad.Close()
	}
	return s.Session.Run(ctx)
}

func (s *hostedSession) BrowserLink() (string, error) { return s.link, s.linkErr }

// errBrowserNeedsHTTPS says why a plain-HTTP server gives no browser link:
// browsers give the microphone only to secure pages.
var errBrowserNeedsHTTPS = errors.New("a partner in a browser needs an HTTPS rendezvous server for the microphone; set one in the settings")

// browserLink is the guest page's link to the room code on server, if a
// browser on another computer can sing from it: the server speaks HTTPS,
// or runs on this computer (a browser here, as in the tests).
func browserLink(server string, builtin bool, code signal.Code) (string, error) {
	if builtin {
		return "", errBrowserNeedsHTTPS
	}
	link, err := guestpage.Link(server, code)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", err
	}
	if u.Scheme == "https" {
		return link, nil
	}
	if ip, err := netip.ParseAddr(u.Hostname()); (err == nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
		return link, nil
	}
	return "", errBrowserNeedsHTTPS
}

func (b *guiBackend) Join(ctx context.Context, code signal.Code, onEvent func(app.Event)) (ui.Session, error) {
	cfg, err := b.config(onEvent)
	if err != nil {
		return nil, err
	}
	servers := []lan.Candidate{{URL: cfg.Server}}
	looked := cfg.Server == ""
	if looked {
		servers = lan.Look(ctx, b.lan)
	}
	for _, server := range servers {
		cfg.Server, cfg.OnEvent = server.URL, onEvent
		if server.Announced {
			cfg.OnEvent = warnLAN(onEvent)
		}
		var s *app.Session
		if s, err = app.Join(ctx, cfg, code); err == nil {
			return s, nil
		}
		b.log.Info("could not join", "server", server.URL, "err", err)
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

func (b *guiBackend) close() {
	b.builtin.Close()
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
	b.log.Debug("checking the microphone", "input", s.InputDevice, "output", s.OutputDevice)
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
