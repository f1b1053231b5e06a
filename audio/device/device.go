// Package device is Duet's real audio I/O, through PortAudio
// (github.com/gordonklaus/portaudio); it is the only package that touches
// PortAudio.
//
// A Stream is an audio.Device: mono input (the first channel of the chosen
// input), output duplicated to every channel of the chosen output (two at
// most, for headphones), at 48 kHz in blocks of a fixed size (64, 128 or
// 256 frames). Input and output on the same device run as one duplex stream,
// on one clock. On different devices (a USB microphone, built-in
// headphones) they run as two streams, and the input is resampled into the
// output's clock by a drift-tracking bridge (audio/drift, audio/resample),
// which adds about 1.5 blocks of latency.
//
// The PortAudio callback runs Duet's process function directly: it neither
// blocks nor allocates nor logs on Duet's side; overflows and underflows
// (xruns) are counted, and the timing PortAudio reports is kept in atomics
// for the latency readout. Open a System once per process and close it
// last; its methods are safe for concurrent use.
package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gordonklaus/portaudio"
)

// Errors that name what to do next.
var (
	ErrNoDevice    = errors.New("no such audio device")
	ErrBusy        = errors.New("the audio device is busy")
	ErrUnsupported = errors.New("the audio device cannot do that")
	ErrLost        = errors.New("the audio device stopped: unplugged, or taken by the system")
)

// Info describes one device as PortAudio reports it.
type Info struct {
	Index             int
	Name              string
	HostAPI           string
	Inputs, Outputs   int // channels
	LowInputLatency   time.Duration
	LowOutputLatency  time.Duration
	HighInputLatency  time.Duration
	HighOutputLatency time.Duration
	SampleRate        float64 // the device's default
	DefaultInput      bool
	DefaultOutput     bool
}

// System is PortAudio, initialised.
type System struct {
	mu     sync.Mutex
	closed bool
	// abandoned counts lost streams left open: PortAudio can hang closing
	// a stream whose device or server has gone (seen with JACK), and
	// terminating PortAudio closes them too.
	abandoned atomic.Int64
}

// Abandoned reports whether a lost stream had to be left open, in which
// case Close leaves PortAudio running rather than hang on it.
func (s *System) Abandoned() bool { return s.abandoned.Load() > 0 }

// Init initialises PortAudio. On Linux it finds a JACK server only if one is
// already running.
func Init() (*System, error) {
	quietDrivers()
	if err := portaudio.Initialize(); err != nil {
		return nil, fmt.Errorf("device: cannot start PortAudio: %w", err)
	}
	return &System{}, nil
}

// Close terminates PortAudio; close every Stream first.
func (s *System) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.Abandoned() {
		return nil
	}
	return portaudio.Terminate()
}

// Devices lists every device, in PortAudio's order.
func (s *System) Devices() ([]Info, error) {
	devs, err := portaudio.Devices()
	if err != nil {
		return nil, fmt.Errorf("device: list: %w", err)
	}
	defIn, _ := portaudio.DefaultInputDevice()
	defOut, _ := portaudio.DefaultOutputDevice()
	infos := make([]Info, len(devs))
	for i, d := range devs {
		infos[i] = Info{
			Index:             d.Index,
			Name:              d.Name,
			HostAPI:           d.HostApi.Name,
			Inputs:            d.MaxInputChannels,
			Outputs:           d.MaxOutputChannels,
			LowInputLatency:   d.DefaultLowInputLatency,
			LowOutputLatency:  d.DefaultLowOutputLatency,
			HighInputLatency:  d.DefaultHighInputLatency,
			HighOutputLatency: d.DefaultHighOutputLatency,
			SampleRate:        d.DefaultSampleRate,
			DefaultInput:      defIn != nil && defIn.Index == d.Index,
			DefaultOutput:     defOut != nil && defOut.Index == d.Index,
		}
	}
	return infos, nil
}

// find picks a device by index ("3") or by a case-insensitive part of its
// name ("usb"), among those with input (or output) channels; "" is the
// default device.
func find(infos []Info, spec string, input bool) (Info, error) {
	kind := "output"
	if input {
		kind = "input"
	}
	usable := func(d Info) bool {
		if input {
			return d.Inputs > 0
		}
		return d.Outputs > 0
	}
	if spec == "" {
		for _, d := range infos {
			if usable(d) && (input && d.DefaultInput || !input && d.DefaultOutput) {
				return d, nil
			}
		}
		return Info{}, fmt.Errorf("%w: there is no default %s device; plug one in, or pick one (duet devices lists them)", ErrNoDevice, kind)
	}
	if n, err := strconv.Atoi(spec); err == nil {
		for _, d := range infos {
			if d.Index == n && usable(d) {
				return d, nil
			}
		}
		return Info{}, fmt.Errorf("%w: no %s device number %d (duet devices lists them)", ErrNoDevice, kind, n)
	}
	var matches []Info
	for _, d := range infos {
		if usable(d) && strings.Contains(strings.ToLower(d.Name), strings.ToLower(spec)) {
			if strings.EqualFold(d.Name, spec) {
				return d, nil
			}
			matches = append(matches, d)
		}
	}
	switch len(matches) {
	case 0:
		return Info{}, fmt.Errorf("%w: no %s device called %q (duet devices lists them)", ErrNoDevice, kind, spec)
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for i, d := range matches {
		names[i] = fmt.Sprintf("%d %q", d.Index, d.Name)
	}
	return Info{}, fmt.Errorf("%w: %q could be any of %s; give the number", ErrNoDevice, spec, strings.Join(names, ", "))
}
