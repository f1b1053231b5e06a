package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio/calibrate"
	"github.com/duetapp/duet/audio/device"
)

func runDevices(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("devices", "devices", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, err := device.Init()
	if err != nil {
		return err
	}
	defer sys.Close()
	infos, err := sys.Devices()
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintln(stdout, "No audio devices found.")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "#\tname\thost API\tin\tout\tlatency in (low/high)\tlatency out (low/high)\trate\tdefault")
	for _, d := range infos {
		def := ""
		switch {
		case d.DefaultInput && d.DefaultOutput:
			def = "input, output"
		case d.DefaultInput:
			def = "input"
		case d.DefaultOutput:
			def = "output"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%.1f / %.1f ms\t%.1f / %.1f ms\t%.0f Hz\t%s\n",
			d.Index, d.Name, d.HostAPI, d.Inputs, d.Outputs,
			ms(d.LowInputLatency), ms(d.HighInputLatency), ms(d.LowOutputLatency), ms(d.HighOutputLatency),
			d.SampleRate, def)
	}
	return w.Flush()
}

// deviceFlags choose a real audio device; their defaults come from the
// settings.
type deviceFlags struct {
	input, output string
	buffer        int
}

func (f *deviceFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
}, s app.Settings) {
	buffer := s.Buffer
	if buffer == 0 {
		buffer = device.DefaultBuffer
	}
	fs.StringVar(&f.input, "input-device", s.InputDevice, "input `device` by number or name (duet devices lists them; default: the system's)")
	fs.StringVar(&f.output, "output-device", s.OutputDevice, "output `device` by number or name (default: the system's)")
	fs.IntVar(&f.buffer, "buffer", buffer, "device buffer in `frames`: 64, 128 or 256")
}

func (f *deviceFlags) config() device.Config {
	return device.Config{Input: f.input, Output: f.output, Buffer: f.buffer}
}

// loadSettings reads the user's settings; a damaged file is reported and
// ignored rather than stopping the singer.
func loadSettings(stderr io.Writer) (app.Settings, string) {
	path, err := app.SettingsPath()
	if err != nil {
		fmt.Fprintln(stderr, "duet:", err)
		return app.Settings{}, ""
	}
	s, err := app.LoadSettings(path)
	if err != nil {
		fmt.Fprintln(stderr, "duet:", err)
	}
	return s, path
}

func runCalibrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	settings, path := loadSettings(stderr)
	fs := newFlagSet("calibrate", "calibrate [flags]", stderr)
	var df deviceFlags
	df.register(fs, settings)
	settingsPath := fs.String("settings", path, "settings `file` to save the result in")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sys, err := device.Init()
	if err != nil {
		return err
	}
	defer sys.Close()
	st, err := sys.Open(df.config())
	if err != nil {
		return err
	}
	stats := st.Stats()
	fmt.Fprintf(stdout, "Measuring the round trip of %q → %q at %d frames.\n", stats.Output.Name, stats.Input.Name, stats.Buffer)
	fmt.Fprintln(stdout, "Connect the output to the input with a cable, or hold the microphone to the speaker, and keep quiet.")
	res, err := calibrate.Run(ctx, st, func(done float64) {
		fmt.Fprintf(stdout, "\r  %3.0f %%", 100*done)
	})
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Round trip %.2f ms (confidence %.2f); PortAudio's own estimate was %.2f ms.\n",
		ms(res.RoundTrip), res.Confidence, ms(stats.ReportedInput+stats.ReportedOutput))
	if err := res.Check(); err != nil {
		return err
	}
	settings.InputDevice, settings.OutputDevice, settings.Buffer = df.input, df.output, df.buffer
	c := calibration(df.input, df.output, df.buffer, res)
	settings.Calibration = &c
	if *settingsPath == "" {
		return nil
	}
	if err := settings.Save(*settingsPath); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Saved in %s.\n", *settingsPath)
	return nil
}

// calibration is what the settings keep of a measured round trip: it holds
// for these devices at this buffer.
func calibration(input, output string, buffer int, res calibrate.Result) app.Calibration {
	return app.Calibration{
		InputDevice: input, OutputDevice: output, Buffer: buffer,
		RoundTrip: res.RoundTrip, Confidence: res.Confidence, Measured: time.Now().UTC(),
	}
}
