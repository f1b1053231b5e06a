package device

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gordonklaus/portaudio"

	"github.com/duetapp/duet/audio"
)

// DefaultBuffer is the block size in frames when none is chosen: 2.67 ms.
const DefaultBuffer = 128

// Config chooses the devices and block size of a Stream.
type Config struct {
	// Input and Output name a device by number or part of its name; ""
	// is the system default.
	Input, Output string
	// Buffer is the block size in frames: 64, 128 or 256; 0 means
	// DefaultBuffer.
	Buffer int
	// Separate opens input and output as two streams even on one device,
	// joined by the drift bridge as for two devices (for tests: one JACK
	// server is the only device CI has).
	Separate bool
}

// Stream is an open duplex stream; see the package doc.
type Stream struct {
	sys      *System
	pa       *portaudio.Stream // the duplex stream, or the output stream
	paIn     *portaudio.Stream // the input stream, when split
	bridge   *bridge           // carries input into the output's clock, when split
	in, out  Info
	buffer   int
	process  audio.ProcessFunc
	mono     []float32 // output block before it is copied to every channel
	inBlock  []float32 // input block out of the bridge, when split
	reported portaudio.StreamInfo

	callbacks   atomic.Int64 // output (or duplex) callbacks
	inCallbacks atomic.Int64 // input callbacks, when split
	abandoned   atomic.Bool  // left open after it was lost: callbacks do nothing
	xruns       atomic.Int64
	inLatency   atomic.Int64 // ns, input ADC time to callback, as last reported
	outLatency  atomic.Int64 // ns, callback to output DAC time

	startOnce sync.Once
	closeOnce sync.Once
	doneOnce  sync.Once
	done      chan struct{}
	stop      chan struct{} // closed by Close: stops the watchdog
	wg        sync.WaitGroup
	lost      atomic.Bool
	closeErr  error
}

// Open opens a stream on the configured devices; Start starts it.
func (s *System) Open(cfg Config) (*Stream, error) {
	switch cfg.Buffer {
	case 0:
		cfg.Buffer = DefaultBuffer
	case 64, 128, 256:
	default:
		return nil, fmt.Errorf("%w: a buffer of %d frames; choose 64, 128 or 256", ErrUnsupported, cfg.Buffer)
	}
	infos, err := s.Devices()
	if err != nil {
		return nil, err
	}
	in, err := find(infos, cfg.Input, true)
	if err != nil {
		return nil, err
	}
	out, err := find(infos, cfg.Output, false)
	if err != nil {
		return nil, err
	}
	devs, err := portaudio.Devices()
	if err != nil {
		return nil, fmt.Errorf("device: list: %w", err)
	}
	inDev, outDev := devs[in.Index], devs[out.Index]
	st := &Stream{sys: s, in: in, out: out, buffer: cfg.Buffer, done: make(chan struct{}), stop: make(chan struct{}), mono: make([]float32, cfg.Buffer)}
	inParams := portaudio.StreamDeviceParameters{Device: inDev, Channels: 1, Latency: inDev.DefaultLowInputLatency}
	outParams := portaudio.StreamDeviceParameters{Device: outDev, Channels: min(2, out.Outputs), Latency: outDev.DefaultLowOutputLatency}
	params := func(in, out portaudio.StreamDeviceParameters) portaudio.StreamParameters {
		return portaudio.StreamParameters{
			Input: in, Output: out,
			SampleRate:      audio.SampleRate,
			FramesPerBuffer: cfg.Buffer,
			Flags:           portaudio.ClipOff | portaudio.DitherOff,
		}
	}
	if in.Index == out.Index && !cfg.Separate {
		st.pa, err = portaudio.OpenStream(params(inParams, outParams), st.callback)
		if err != nil {
			return nil, explain(err, in.Name)
		}
	} else {
		// Two clocks: the input joins the output's through the bridge.
		if st.bridge, err = newBridge(cfg.Buffer, cfg.Buffer); err != nil {
			return nil, err
		}
		st.inBlock = make([]float32, cfg.Buffer)
		st.paIn, err = portaudio.OpenStream(params(inParams, portaudio.StreamDeviceParameters{}), st.inputCallback)
		if err != nil {
			st.bridge.close()
			return nil, explain(err, in.Name)
		}
		st.pa, err = portaudio.OpenStream(params(portaudio.StreamDeviceParameters{}, outParams), st.outputCallback)
		if err != nil {
			st.paIn.Close()
			st.bridge.close()
			return nil, explain(err, out.Name)
		}
	}
	if info := st.pa.Info(); info != nil {
		st.reported = *info
	}
	if st.paIn != nil {
		if info := st.paIn.Info(); info != nil {
			st.reported.InputLatency = info.InputLatency
		}
	}
	return st, nil
}

// explain turns a PortAudio error into one that says what to do.
func explain(err error, name string) error {
	var pe portaudio.Error
	if errors.As(err, &pe) {
		switch pe {
		case portaudio.DeviceUnavailable:
			return fmt.Errorf("%w: %q is in use by another program; close it or pick another device", ErrBusy, name)
		case portaudio.InvalidSampleRate:
			return fmt.Errorf("%w: %q cannot run at %d Hz; set it to %d Hz in the system's sound settings or pick another device", ErrUnsupported, name, audio.SampleRate, audio.SampleRate)
		case portaudio.InvalidChannelCount, portaudio.BadIODeviceCombination, portaudio.SampleFormatNotSupported:
			return fmt.Errorf("%w: %q: %v; pick another device", ErrUnsupported, name, err)
		case portaudio.BufferTooSmall, portaudio.BufferTooBig:
			return fmt.Errorf("%w: %q: %v; try another --buffer", ErrUnsupported, name, err)
		}
	}
	return fmt.Errorf("device: open %q: %w", name, err)
}

// callback is PortAudio's: non-interleaved buffers, so in[0] is the mono
// input and out[c] each output channel.
func (st *Stream) callback(in, out [][]float32, ti portaudio.StreamCallbackTimeInfo, flags portaudio.StreamCallbackFlags) {
	if st.abandoned.Load() {
		for _, ch := range out {
			clear(ch)
		}
		return
	}
	st.callbacks.Add(1)
	if flags&(portaudio.InputUnderflow|portaudio.InputOverflow|portaudio.OutputUnderflow|portaudio.OutputOverflow) != 0 {
		st.xruns.Add(1)
	}
	if ti.CurrentTime > 0 {
		st.inLatency.Store(int64(ti.CurrentTime - ti.InputBufferAdcTime))
		st.outLatency.Store(int64(ti.OutputBufferDacTime - ti.CurrentTime))
	}
	mono := st.mono[:len(out[0])]
	st.process(in[0], mono)
	for _, ch := range out {
		copy(ch, mono)
	}
}

// inputCallback is the input stream's, when split: into the bridge.
func (st *Stream) inputCallback(in [][]float32, _ portaudio.StreamCallbackTimeInfo, flags portaudio.StreamCallbackFlags) {
	if st.abandoned.Load() {
		return
	}
	st.inCallbacks.Add(1)
	if flags&(portaudio.InputUnderflow|portaudio.InputOverflow) != 0 {
		st.xruns.Add(1)
	}
	st.bridge.write(in[0])
}

// outputCallback is the output stream's, when split: the input comes out
// of the bridge in this clock.
func (st *Stream) outputCallback(out [][]float32, ti portaudio.StreamCallbackTimeInfo, flags portaudio.StreamCallbackFlags) {
	if st.abandoned.Load() {
		for _, ch := range out {
			clear(ch)
		}
		return
	}
	st.callbacks.Add(1)
	if flags&(portaudio.OutputUnderflow|portaudio.OutputOverflow) != 0 {
		st.xruns.Add(1)
	}
	if ti.CurrentTime > 0 {
		st.outLatency.Store(int64(ti.OutputBufferDacTime - ti.CurrentTime))
	}
	in := st.inBlock[:len(out[0])]
	st.bridge.read(in)
	mono := st.mono[:len(out[0])]
	st.process(in, mono)
	for _, ch := range out {
		copy(ch, mono)
	}
}

// Start begins calling process from PortAudio's audio thread, and a
// watchdog that notices when the callbacks stop.
func (st *Stream) Start(process audio.ProcessFunc) error {
	err := errors.New("device: already started")
	st.startOnce.Do(func() {
		st.process = process
		if st.paIn != nil {
			if err = st.paIn.Start(); err != nil {
				err = explain(err, st.in.Name)
				return
			}
		}
		if err = st.pa.Start(); err != nil {
			err = explain(err, st.out.Name)
			return
		}
		// Split streams are lost when either side stops.
		count := st.callbacks.Load
		if st.paIn != nil {
			count = func() int64 { return min(st.callbacks.Load(), st.inCallbacks.Load()) }
		}
		st.wg.Go(func() {
			if watch(count, st.stop, watchPeriod, stallLimit) {
				st.lost.Store(true)
				st.doneOnce.Do(func() { close(st.done) })
			}
		})
	})
	return err
}

// How often the watchdog looks, and how long callbacks may pause before
// the device counts as lost (a USB device unplugged, a sound server gone).
const (
	watchPeriod = 100 * time.Millisecond
	stallLimit  = time.Second
)

// watch returns true when count stops rising for limit, false when stop
// closes first.
func watch(count func() int64, stop <-chan struct{}, period, limit time.Duration) bool {
	tick := time.NewTicker(period)
	defer tick.Stop()
	last, still := count(), time.Duration(0)
	for {
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
		if n := count(); n != last {
			last, still = n, 0
			continue
		}
		if still += period; still >= limit {
			return true
		}
	}
}

// Done is closed when the stream is closed, or lost.
func (st *Stream) Done() <-chan struct{} { return st.done }

// Err is ErrLost when the device stopped delivering audio by itself; nil
// otherwise.
func (st *Stream) Err() error {
	if st.lost.Load() {
		return fmt.Errorf("%w: %q", ErrLost, st.in.Name)
	}
	return nil
}

// Close stops and closes the stream; safe to call twice. A lost stream may
// be left open instead (see System.Abandoned).
func (st *Stream) Close() error {
	st.closeOnce.Do(func() {
		st.startOnce.Do(func() {}) // never started: nothing to stop
		close(st.stop)
		st.wg.Wait()
		st.doneOnce.Do(func() { close(st.done) })
		if !st.lost.Load() {
			st.closeErr = st.closePA()
			return
		}
		// Its device is gone, and PortAudio may wait forever closing it
		// (it does when the JACK server dies): give it a moment, then
		// leave it. That goroutine then belongs to PortAudio: nothing can
		// stop a C call.
		closed := make(chan error, 1)
		go func() { closed <- st.closePA() }()
		select {
		case st.closeErr = <-closed:
		case <-time.After(abandonAfter):
			st.abandoned.Store(true)
			st.sys.abandoned.Add(1)
		}
	})
	return st.closeErr
}

// abandonAfter is how long Close waits for PortAudio to close a lost stream.
const abandonAfter = 2 * time.Second

func (st *Stream) closePA() error {
	err := st.pa.Close()
	if st.paIn != nil {
		err = errors.Join(err, st.paIn.Close())
		st.bridge.close()
	}
	return err
}

// Stats are a stream's figures.
type Stats struct {
	Input, Output Info
	Buffer        int // frames per block
	Callbacks     int64
	Xruns         int64 // blocks flagged as overflowed or underflowed
	// ReportedInput and ReportedOutput are PortAudio's latency figures
	// for the open stream; CallbackInput and CallbackOutput what the last
	// callback's timestamps said (zero where the host API gives none).
	ReportedInput, ReportedOutput time.Duration
	CallbackInput, CallbackOutput time.Duration
	// Split reports two streams joined by the drift bridge; then Bridge
	// is the latency it adds, DriftPPM its current correction and
	// BridgeXruns how often it ran dry or overflowed.
	Split       bool
	Bridge      time.Duration
	DriftPPM    int64
	BridgeXruns int64
}

// Stats returns the stream's figures now. Safe from any goroutine.
func (st *Stream) Stats() Stats {
	s := Stats{
		Input:          st.in,
		Output:         st.out,
		Buffer:         st.buffer,
		Callbacks:      st.callbacks.Load(),
		Xruns:          st.xruns.Load(),
		ReportedInput:  st.reported.InputLatency,
		ReportedOutput: st.reported.OutputLatency,
		CallbackInput:  time.Duration(st.inLatency.Load()),
		CallbackOutput: time.Duration(st.outLatency.Load()),
	}
	if b := st.bridge; b != nil {
		s.Split = true
		s.Bridge = b.latency()
		s.DriftPPM = b.ratioMicro.Load()
		s.BridgeXruns = b.underruns.Load() + b.overruns.Load()
	}
	return s
}
