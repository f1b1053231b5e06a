package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/device"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/ntpcheck"
	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/trace"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// codecFlag is --codec: a codec's name or auto (app.ParseCodec).
type codecFlag struct{ kind codec.Kind }

func (c *codecFlag) String() string { return app.CodecName(c.kind) }

func (c *codecFlag) Set(v string) error {
	k, err := app.ParseCodec(v)
	if err != nil {
		return err
	}
	c.kind = k
	return nil
}

// set takes the settings' choice as the default.
func (c *codecFlag) set(v string) { c.kind = codecSetting(v) }

// codecSetting reads the settings' codec; one it cannot read (a settings
// file from a later Duet) is auto.
func codecSetting(v string) codec.Kind {
	k, err := app.ParseCodec(v)
	if err != nil {
		return app.Auto
	}
	return k
}

// sessionFlags are the flags host and join share.
type sessionFlags struct {
	server     string
	in, out    string
	tone       float64
	frame      time.Duration
	codec      codecFlag
	bitrate    int
	jitter     time.Duration
	monitor    float64
	iceServers listFlag
	loopback   bool
	relayOnly  bool
	speakers   bool
	name, ntp  string
	capture    string
	jitterBias float64
	verbose    bool
	status     time.Duration
	device     deviceFlags
}

func (f *sessionFlags) register(fs *flag.FlagSet, s app.Settings) {
	server := s.Server
	if server == "" {
		server = "http://localhost" + rendezvous.DefaultListen
	}
	fs.StringVar(&f.server, "server", server, "rendezvous server `URL`")
	fs.StringVar(&f.in, "in", "", "sing this 48 kHz WAV `file` instead of using the audio device")
	fs.StringVar(&f.out, "out", "", "with -in or -tone: write what you hear to this WAV `file`")
	f.device.register(fs, s)
	fs.Float64Var(&f.tone, "tone", 0, "sing a steady tone of this many `Hz` instead of a microphone")
	f.codec.set(s.Codec)
	fs.Var(&f.codec, "codec", "`codec` to send: auto (Opus Custom to Duet, PCM on a clean LAN, else Opus), custom, pcm (L16), l16, l24 or opus")
	fs.DurationVar(&f.frame, "frame", codec.DefaultFrame, "Opus frame: 2.5ms, 5ms, 10ms or 20ms")
	fs.IntVar(&f.bitrate, "bitrate", codec.DefaultBitrate, "Opus bitrate in `bits/s`")
	fs.DurationVar(&f.jitter, "jitter", app.DefaultJitterTarget, "jitter buffer delay")
	fs.Float64Var(&f.monitor, "monitor", 1, "`gain` at which you hear yourself directly (0 = off)")
	fs.Var(&f.iceServers, "ice-server", "STUN or TURN `URL` (repeatable)")
	fs.BoolVar(&f.loopback, "loopback", false, "connect over the loopback interface only (testing on one machine)")
	fs.BoolVar(&f.relayOnly, "relay-only", false, "send audio only through the rendezvous server's relay (hides your address)")
	fs.BoolVar(&f.speakers, "speakers", s.Speakers, "you sing with loudspeakers, not headphones: cancel their echo (adds about 17 ms)")
	fs.Float64Var(&f.jitterBias, "jitter-bias", s.JitterBias, "jitter buffer from tight (-1: least delay) to safe (1: fewest dropouts)")
	fs.StringVar(&f.name, "name", s.Name, "your `name`, shown to your partner")
	ntp := s.NTPServer
	if ntp == ntpcheck.Off {
		ntp = ""
	}
	fs.StringVar(&f.ntp, "ntp", ntp, "check this machine's clock against this NTP `server` (empty: no check)")
	fs.StringVar(&f.capture, "capture", "", "write your partner's packet arrivals to this trace `file` when you leave (for duetlab -trace FILE jitter)")
	fs.BoolVar(&f.verbose, "v", false, "log every event")
	fs.DurationVar(&f.status, "status", statusEvery, "print the latency, loss and what is sent this often (0: never)")
}

// openDevice opens the device the flags describe: a file device when the
// singer sings from a file or a tone, else the real audio device (with its
// calibrated round trip, if the settings have one, and a way to reopen it
// if it is lost). release closes what openDevice opened beyond the device.
func (f *sessionFlags) openDevice(s app.Settings) (dev audio.Device, roundTrip time.Duration, reopen func() (audio.Device, error), release func(), err error) {
	if f.in != "" && f.tone != 0 {
		return nil, 0, nil, nil, errors.New("give -in or -tone, not both")
	}
	if f.in == "" && f.tone == 0 {
		rd := &realDevice{cfg: f.device.config()}
		st, err := rd.open()
		if err != nil {
			rd.close()
			return nil, 0, nil, nil, fmt.Errorf("%w\n(or sing from a file with -in, or a tone with -tone)", err)
		}
		if c := s.Calibration; c.Matches(f.device.input, f.device.output, f.device.buffer) {
			roundTrip = c.RoundTrip
		}
		return st, roundTrip, rd.open, rd.close, nil
	}
	var input audio.Reader
	if f.in != "" {
		p, err := wavfile.ReadFile(f.in)
		if err != nil {
			return nil, 0, nil, nil, err
		}
		input = &audio.SliceReader{P: p}
	} else {
		input = &tone.Sine{Hz: f.tone, Amp: 0.3}
	}
	cfg := filedev.Config{Input: input}
	if f.out != "" {
		w, err := wavfile.Create(f.out)
		if err != nil {
			return nil, 0, nil, nil, err
		}
		cfg.Output = w
	}
	return filedev.New(cfg), 0, nil, func() {}, nil
}

// realDevice opens PortAudio streams, starting PortAudio afresh each time
// so that a device plugged back in is seen; unless a lost stream had to be
// abandoned, in which case it keeps trying on the PortAudio it has.
type realDevice struct {
	cfg device.Config
	sys *device.System
}

func (r *realDevice) open() (audio.Device, error) {
	if r.sys != nil && r.sys.Abandoned() {
		return r.sys.Open(r.cfg)
	}
	r.close()
	sys, err := device.Init()
	if err != nil {
		return nil, err
	}
	r.sys = sys
	return sys.Open(r.cfg)
}

func (r *realDevice) close() {
	if r.sys != nil {
		r.sys.Close()
		r.sys = nil
	}
}

// singFlags are host's and join's flags: the session's, the host's own,
// and the guest's room code.
type singFlags struct {
	sessionFlags
	host                 bool
	code                 signal.Code // join's
	trackFile, recordDir string
	play, streamTrack    bool
}

// parse reads args, whose defaults come from the settings s.
func (f *singFlags) parse(args []string, s app.Settings, stderr io.Writer) error {
	name, synopsis := "join", "join CODE [flags]"
	if f.host {
		name, synopsis = "host", "host [flags]"
	}
	fs := newFlagSet(name, synopsis, stderr)
	f.register(fs, s)
	if f.host {
		fs.StringVar(&f.trackFile, "track", "", "backing track `file` (WAV, MP3, Ogg/Opus or FLAC), sent to your guest")
		fs.BoolVar(&f.play, "play", false, "start the track, after a count-in, as soon as your guest can play along")
		fs.StringVar(&f.recordDir, "record", "", "record a take into a new folder under `dir` as soon as your guest can play along")
		fs.BoolVar(&f.streamTrack, "stream-track", false, "send the track in your guest's mix instead of as a file")
	}
	// The code may come before the flags, as the host reads it out.
	if !f.host && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		var err error
		if f.code, err = signal.ParseCode(args[0]); err != nil {
			return err
		}
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case !f.host && f.code == "" && fs.NArg() != 1:
		fs.Usage()
		return errors.New("join needs the room code the host read to you")
	case !f.host && f.code == "":
		var err error
		if f.code, err = signal.ParseCode(fs.Arg(0)); err != nil {
			return err
		}
	case fs.NArg() > 0:
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.out != "" && f.in == "" && f.tone == 0 {
		return errors.New("-out records what you hear only with -in or -tone; the audio device plays it instead")
	}
	return nil
}

// appConfig is the session the flags ask for, on dev.
func (f *singFlags) appConfig(dev audio.Device, roundTrip time.Duration, reopen func() (audio.Device, error), song *track.Track, stderr io.Writer) app.Config {
	return app.Config{
		Server:          f.server,
		Device:          dev,
		Reopen:          reopen,
		DeviceRoundTrip: roundTrip,
		Frame:           f.frame,
		Codec:           f.codec.kind,
		Bitrate:         f.bitrate,
		JitterTarget:    f.jitter,
		Monitor:         float32(f.monitor),
		Speakers:        f.speakers,
		Name:            f.name,
		NTPServer:       f.ntp,
		JitterBias:      f.jitterBias,
		ICEServers:      f.iceServers,
		Loopback:        f.loopback,
		RelayOnly:       f.relayOnly,
		Track:           song,
		StreamTrack:     f.streamTrack,
		AutoPlay:        f.play || f.recordDir != "",
		RecordDir:       f.recordDir,
		Logger:          newLogger(stderr, f.verbose),
		OnEvent:         func(e app.Event) { fmt.Fprintln(stderr, "duet:", e.Text) },
	}
}

// runSing is duet host and duet join: a session on the audio device (or a
// file or a tone) until the singer leaves or the input ends.
func runSing(ctx context.Context, host bool, args []string, stdout, stderr io.Writer) error {
	settings, _ := loadSettings(stderr)
	f := singFlags{host: host}
	if err := f.parse(args, settings, stderr); err != nil {
		return err
	}
	var song *track.Track
	if f.trackFile != "" {
		var err error
		if song, err = track.Load(f.trackFile); err != nil {
			return err
		}
	}
	dev, roundTrip, reopen, release, err := f.openDevice(settings)
	if err != nil {
		return err
	}
	defer release()
	cfg := f.appConfig(dev, roundTrip, reopen, song, stderr)
	var arrivals *trace.Recorder
	if f.capture != "" {
		arrivals = trace.NewRecorder(audio.Samples(cmp.Or(f.frame, codec.DefaultFrame)))
		cfg.OnArrival = arrivals.Add
	}
	var s *app.Session
	if host {
		if s, err = app.Host(ctx, cfg); err == nil {
			fmt.Fprintln(stdout, s.Code())
			if link, err := guestpage.Link(cfg.Server, s.Code()); err == nil {
				fmt.Fprintln(stderr, "duet: a partner without Duet joins from a browser at", link)
			}
		}
	} else {
		s, err = app.Join(ctx, cfg, f.code)
	}
	if err != nil {
		return errors.Join(err, dev.Close())
	}
	err = sing(ctx, s, f.status, stderr)
	if arrivals != nil {
		err = errors.Join(err, arrivals.WriteFile(f.capture))
	}
	return err
}

// sing runs s with a status line every interval (none for 0) and says at
// the end what went through.
func sing(ctx context.Context, s *app.Session, interval time.Duration, stderr io.Writer) error {
	statusCtx, stopStatus := context.WithCancel(ctx)
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		if interval > 0 {
			printStatus(statusCtx, stderr, interval, s)
		}
	}()
	err := s.Run(ctx)
	stopStatus()
	<-statusDone
	st := s.Stats()
	stalls := ""
	if st.DeviceStalls > 0 {
		stalls = fmt.Sprintf("; this computer's audio ran late %d×", st.DeviceStalls)
	}
	fmt.Fprintf(stderr, "duet: sent %d packets, received %d (%d lost, %d late); %d ms of your partner concealed%s\n",
		st.Peer.PacketsSent, st.Peer.PacketsReceived, st.Voice.PacketsLost, st.Voice.PacketsDiscarded,
		st.Voice.ConcealedSamples*1000/audio.SampleRate, stalls)
	return err
}
