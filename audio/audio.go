// Package audio defines Duet's sample format and the device interface that
// every backend (PortAudio, WAV file, tone) implements.
//
// Samples are float32 in [-1, 1] at SampleRate (48 kHz). Voices are mono.
// A device calls its ProcessFunc from its own clock, one block at a time;
// that callback is the audio thread: it must not block, allocate or log.
package audio

import (
	"io"
	"time"
)

// SampleRate is the one rate Duet works at, in samples per second.
const SampleRate = 48000

// Duration returns how long n samples last at SampleRate.
func Duration(n int) time.Duration {
	return time.Duration(int64(n) * int64(time.Second) / SampleRate)
}

// Samples returns how many samples d lasts at SampleRate, rounded down.
func Samples(d time.Duration) int {
	return int(int64(d) * SampleRate / int64(time.Second))
}

// ProcessFunc is a device callback: it gets one block of captured samples
// and fills out, of the same length, with what is to be played. It runs on
// the audio thread and owns neither slice after it returns.
type ProcessFunc func(in, out []float32)

// Device is a duplex mono audio device driven by its own clock.
type Device interface {
	// Start calls process for every block until Close, or until the device
	// stops by itself (its input ended or it was lost); Done then closes.
	Start(process ProcessFunc) error
	// Done is closed when the device has stopped calling process.
	Done() <-chan struct{}
	// Err says why the device stopped by itself; nil when its input simply
	// ended or Close stopped it.
	Err() error
	// Close stops the device and releases it; safe to call more than once.
	Close() error
}

// CatchUp is implemented by a device that calls process for every block
// it owes, however late: one paced by a timer, not by a sound card (a file
// device). It never goes on without a callback, so a late one is never a
// skip (BlockClock.CatchesUp).
type CatchUp interface {
	CatchesUp() bool
}

// CatchesUp reports whether d runs every block it owes (see CatchUp).
func CatchesUp(d Device) bool {
	c, ok := d.(CatchUp)
	return ok && c.CatchesUp()
}

// Reader is a source of mono samples, such as a decoded file or a tone
// generator. Read returns io.EOF after the last sample.
type Reader interface {
	Read(p []float32) (n int, err error)
}

// Silence is an endless Reader of zeros.
type Silence struct{}

// Read fills p with zeros.
func (Silence) Read(p []float32) (int, error) {
	clear(p)
	return len(p), nil
}

// ReadFull reads len(p) samples from r, or fewer and io.EOF or another error.
func ReadFull(r Reader, p []float32) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// SliceReader is a Reader over samples already in memory, such as a WAV
// file read whole.
type SliceReader struct {
	P []float32
	n int
}

// Read copies the next samples; io.EOF at the end.
func (s *SliceReader) Read(p []float32) (int, error) {
	if s.n >= len(s.P) {
		return 0, io.EOF
	}
	n := copy(p, s.P[s.n:])
	s.n += n
	return n, nil
}
