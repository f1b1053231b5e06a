// Package lab runs duets between two sessions in one process, for the
// end-to-end tests, duetlab and `duet demo`: each singer on a file device
// at real time, real WebRTC on loopback through a rendezvous server on a
// loopback port, optionally over an impaired network path (net/impair)
// and with the host's packet arrivals captured (net/trace). It drives
// sessions only through app's public API and its seams (Config.WrapConn,
// Config.OnArrival), so app itself links none of the lab's parts.
//
// Run blocks until both voices have been sung; its Result measures what
// each singer heard (latency, track skew, take alignment) by
// cross-correlation.
package lab

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/impair"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
	"github.com/duetapp/duet/net/trace"
)

// Config describes a duet between two sessions in this process.
type Config struct {
	// HostVoice and GuestVoice are what each singer sings.
	HostVoice, GuestVoice []float32
	// HostDevice, if set, is the host's device instead of a file device
	// singing HostVoice; Run closes it. HostHeard is then empty.
	HostDevice audio.Device
	// HostReopen is the host's app.Config.Reopen.
	HostReopen func() (audio.Device, error)
	// Network, if set, impairs both directions alike (each with its own
	// seed).
	Network *impair.Profile
	// Track, StreamTrack and RecordDir are as in app.Config; the host plays
	// the track (and records, with RecordDir) as soon as the guest can
	// play along.
	Track       *track.Track
	StreamTrack bool
	RecordDir   string
	// SingAlong, if set, makes each singer's microphone also hear their
	// own speaker that much later (the device's round trip), as singers
	// who sing along perfectly to what they hear; each session is told
	// that round trip.
	SingAlong time.Duration
	// GuestEcho is the guest's room: its microphone also hears its
	// speaker along these paths (a laptop without headphones); the first
	// path's delay is the guest's device round trip. GuestSpeakers turns
	// the guest's echo canceller on.
	GuestEcho     []EchoTap
	GuestSpeakers bool
	// DeafToPartner: neither singer hears the other (only the track and
	// themselves).
	DeafToPartner bool
	// Sessions, if set, is given both sessions once they run, on
	// Run's goroutine, to drive them (play, seek…); the duet goes on
	// until the guest's voice ends whatever it does.
	Sessions func(host, guest *app.Session)
	// HostCapture, if set, is a trace file the guest's packet arrivals at
	// the host are written to (net/trace's format).
	HostCapture string
	// GuestPPM makes the guest's sound card that many millionths fast.
	GuestPPM float64
	// Frame, Codec, JitterTarget and Monitor are as in app.Config.
	Frame        time.Duration
	Codec        codec.Kind
	JitterTarget time.Duration
	Monitor      float32
	Logger       *slog.Logger
	// OnEvent is told of both sessions' events.
	OnEvent func(host bool, e app.Event)
}

// Result is what each singer heard, with the figures of both sessions.
type Result struct {
	Code                  signal.Code
	HostHeard, GuestHeard []float32
	HostStart, GuestStart time.Time // when each device's sample 0 was due
	HostStats, GuestStats app.Stats
	HostTrack, GuestTrack app.TrackStatus
	// ToHost and ToGuest are what the network did to the guest's voice
	// on its way to the host and to the host's on its way to the guest,
	// seen on the sockets (zero without Config.Network): the truth
	// HostStats.Voice and GuestStats.Voice report on.
	ToHost, ToGuest Truth

	guestPPM float64
	// CPU is the process's CPU time (user and system) during the duet:
	// both singers and the server.
	CPU time.Duration
	// ClockOffset is the true offset of the host's session clock from the
	// guest's, which GuestStats.Clock estimates.
	ClockOffset time.Duration

	hostVoice, guestVoice []float32
}

// EchoTap is one path from a speaker back to its microphone: that much
// later, at that gain.
type EchoTap struct {
	Delay time.Duration
	Gain  float32
}

// singer is a file device's microphone and speaker: the microphone sings
// voice and also hears the speaker along the taps (none: a singer on
// headphones).
func singer(voice []float32, heard *memorySink, taps []EchoTap) (audio.Reader, filedev.Sink) {
	if len(taps) == 0 {
		return &audio.SliceReader{P: voice}, heard
	}
	r := &room{voice: voice, heard: heard}
	for _, t := range taps {
		r.taps = append(r.taps, tap{audio.Samples(t.Delay), t.Gain})
		r.keep = max(r.keep, audio.Samples(t.Delay))
	}
	return r, r
}

type tap struct {
	delay int
	gain  float32
}

// room carries what a file device plays back to its microphone. The
// device reads a block before it writes one, from one goroutine, so a
// path shorter than a block is cut short.
type room struct {
	voice  []float32
	at     int // samples read so far
	heard  *memorySink
	taps   []tap
	keep   int       // the longest path
	played []float32 // the last samples played, ending at sample end
	end    int
}

func (r *room) Read(p []float32) (int, error) {
	if r.at >= len(r.voice) {
		return 0, io.EOF
	}
	n := min(len(p), len(r.voice)-r.at)
	first := r.end - len(r.played) // index of played[0]
	for i := range n {
		v := r.voice[r.at+i]
		for _, t := range r.taps {
			if j := r.at + i - t.delay - first; j >= 0 && j < len(r.played) {
				v += t.gain * r.played[j]
			}
		}
		p[i] = v
	}
	r.at += n
	return n, nil
}

func (r *room) Write(p []float32) error {
	r.played = append(r.played, p...)
	r.end += len(p)
	if drop := len(r.played) - r.keep - 4096; drop > 0 {
		r.played = append(r.played[:0], r.played[drop:]...)
	}
	return r.heard.Write(p)
}

func (r *room) Close() error { return nil }

// memorySink keeps what a file device plays.
type memorySink struct{ p []float32 }

func (m *memorySink) Write(p []float32) error { m.p = append(m.p, p...); return nil }
func (m *memorySink) Close() error            { return nil }

// Run runs a local duet until both voices have been sung.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv := server.New(server.Config{Logger: cfg.Logger.With("part", "rendezvous")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rendezvous server: %w", err)
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	var serving sync.WaitGroup
	serving.Go(func() { server.Serve(serveCtx, ln, srv, nil) })
	defer func() {
		stopServing()
		serving.Wait()
	}()
	url := "http://" + ln.Addr().String()

	hostOut, guestOut := &memorySink{}, &memorySink{}
	var hostTaps, guestTaps []EchoTap
	if cfg.SingAlong > 0 {
		hostTaps = []EchoTap{{cfg.SingAlong, 1}}
		guestTaps = hostTaps
	}
	guestTaps = append(guestTaps, cfg.GuestEcho...)
	hostIn, hostSink := singer(cfg.HostVoice, hostOut, hostTaps)
	guestIn, guestSink := singer(cfg.GuestVoice, guestOut, guestTaps)
	hostFile := filedev.New(filedev.Config{Input: hostIn, Output: hostSink})
	var hostDev audio.Device = hostFile
	if cfg.HostDevice != nil {
		hostDev = cfg.HostDevice
	}
	guestDev := filedev.New(filedev.Config{Input: guestIn, Output: guestSink, PPM: cfg.GuestPPM})
	cacheDir, err := os.MkdirTemp("", "duet-local-cache")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cacheDir)
	var arrivals *trace.Recorder
	if cfg.HostCapture != "" {
		arrivals = trace.NewRecorder(audio.Samples(cmp.Or(cfg.Frame, codec.DefaultFrame)))
	}
	var toHost, toGuest wire
	sessionConfig := func(dev audio.Device, host bool) app.Config {
		singer := "guest"
		if host {
			singer = "host"
		}
		var path func(net.PacketConn) net.PacketConn
		if cfg.Network != nil {
			p := *cfg.Network
			if !host {
				p.Seed++ // the same path, not the same packets lost
			}
			out, in := &toGuest, &toHost
			if !host {
				out, in = in, out
			}
			path = func(c net.PacketConn) net.PacketConn {
				return wiredConn{PacketConn: impair.New(c, p), out: out, in: in}
			}
		}
		var song *track.Track
		roundTrip := cfg.SingAlong
		if host {
			song = cfg.Track
		} else if len(cfg.GuestEcho) > 0 && roundTrip == 0 {
			roundTrip = cfg.GuestEcho[0].Delay
		}
		return app.Config{
			Track:           song,
			StreamTrack:     cfg.StreamTrack,
			AutoPlay:        host && (cfg.Track != nil || cfg.RecordDir != ""),
			RecordDir:       cfg.RecordDir,
			CacheDir:        cacheDir,
			DeviceRoundTrip: roundTrip,
			Speakers:        !host && cfg.GuestSpeakers,
			WrapConn:        path,
			Server:          url,
			Device:          dev,
			Frame:           cfg.Frame,
			Codec:           cfg.Codec,
			JitterTarget:    cfg.JitterTarget,
			Monitor:         cfg.Monitor,
			Loopback:        true,
			Logger:          cfg.Logger.With("singer", singer),
			OnEvent: func(e app.Event) {
				if cfg.OnEvent != nil {
					cfg.OnEvent(host, e)
				}
			},
		}
	}
	hostCfg := sessionConfig(hostDev, true)
	hostCfg.Reopen = cfg.HostReopen
	if arrivals != nil {
		hostCfg.OnArrival = arrivals.Add
	}
	host, err := app.Host(ctx, hostCfg)
	if err != nil {
		hostDev.Close()
		guestDev.Close()
		return nil, err
	}
	guest, err := app.Join(ctx, sessionConfig(guestDev, false), host.Code())
	if err != nil {
		// Run ends at once with a cancelled context and cleans up.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		host.Run(cctx)
		guestDev.Close()
		return nil, err
	}

	if cfg.DeafToPartner {
		host.SetPartnerGain(0)
		guest.SetPartnerGain(0)
	}
	cpu0 := cpuTime()
	// Each sings until their voice ends; when the guest is done, so is
	// the host (whose device may be endless).
	hostCtx, stopHost := context.WithCancel(ctx)
	defer stopHost()
	var wg sync.WaitGroup
	var hostErr, guestErr error
	wg.Go(func() { hostErr = host.Run(hostCtx) })
	wg.Go(func() {
		guestErr = guest.Run(ctx)
		stopHost()
	})
	if cfg.Sessions != nil {
		cfg.Sessions(host, guest)
	}
	wg.Wait()
	cpu := cpuTime() - cpu0
	if arrivals != nil {
		hostErr = errors.Join(hostErr, arrivals.WriteFile(cfg.HostCapture))
	}
	if err := errors.Join(hostErr, guestErr); err != nil {
		return nil, err
	}
	return &Result{
		HostTrack:  host.Track(),
		GuestTrack: guest.Track(),
		Code:       host.Code(),
		HostHeard:  hostOut.p,
		GuestHeard: guestOut.p,
		HostStart:  hostFile.Started(),
		GuestStart: guestDev.Started(),
		HostStats:  host.Stats(),
		GuestStats: guest.Stats(),
		ToHost:     toHost.truth(),
		ToGuest:    toGuest.truth(),
		CPU:        cpu,
		// host clock − guest clock = (t − hostEpoch) − (t − guestEpoch)
		ClockOffset: guest.Epoch().Sub(host.Epoch()),
		guestPPM:    cfg.GuestPPM,
		hostVoice:   cfg.HostVoice,
		guestVoice:  cfg.GuestVoice,
	}, nil
}

// ErrNotFound reports that a voice could not be found in what its partner
// heard.
var ErrNotFound = errors.New("voice not found in what the partner heard")

// Latency measures mouth-to-ear delay in one direction (guest→host when
// toHost), by finding the singer's voice in what the partner heard, across
// both devices' timelines: a two-second stretch ending a second before the
// voice does, when the playout has long settled. score is the normalised
// correlation (0…1), a confidence figure.
func (r *Result) Latency(toHost bool) (latency time.Duration, score float64, err error) {
	voice, heard := r.guestVoice, r.HostHeard
	offset := r.GuestStart.Sub(r.HostStart) // sung sample n is due at heard index n + offset
	if !toHost {
		voice, heard = r.hostVoice, r.GuestHeard
		offset = -offset
	}
	const maxLatency = 500 * time.Millisecond
	length := 2 * audio.SampleRate
	start := len(voice) - length - audio.SampleRate
	if start < audio.SampleRate {
		return 0, 0, fmt.Errorf("%w: the voice is shorter than 4 s", ErrNotFound)
	}
	from := start + audio.Samples(offset)
	if from < 0 || from >= len(heard) {
		return 0, 0, fmt.Errorf("%w: the partner heard nothing at that time", ErrNotFound)
	}
	maxLag := audio.Samples(maxLatency)
	to := min(len(heard), from+length+maxLag)
	lag, score := measure.Delay(voice[start:start+length], heard[from:to], maxLag)
	if score < 0.3 {
		return 0, score, fmt.Errorf("%w (correlation %.2f)", ErrNotFound, score)
	}
	return time.Duration(lag * float64(time.Second) / audio.SampleRate), score, nil
}

// firstSound is the index of the first sample of p louder than −26 dBFS.
func firstSound(p []float32) int {
	for i, v := range p {
		if v > 0.05 || v < -0.05 {
			return i
		}
	}
	return len(p)
}

// TrackSkew compares the backing track as the two singers heard it, at one
// instant: after past the first sound the host heard (the count-in's first
// click), by both devices' own clocks. It needs a duet in which each hears
// only the track (DeafToPartner, no monitoring). A positive skew is the
// guest's copy playing late; score is the normalised correlation.
func (r *Result) TrackSkew(after time.Duration) (skew time.Duration, score float64, err error) {
	const window, slack = audio.SampleRate / 2, audio.SampleRate / 100 // 0.5 s, ±10 ms
	tm := r.HostStart.Add(audio.Duration(firstSound(r.HostHeard))).Add(after)
	h := audio.Samples(tm.Sub(r.HostStart))
	g := int(float64(tm.Sub(r.GuestStart)) * audio.SampleRate * (1 + r.guestPPM*1e-6) / 1e9)
	if h < 0 || h+window > len(r.HostHeard) || g < slack || g+window+slack > len(r.GuestHeard) {
		return 0, 0, fmt.Errorf("%w: the duet is too short for %v into the song", ErrNotFound, after)
	}
	lag, score := measure.Delay(r.HostHeard[h:h+window], r.GuestHeard[g-slack:g+window+slack], 2*slack)
	return time.Duration((lag - slack) * float64(time.Second) / audio.SampleRate), score, nil
}

// Alignment is where a voice sits in a take against the track.
type Alignment struct {
	Offset time.Duration // positive: the voice is late
	Score  float64       // normalised correlation, a confidence figure
}

// TakeAlignment finds each voice of the host's last take on the track's
// timeline, over length from from into the take; maxOff bounds the search
// both ways. It needs singers who sing along (SingAlong), each hearing only
// the track.
func (r *Result) TakeAlignment(from, length, maxOff time.Duration) (host, guest Alignment, err error) {
	read := func(name string) []float32 {
		if err != nil {
			return nil
		}
		var p []float32
		p, err = wavfile.ReadFile(filepath.Join(r.HostTrack.Take, name))
		return p
	}
	trk, hostV, guestV := read(record.TrackFile), read(record.HostFile), read(record.GuestFile)
	if err != nil {
		return
	}
	f, n, m := audio.Samples(from), audio.Samples(length), audio.Samples(maxOff)
	find := func(voice []float32) (Alignment, error) {
		if f < m || len(voice) < f+n+m || len(trk) < f+n {
			return Alignment{}, fmt.Errorf("%w: the take holds %v", ErrNotFound, audio.Duration(len(voice)))
		}
		lag, score := measure.Delay(trk[f:f+n], voice[f-m:f+n+m], 2*m)
		return Alignment{time.Duration((lag - float64(m)) * float64(time.Second) / audio.SampleRate), score}, nil
	}
	if host, err = find(hostV); err != nil {
		return
	}
	guest, err = find(guestV)
	return
}
