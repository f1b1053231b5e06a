package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
)

// demoFlags are duet demo's flags.
type demoFlags struct {
	outDir    string
	seconds   float64
	frame     time.Duration
	codec     codecFlag
	jitter    time.Duration
	verbose   bool
	useDevice bool
	trackFile string
	record    bool
}

func (f *demoFlags) parse(args []string, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	fs.StringVar(&f.outDir, "out-dir", "duet-demo", "`folder` for what each singer sang and heard")
	fs.Float64Var(&f.seconds, "seconds", 8, "how long the singers sing")
	fs.DurationVar(&f.frame, "frame", codec.DefaultFrame, "Opus frame: 2.5ms, 5ms, 10ms or 20ms")
	fs.Var(&f.codec, "codec", "`codec` both singers send: auto (Opus Custom, then PCM on loopback), custom, pcm (L16), l16, l24 or opus")
	fs.DurationVar(&f.jitter, "jitter", app.DefaultJitterTarget, "jitter buffer delay")
	fs.BoolVar(&f.verbose, "v", false, "log every event")
	fs.BoolVar(&f.useDevice, "device", true, "if this machine has an audio device, you are the host: hear the guest and sing along")
	fs.StringVar(&f.trackFile, "track", "", "a backing track `file` (WAV, MP3, Ogg/Opus, FLAC) the host sends the guest; both play it")
	fs.BoolVar(&f.record, "record", false, "the host records a take into the out-dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.seconds < 4 {
		return errors.New("the demo needs at least 4 seconds to measure latency")
	}
	return nil
}

// runDemo runs a whole duet on this machine (app/lab) and reports it.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f demoFlags
	if err := f.parse(args, stderr); err != nil {
		return err
	}
	if err := os.MkdirAll(f.outDir, 0o755); err != nil {
		return err
	}
	cfg, release, err := f.labConfig(stdout, stderr)
	if err != nil {
		return err
	}
	defer release()
	if cfg.HostDevice != nil {
		fmt.Fprintf(stdout, "Duet demo: you are the host, on your audio device; a synthetic guest sings for %.0f s over real WebRTC on loopback. Sing along!\n", f.seconds)
	} else {
		fmt.Fprintf(stdout, "Duet demo: a host and a guest on this machine sing for %.0f s over real WebRTC on loopback.\n", f.seconds)
	}
	res, err := lab.Run(ctx, cfg)
	if err != nil {
		return err
	}
	files := demoFiles(cfg, res)
	for _, wf := range files {
		if err := wavfile.WriteFile(filepath.Join(f.outDir, wf.name), wf.p); err != nil {
			return err
		}
	}
	return f.report(stdout, cfg, res, files)
}

// labConfig is the demo's duet: two synthetic voices, the track and the
// take the flags ask for, and this machine's audio device for the host if
// it has one and the flags allow it. release closes the device.
func (f *demoFlags) labConfig(stdout, stderr io.Writer) (cfg lab.Config, release func(), err error) {
	n := int(f.seconds * audio.SampleRate)
	cfg = lab.Config{
		HostVoice:    make([]float32, n),
		GuestVoice:   make([]float32, n),
		Frame:        f.frame,
		Codec:        f.codec.kind,
		JitterTarget: f.jitter,
		Monitor:      1,
		Logger:       newLogger(stderr, f.verbose),
		OnEvent: func(host bool, e app.Event) {
			who := "guest"
			if host {
				who = "host "
			}
			fmt.Fprintf(stdout, "  %s  %s\n", who, e.Text)
		},
	}
	audio.ReadFull(&tone.Voice{Base: 196, Amp: 0.3, Seed: 1}, cfg.HostVoice)    // G3
	audio.ReadFull(&tone.Voice{Base: 293.7, Amp: 0.3, Seed: 2}, cfg.GuestVoice) // D4
	if f.trackFile != "" {
		if cfg.Track, err = track.Load(f.trackFile); err != nil {
			return lab.Config{}, nil, err
		}
	}
	if f.record {
		cfg.RecordDir = filepath.Join(f.outDir, "takes")
	}
	rd := &realDevice{}
	if f.useDevice {
		if dev, err := rd.open(); err == nil {
			cfg.HostDevice = dev
		}
	}
	return cfg, rd.close, nil
}

// demoFile is a WAV file the demo writes.
type demoFile struct {
	name string
	p    []float32
}

// demoFiles are what each singer sang and heard; with the audio device in
// the loop, the host's are the singer's own, and not kept.
func demoFiles(cfg lab.Config, res *lab.Result) []demoFile {
	files := []demoFile{{"guest-sings.wav", cfg.GuestVoice}, {"guest-hears.wav", res.GuestHeard}}
	if cfg.HostDevice == nil {
		files = append(files, demoFile{"host-sings.wav", cfg.HostVoice}, demoFile{"host-hears.wav", res.HostHeard})
	}
	return files
}

// report prints the demo's findings as a table.
func (f *demoFlags) report(stdout io.Writer, cfg lab.Config, res *lab.Result, files []demoFile) error {
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nroom code\t%s\n", res.Code)
	reportConnection(w, res)
	reportDirections(w, res, cfg.HostDevice != nil)
	if c := res.GuestStats.Clock; c.Samples > 0 {
		fmt.Fprintf(w, "clock sync\tthe guest's estimate of the host's clock is off by %.0f µs (%d pings, fastest round trip %.2f ms)\n",
			float64((c.Offset-res.ClockOffset).Abs())/float64(time.Microsecond), c.Samples, ms(c.RTT))
	}
	if t, song := res.GuestTrack, cfg.Track; song != nil {
		fmt.Fprintf(w, "backing track\t%s: %d of %d bytes reached the guest; the guest's copy was %.2f ms from the host's at the last check\n",
			song.Name, t.Transferred, len(song.File), ms(t.Skew.Abs()))
	}
	if cfg.RecordDir != "" && res.HostTrack.Take != "" {
		fmt.Fprintf(w, "take\t%s (host, guest, track, mix and live WAVs)\n", res.HostTrack.Take)
	}
	fmt.Fprintf(w, "CPU\t%.1f ms per second of song for both singers (%.1f %% of one core)\n",
		ms(res.CPU)/f.seconds, 100*res.CPU.Seconds()/f.seconds)
	fmt.Fprintf(w, "files\t%s\n", f.outDir)
	for _, wf := range files {
		fmt.Fprintf(w, "\t  %s\n", wf.name)
	}
	return w.Flush()
}

// reportConnection says how the singers were connected, and whether their
// safety codes agree.
func reportConnection(w io.Writer, res *lab.Result) {
	p := res.GuestStats.Peer
	how := "direct"
	if p.Relayed {
		how = "relayed"
	}
	rtt := fmt.Sprintf("%.2f ms", ms(p.RTT))
	if p.RTT < 100*time.Microsecond {
		rtt = "under 0.1 ms"
	}
	fmt.Fprintf(w, "connection\t%s, %s candidate, to %s, round trip %s\n", how, p.Candidate, p.Address, rtt)
	verdict := "equal: encrypted end to end, nobody in the middle"
	if res.HostStats.SafetyCode != res.GuestStats.SafetyCode {
		verdict = "DIFFERENT: something sits between the singers"
	}
	fmt.Fprintf(w, "safety code\thost %s, guest %s (%s)\n", res.HostStats.SafetyCode, res.GuestStats.SafetyCode, verdict)
}

// reportDirections gives each direction's packets and latency; with the
// audio device in the loop (onDevice) the latency is not measured.
func reportDirections(w io.Writer, res *lab.Result, onDevice bool) {
	for _, dir := range []struct {
		name             string
		toHost           bool
		sender, receiver app.Stats
	}{
		{"guest → host", true, res.GuestStats, res.HostStats},
		{"host → guest", false, res.HostStats, res.GuestStats},
	} {
		v := dir.receiver.Voice
		fmt.Fprintf(w, "%s\t%d packets sent, %d received, %d lost, %d late; %.0f ms concealed\n",
			dir.name, dir.sender.Peer.PacketsSent, dir.receiver.Peer.PacketsReceived, v.PacketsLost, v.PacketsDiscarded,
			float64(v.ConcealedSamples)*1000/audio.SampleRate)
		if onDevice {
			fmt.Fprintf(w, "  latency\tnot measured with your device in the loop (duet demo -device=false measures it)\n")
			continue
		}
		lat, score, err := res.Latency(dir.toHost)
		if err != nil {
			fmt.Fprintf(w, "  latency\tnot measured: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "  latency\t%.1f ms mouth to ear, device buffers excluded (correlation %.2f)\n", ms(lat), score)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
