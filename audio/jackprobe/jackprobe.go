// Package jackprobe measures programs through a JACK server the way a
// listener hears them: one JACK client plays signals into their input
// ports and another records their output ports, both on the server's
// frame clock. Sample k of every signal goes out in the cycle that holds
// frame Start+k, and recording k holds what arrived in the cycle of frame
// Start+k, so a signal found at index k+d of a recording came through d
// frames (samples at the server's rate) later, port to port.
//
// Two clients, not one: a client that both feeds a program and records it
// closes a cycle in the JACK graph, and JACK breaks the cycle by delaying
// one edge by a period.
//
// The process callbacks are C, in JACK's real-time threads: they copy
// between JACK's buffers and memory allocated by Open, never block and
// never allocate. A cycle the probe missed (an xrun) leaves NaN in what it
// played and recorded, so it is never mistaken for silence. A Probe
// belongs to one goroutine; Done may be waited on from any.
//
// The package also starts a JACK server with the dummy driver (no sound
// card needed) for labs and tests: StartDummy.
package jackprobe

// #cgo pkg-config: jack
// #include <errno.h>
// #include <stdlib.h>
// #include "probe.h"
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"
	"unsafe"
)

var (
	// ErrNoServer reports that no JACK server of the asked name runs.
	ErrNoServer = errors.New("jackprobe: no JACK server")
	// ErrPort reports a port that does not exist or a connection JACK
	// refused.
	ErrPort = errors.New("jackprobe: port")
)

// Config says what a Probe plays and records.
type Config struct {
	// Name prefixes the two clients' names: NAME-play (ports out_0, …)
	// and NAME-rec (ports in_0, …). Neither may be in use.
	Name string
	// Server is the JACK server's name; "" is the default one (or
	// $JACK_DEFAULT_SERVER).
	Server string
	// Length is how many samples are played and recorded per port.
	Length int
	// Play holds one signal per output port, at most Length samples each
	// (shorter ones are followed by silence).
	Play [][]float32
	// Record is the number of input ports.
	Record int
}

// Recording is what a probe played and recorded, index 0 at its start
// frame. NaN marks samples of cycles the probe missed.
type Recording struct {
	Played   [][]float32
	Recorded [][]float32
	// Xruns counts the server's xruns while the probe ran; XrunAt holds
	// when (frames from the start, negative before it) for the first few
	// thousand.
	Xruns  int
	XrunAt []int
}

// Probe is the pair of JACK clients.
type Probe struct {
	c      *C.probe
	length int
	done   chan struct{}
	pipeR  *os.File
	pipeW  *os.File
	wg     sync.WaitGroup
	once   sync.Once
	rec    Recording
}

// Open connects the two clients to the server and registers their ports;
// nothing plays until Start.
func Open(cfg Config) (*Probe, error) {
	if cfg.Length <= 0 || cfg.Length > math.MaxInt32 {
		return nil, fmt.Errorf("jackprobe: length %d samples", cfg.Length)
	}
	if len(cfg.Play) > C.PROBE_MAX_PORTS || cfg.Record > C.PROBE_MAX_PORTS || cfg.Record < 0 {
		return nil, fmt.Errorf("jackprobe: at most %d ports each way", C.PROBE_MAX_PORTS)
	}
	for i, s := range cfg.Play {
		if len(s) > cfg.Length {
			return nil, fmt.Errorf("jackprobe: signal %d has %d samples, more than the length %d", i, len(s), cfg.Length)
		}
	}
	c := (*C.probe)(C.calloc(1, C.sizeof_probe))
	c.nplay = C.int(len(cfg.Play))
	c.nrec = C.int(cfg.Record)
	c.len = C.uint32_t(cfg.Length)
	p := &Probe{c: c, length: cfg.Length, done: make(chan struct{})}
	for i, s := range cfg.Play {
		c.sig[i] = p.alloc(0)
		copy(p.slice(c.sig[i]), s)
		c.played[i] = p.alloc(float32(math.NaN()))
	}
	for i := range cfg.Record {
		c.rec[i] = p.alloc(float32(math.NaN()))
	}
	var err error
	if p.pipeR, p.pipeW, err = os.Pipe(); err != nil {
		p.free()
		return nil, fmt.Errorf("jackprobe: %w", err)
	}
	c.done_fd = C.int(p.pipeW.Fd())

	name := C.CString(cfg.Name)
	defer C.free(unsafe.Pointer(name))
	var server *C.char
	if cfg.Server != "" {
		server = C.CString(cfg.Server)
		defer C.free(unsafe.Pointer(server))
	}
	var status C.int
	if C.probe_open(c, name, server, &status) != 0 {
		p.pipeR.Close()
		p.pipeW.Close()
		p.free()
		return nil, openError(cfg, int(status))
	}
	if C.probe_activate(c) != 0 {
		C.probe_close(c)
		p.pipeR.Close()
		p.pipeW.Close()
		p.free()
		return nil, fmt.Errorf("jackprobe: cannot activate %s-play and %s-rec", cfg.Name, cfg.Name)
	}
	p.wg.Add(1)
	go p.waitDone()
	return p, nil
}

// JACK's status bits (jack/types.h).
const (
	jackFailure       = 0x01
	jackServerFailed  = 0x10
	jackNameNotUnique = 0x04
)

func openError(cfg Config, status int) error {
	server := cfg.Server
	if server == "" {
		server = "the default server"
	}
	switch {
	case status&jackNameNotUnique != 0:
		return fmt.Errorf("jackprobe: a client called %s-play or %s-rec already runs on %s", cfg.Name, cfg.Name, server)
	case status&jackServerFailed != 0:
		return fmt.Errorf("%w: cannot connect to %s (start one: jackd -d dummy -r 48000 -p 128)", ErrNoServer, server)
	}
	return fmt.Errorf("jackprobe: cannot open %s-play and %s-rec on %s (JACK status %#x)", cfg.Name, cfg.Name, server, status)
}

// waitDone closes p.done when the recorder says the last sample is in; it
// ends when Close closes the pipe's write end.
func (p *Probe) waitDone() {
	defer p.wg.Done()
	var b [1]byte
	if n, _ := p.pipeR.Read(b[:]); n == 1 {
		close(p.done)
	}
}

func (p *Probe) alloc(fill float32) *C.float {
	buf := (*C.float)(C.malloc(C.size_t(p.length) * C.sizeof_float))
	s := p.slice(buf)
	for i := range s {
		s[i] = fill
	}
	return buf
}

func (p *Probe) slice(buf *C.float) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(buf)), p.length)
}

func (p *Probe) free() {
	for i := range C.PROBE_MAX_PORTS {
		C.free(unsafe.Pointer(p.c.sig[i]))
		C.free(unsafe.Pointer(p.c.played[i]))
		C.free(unsafe.Pointer(p.c.rec[i]))
	}
	C.free(unsafe.Pointer(p.c))
	p.c = nil
}

// PlayPort is the full name of output port i ("NAME-play:out_i").
func (p *Probe) PlayPort(i int) string {
	return C.GoString(C.jack_port_name(p.c.out[i]))
}

// RecordPort is the full name of input port i ("NAME-rec:in_i").
func (p *Probe) RecordPort(i int) string {
	return C.GoString(C.jack_port_name(p.c.in[i]))
}

// SampleRate is the server's rate in frames per second.
func (p *Probe) SampleRate() int { return int(C.jack_get_sample_rate(p.c.recorder)) }

// Period is the server's period in frames.
func (p *Probe) Period() int { return int(C.jack_get_buffer_size(p.c.recorder)) }

// Ports lists the server's ports whose full names match the regular
// expression pattern ("" matches all).
func (p *Probe) Ports(pattern string) []string {
	var cp *C.char
	if pattern != "" {
		cp = C.CString(pattern)
		defer C.free(unsafe.Pointer(cp))
	}
	return goStrings(C.jack_get_ports(p.c.recorder, cp, nil, 0))
}

// Connections lists the ports connected to port.
func (p *Probe) Connections(port string) ([]string, error) {
	cp := C.CString(port)
	defer C.free(unsafe.Pointer(cp))
	h := C.jack_port_by_name(p.c.recorder, cp)
	if h == nil {
		return nil, fmt.Errorf("%w %s does not exist", ErrPort, port)
	}
	return goStrings(C.jack_port_get_all_connections(p.c.recorder, h)), nil
}

// Connect connects output port src to input port dst.
func (p *Probe) Connect(src, dst string) error {
	cs, cd := C.CString(src), C.CString(dst)
	defer C.free(unsafe.Pointer(cs))
	defer C.free(unsafe.Pointer(cd))
	if rc := C.jack_connect(p.c.recorder, cs, cd); rc != 0 && rc != C.EEXIST {
		return fmt.Errorf("%w: cannot connect %s to %s (%d)", ErrPort, src, dst, int(rc))
	}
	return nil
}

// Disconnect disconnects output port src from input port dst.
func (p *Probe) Disconnect(src, dst string) error {
	cs, cd := C.CString(src), C.CString(dst)
	defer C.free(unsafe.Pointer(cs))
	defer C.free(unsafe.Pointer(cd))
	if rc := C.jack_disconnect(p.c.recorder, cs, cd); rc != 0 {
		return fmt.Errorf("%w: cannot disconnect %s from %s (%d)", ErrPort, src, dst, int(rc))
	}
	return nil
}

// Start plays and records from lead after now (enough for both clients
// to see it before that frame comes: a few periods). It returns the
// moment sample 0 is due, by this machine's clock.
func (p *Probe) Start(lead time.Duration) time.Time {
	rate := p.SampleRate()
	frames := C.jack_nframes_t(lead.Seconds() * float64(rate))
	now := time.Now()
	C.probe_arm(p.c, C.uint32_t(C.jack_frame_time(p.c.recorder)+frames))
	return now.Add(lead)
}

// Done is closed when the last sample has been recorded.
func (p *Probe) Done() <-chan struct{} { return p.done }

// Close stops and closes both clients and keeps what they played and
// recorded for Recording. Safe to call twice.
func (p *Probe) Close() {
	p.once.Do(func() {
		C.probe_close(p.c)
		p.pipeW.Close()
		p.wg.Wait()
		p.pipeR.Close()
		c := p.c
		for i := range int(c.nplay) {
			p.rec.Played = append(p.rec.Played, append([]float32(nil), p.slice(c.played[i])...))
		}
		for i := range int(c.nrec) {
			p.rec.Recorded = append(p.rec.Recorded, append([]float32(nil), p.slice(c.rec[i])...))
		}
		p.rec.Xruns = int(c.xruns)
		for i := range min(p.rec.Xruns, C.PROBE_MAX_XRUNS) {
			p.rec.XrunAt = append(p.rec.XrunAt, int(c.xrun_at[i]))
		}
		p.free()
	})
}

// Recording is what the probe played and recorded; empty until Close.
func (p *Probe) Recording() Recording { return p.rec }

// goStrings copies a NULL-terminated array of C strings from JACK and
// frees it.
func goStrings(a **C.char) []string {
	if a == nil {
		return nil
	}
	defer C.jack_free(unsafe.Pointer(a))
	var out []string
	for _, s := range unsafe.Slice(a, 1<<20) {
		if s == nil {
			break
		}
		out = append(out, C.GoString(s))
	}
	return out
}
