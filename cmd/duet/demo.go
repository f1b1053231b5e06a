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

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	outDir := fs.String("out-dir", "duet-demo", "`folder` for what each singer sang and heard")
	seconds := fs.Float64("seconds", 8, "how long the singers sing")
	frame := fs.Duration("frame", codec.DefaultFrame, "Opus frame: 2.5ms, 5ms, 10ms or 20ms")
	var choice codecFlag
	fs.Var(&choice, "codec", "`codec` both singers send: auto (Opus Custom, then PCM on loopback), custom, pcm (L16), l16, l24 or opus")
	jitter := fs.Duration("jitter", app.DefaultJitterTarget, "jitter buffer delay")
	verbose := fs.Bool("v", false, "log every event")
	useDevice := fs.Bool("device", true, "if this machine has an audio device, you are the host: hear the guest and sing along")
	trackFile := fs.String("track", "", "a backing track `file` (WAV, MP3, Ogg/Opus, FLAC) the host sends the guest; both play it")
	record := fs.Bool("record", false, "the host records a take into the out-dir")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *seconds < 4 {
		return errors.New("the demo needs at least 4 seconds to measure latency")
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}

	n := int(*seconds * audio.SampleRate)
	hostVoice, guestVoice := make([]float32, n), make([]float32, n)
	audio.ReadFull(&tone.Voice{Base: 196, Amp: 0.3, Seed: 1}, hostVoice)    // G3
	audio.ReadFull(&tone.Voice{Base: 293.7, Amp: 0.3, Seed: 2}, guestVoice) // D4

	var song *track.Track
	if *trackFile != "" {
		var err error
		if song, err = track.Load(*trackFile); err != nil {
			return err
		}
	}
	var takes string
	if *record {
		takes = filepath.Join(*outDir, "takes")
	}
	var hostDevice audio.Device
	if *useDevice {
		rd := &realDevice{}
		if st, err := rd.open(); err == nil {
			hostDevice = st
			defer rd.close()
		} else {
			rd.close()
		}
	}
	if hostDevice != nil {
		fmt.Fprintf(stdout, "Duet demo: you are the host, on your audio device; a synthetic guest sings for %.0f s over real WebRTC on loopback. Sing along!\n", *seconds)
	} else {
		fmt.Fprintf(stdout, "Duet demo: a host and a guest on this machine sing for %.0f s over real WebRTC on loopback.\n", *seconds)
	}
	res, err := lab.Run(ctx, lab.Config{
		HostDevice:   hostDevice,
		HostVoice:    hostVoice,
		GuestVoice:   guestVoice,
		Frame:        *frame,
		Codec:        choice.kind,
		JitterTarget: *jitter,
		Monitor:      1,
		Track:        song,
		RecordDir:    takes,
		Logger:       newLogger(stderr, *verbose),
		OnEvent: func(host bool, e app.Event) {
			who := "guest"
			if host {
				who = "host "
			}
			fmt.Fprintf(stdout, "  %s  %s\n", who, e.Text)
		},
	})
	if err != nil {
		return err
	}
	cpu := res.CPU

	files := []struct {
		name string
		p    []float32
	}{
		{"guest-sings.wav", guestVoice},
		{"guest-hears.wav", res.GuestHeard},
	}
	if hostDevice == nil {
		files = append(files, struct {
			name string
			p    []float32
		}{"host-sings.wav", hostVoice}, struct {
			name string
			p    []float32
		}{"host-hears.wav", res.HostHeard})
	}
	for _, f := range files {
		if err := wavfile.WriteFile(filepath.Join(*outDir, f.name), f.p); err != nil {
			return err
		}
	}

	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nroom code\t%s\n", res.Code)
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
	for _, dir := range []struct {
		name     string
		toHost   bool
		sender   app.Stats
		receiver app.Stats
	}{
		{"guest → host", true, res.GuestStats, res.HostStats},
		{"host → guest", false, res.HostStats, res.GuestStats},
	} {
		v := dir.receiver.Voice
		fmt.Fprintf(w, "%s\t%d packets sent, %d received, %d lost, %d late; %.0f ms concealed\n",
			dir.name, dir.sender.Peer.PacketsSent, dir.receiver.Peer.PacketsReceived, v.PacketsLost, v.PacketsDiscarded,
			float64(v.ConcealedSamples)*1000/audio.SampleRate)
		if hostDevice != nil {
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
	if c := res.GuestStats.Clock; c.Samples > 0 {
		fmt.Fprintf(w, "clock sync\tthe guest's estimate of the host's clock is off by %.0f µs (%d pings, fastest round trip %.2f ms)\n",
			float64((c.Offset-res.ClockOffset).Abs())/float64(time.Microsecond), c.Samples, ms(c.RTT))
	}
	if t := res.GuestTrack; song != nil {
		fmt.Fprintf(w, "backing track\t%s: %d of %d bytes reached the guest; the guest's copy was %.2f ms from the host's at the last check\n",
			song.Name, t.Transferred, len(song.File), ms(t.Skew.Abs()))
	}
	if takes != "" && res.HostTrack.Take != "" {
		fmt.Fprintf(w, "take\t%s (host, guest, track, mix and live WAVs)\n", res.HostTrack.Take)
	}
	fmt.Fprintf(w, "CPU\t%.1f ms per second of song for both singers (%.1f %% of one core)\n",
		ms(cpu) / *seconds, 100*cpu.Seconds() / *seconds)
	fmt.Fprintf(w, "files\t%s\n", *outDir)
	for _, f := range files {
		fmt.Fprintf(w, "\t  %s\n", f.name)
	}
	return w.Flush()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
