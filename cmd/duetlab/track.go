package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/impair"
)

// trackLab returns the track scenario for a song of songSeconds
// (-song-seconds; 300 gives the five-minute drift figure).
func trackLab(songSeconds int) scenario {
	return func(ctx context.Context, w io.Writer) ([]string, error) {
		return trackSkew(ctx, w, songSeconds)
	}
}

// trackSkew plays a backing track to a host and a guest whose sound card
// runs 100 ppm fast, over the lab's paths, and reports how far apart the
// two copies play: at the start, through the song, and at its end. On a
// jittery path (continent) the clock estimate's error shows in it. The
// last column is the guest's clock estimate at the end against the truth.
func trackSkew(ctx context.Context, w io.Writer, songSeconds int) ([]string, error) {
	song, cleanup, err := labSong(songSeconds)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tstart skew ms\tworst skew ms\tat s\tend skew ms\tclock error ms\t")
	var kv []string
	// Every lab path but mobile, whose 300 kbit/s takes half a minute
	// for the track.
	for _, name := range []string{"lan", "cable", "wifi", "continent"} {
		p := scenarioNamed(name)
		res, err := singAlong(ctx, song, p, "")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		var start, end, worst, worstAt time.Duration
		first := true
		songLen := audio.Duration(len(song.Samples))
		for after := 2500 * time.Millisecond; after+time.Second <= 2*time.Second+songLen; after += time.Second {
			skew, _, err := res.TrackSkew(after)
			if err != nil {
				break
			}
			if first {
				start, first = skew, false
			}
			end = skew
			if skew.Abs() > worst {
				worst, worstAt = skew.Abs(), after
			}
		}
		clockErr := res.GuestStats.Clock.Offset - res.ClockOffset
		fmt.Fprintf(tw, "%s\t%+.3f\t%.3f\t%.0f\t%+.3f\t%+.3f\t\n", name, ms(start), ms(worst), worstAt.Seconds(), ms(end), ms(clockErr))
		kv = append(kv, fmt.Sprintf("%s_start_ms=%.3f %s_worst_ms=%.3f %s_end_ms=%.3f", name, ms(start), name, ms(worst), name, ms(end)))
	}
	kv = append(kv, fmt.Sprintf("song_s=%d ppm=100", songSeconds))
	return kv, tw.Flush()
}

// recordLab records a take over the path (40 ms ± 10 each way,
// 1 % loss, the guest's sound card 100 ppm fast) with singers who sing
// along perfectly, and reports where each voice sits on the track in the
// take, against what the network delays the guest's voice live.
func recordLab(ctx context.Context, w io.Writer) ([]string, error) {
	song, cleanup, err := labSong(12)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	takes, err := os.MkdirTemp("", "duetlab-takes")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(takes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\thost voice ms\tguest voice ms\tcorrelation\tguest heard live ms later\t")
	var kv []string
	// Not mobile: its 300 kbit/s would take half a minute for the track.
	for _, name := range []string{"cable", "continent"} {
		p := scenarioNamed(name)
		res, err := singAlong(ctx, song, p, takes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		host, guest, err := res.TakeAlignment(time.Second, 8*time.Second, 5*time.Millisecond)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		live := res.HostStats.Peer.RTT/2 + res.HostStats.Voice.TargetDelay
		fmt.Fprintf(tw, "%s\t%+.3f\t%+.3f\t%.2f\t%.1f\t\n", name, ms(host.Offset), ms(guest.Offset), math.Min(host.Score, guest.Score), ms(live))
		kv = append(kv, fmt.Sprintf("%s_guest_ms=%.3f %s_host_ms=%.3f", name, ms(guest.Offset), name, ms(host.Offset)))
	}
	return kv, tw.Flush()
}

// singAlong runs a local duet on path in which both singers sing along to
// the track perfectly (a 10 ms device round trip), hear only the track,
// and the guest's sound card runs 100 ppm fast; the host records into
// takes if set.
func singAlong(ctx context.Context, song *track.Track, path impair.Profile, takes string) (*lab.Result, error) {
	// Time to connect and send the track (SCTP over a lossy 80 ms round
	// trip moves a megabyte in seconds), the count-in, the song.
	length := 20*audio.SampleRate + len(song.Samples)
	return lab.Run(ctx, lab.Config{
		HostVoice:     make([]float32, length),
		GuestVoice:    make([]float32, length),
		Track:         song,
		RecordDir:     takes,
		SingAlong:     10 * time.Millisecond,
		DeafToPartner: true,
		GuestPPM:      100,
		Network:       &path,
	})
}

func scenarioNamed(name string) impair.Profile {
	for _, p := range impair.Scenarios() {
		if p.Name == name {
			p.Seed = 1
			return p
		}
	}
	panic("no lab path " + name)
}

// labSong makes a song of irregular tone bursts (no two stretches alike
// to a cross-correlation), as a WAV file loaded as the host would.
func labSong(seconds int) (*track.Track, func(), error) {
	dir, err := os.MkdirTemp("", "duetlab-song")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, "song.wav")
	err = wavfile.WriteFile(path, tone.Bursts(seconds*audio.SampleRate, 0.5, 0))
	var t *track.Track
	if err == nil {
		t, err = track.Load(path)
	}
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return t, cleanup, nil
}
