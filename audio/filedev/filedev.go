// Package filedev is an audio.Device without a sound card: it reads its
// "microphone" from an audio.Reader (a WAV file, a tone) and writes what
// would be played to a Sink (a WAV file, or nothing), one block at a time,
// paced by the system clock at real time, or as fast as possible for
// benchmarks.
//
// The device's timeline is ideal: block i is captured and played at
// Started() + i × block duration, with no buffering latency, so latencies
// measured through it are the software's own. The device owns its input and
// output and closes the output (finishing a WAV file) on Close.
package filedev

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/duetapp/duet/audio"
)

// DefaultBlock is the default block size in samples (2.67 ms).
const DefaultBlock = 128

// Sink takes what the device plays.
type Sink interface {
	Write(p []float32) error
	Close() error
}

// Config describes a file device.
type Config struct {
	// Input is the microphone; nil is silence forever. When it returns
	// io.EOF the device plays out that last block and stops.
	Input audio.Reader
	// Output receives every played block; nil discards them.
	Output Sink
	// Block is the block size in samples; 0 means DefaultBlock.
	Block int
	// Fast runs blocks back to back instead of at real time.
	Fast bool
	// PPM makes the device's clock run that many millionths fast (or
	// slow, below 0) against the system's: a sound card's crystal.
	PPM float64
}

// Device is a paced file device. See the package doc.
type Device struct {
	cfg Config

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	started   time.Time
	blocks    int64
	err       error // set before done closes
	closeErr  error
}

// New returns a device that does nothing until Start.
func New(cfg Config) *Device {
	if cfg.Input == nil {
		cfg.Input = audio.Silence{}
	}
	if cfg.Block <= 0 {
		cfg.Block = DefaultBlock
	}
	return &Device{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
}

// Start begins calling process from the device's own goroutine.
func (d *Device) Start(process audio.ProcessFunc) error {
	err := errors.New("filedev: already started")
	d.startOnce.Do(func() {
		err = nil
		d.started = time.Now()
		go d.run(process)
	})
	return err
}

// Started returns when block 0 was due: sample n of input and output
// belongs to Started() + n / (48 kHz × (1 + PPM/10⁶)). Valid after Start.
func (d *Device) Started() time.Time { return d.started }

// Done is closed when the device has stopped.
func (d *Device) Done() <-chan struct{} { return d.done }

// Err says why the device stopped by itself (an input or output error); nil
// when the input ended or Close stopped it. Valid after Done is closed.
func (d *Device) Err() error {
	select {
	case <-d.done:
		return d.err
	default:
		return nil
	}
}

// Samples returns how many samples per channel the device has processed.
// Valid after Done is closed.
func (d *Device) Samples() int64 { return d.blocks * int64(d.cfg.Block) }

// Close stops the device, waits for its goroutine and closes the output.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		d.startOnce.Do(func() { close(d.done) }) // never started
		<-d.done
		if d.cfg.Output != nil {
			d.closeErr = d.cfg.Output.Close()
		}
	})
	return d.closeErr
}

// CatchesUp is true: the device runs every block it owes, late or not
// (audio.CatchUp).
func (d *Device) CatchesUp() bool { return true }

func (d *Device) run(process audio.ProcessFunc) {
	defer close(d.done)
	in := make([]float32, d.cfg.Block)
	out := make([]float32, d.cfg.Block)
	blockDur := audio.Duration(d.cfg.Block)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if !d.cfg.Fast {
			next := d.started.Add(time.Duration(float64(d.blocks) * float64(blockDur) / (1 + d.cfg.PPM*1e-6)))
			timer.Reset(time.Until(next))
			select {
			case <-d.stop:
				return
			case <-timer.C:
			}
		} else {
			select {
			case <-d.stop:
				return
			default:
			}
		}
		n, rerr := audio.ReadFull(d.cfg.Input, in)
		clear(in[n:])
		process(in, out)
		d.blocks++
		if d.cfg.Output != nil {
			if err := d.cfg.Output.Write(out); err != nil {
				d.err = fmt.Errorf("filedev: output: %w", err)
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				d.err = fmt.Errorf("filedev: input: %w", rerr)
			}
			return
		}
	}
}
