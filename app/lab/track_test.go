package lab

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/impair"
)

// clickTrack writes a song of irregular tone bursts (so no two stretches
// look alike to a cross-correlation) as a WAV file, and loads it as the
// host would.
func clickTrack(t *testing.T, seconds int) *track.Track {
	t.Helper()
	path := filepath.Join(t.TempDir(), "song.wav")
	if err := wavfile.WriteFile(path, tone.Bursts(seconds*audio.SampleRate, 0.5, 0)); err != nil {
		t.Fatal(err)
	}
	tr, err := track.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// singAlong runs a local duet in which the host sends its backing track
// to the guest over the peer connection, both play it from one instant
// after a count-in, and both singers sing along perfectly (their
// microphones hear their own speakers a 10 ms device round trip later),
// the guest's sound card 100 ppm fast. The host records into a take.
func singAlong(t *testing.T, song *track.Track, path impair.Profile) *Result {
	t.Helper()
	// Time to send the track (over a lossy 80 ms round trip SCTP takes
	// seconds for a megabyte; under -race, with Opus Custom's packet a
	// block flowing beside it, up to 8.5 s), the count-in and the song.
	length := 11*audio.SampleRate + len(song.Samples)
	res, err := Run(t.Context(), Config{
		HostVoice:     make([]float32, length),
		GuestVoice:    make([]float32, length),
		Track:         song,
		RecordDir:     t.TempDir(),
		SingAlong:     10 * time.Millisecond,
		DeafToPartner: true,
		GuestPPM:      100,
		Network:       &path,
		Logger:        testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.GuestTrack.Ready || !res.HostTrack.PartnerReady || res.GuestTrack.Transferred != int64(len(song.File)) {
		t.Fatalf("the track did not arrive: host %+v, guest %+v", res.HostTrack, res.GuestTrack)
	}
	t.Logf("clock: estimated %v ± %v, true %v", res.GuestStats.Clock.Offset, res.GuestStats.Clock.Dispersion, res.ClockOffset)
	return res
}

// TestTrackInSync checks, on a "cable" path (10 ms ± 2 each way), that the
// two copies of the track play within a millisecond of each other.
func TestTrackInSync(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15 s duet")
	}
	p := impair.Scenarios()[1]
	p.Seed = 3
	song := clickTrack(t, 10)
	res := singAlong(t, song, p)
	// From a second into the song (after the 2 s count-in) to a second
	// before its end.
	checked, worst := 0, time.Duration(0)
	for after := 3 * time.Second; after+2*time.Second <= audio.Duration(len(song.Samples)); after += 1500 * time.Millisecond {
		skew, score, err := res.TrackSkew(after)
		if err != nil {
			break // the duet ended first
		}
		t.Logf("%v after the count-in began: the guest's track is %+.3f ms from the host's (correlation %.2f)", after, ms(skew), score)
		if score < 0.8 {
			t.Errorf("the copies do not match (correlation %.2f)", score)
		}
		worst = max(worst, skew.Abs())
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d stretches of the song to compare", checked)
	}
	if worst > time.Millisecond {
		t.Errorf("the guest's track strayed %v from the host's", worst)
	}
}

// TestAlignedTake checks, on a "continent" path (40 ms ± 10 each way, 1 %
// loss), that both voices sit on the track in the take within a
// millisecond: the network's delay is gone from the recording.
func TestAlignedTake(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15 s duet")
	}
	p := impair.Scenarios()[3]
	p.Seed = 7
	res := singAlong(t, clickTrack(t, 7), p)
	host, guest, err := res.TakeAlignment(500*time.Millisecond, 4*time.Second, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]Alignment{"host": host, "guest": guest} {
		t.Logf("take: the %s's voice sits %+.3f ms from the track (correlation %.2f)", name, ms(a.Offset), a.Score)
		if a.Score < 0.8 || a.Offset.Abs() > time.Millisecond {
			t.Errorf("take: the %s's voice is %+.3f ms off the track (correlation %.2f)", name, ms(a.Offset), a.Score)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// TestTrackControlsFollow has the host seek and pause mid-song: the guest's
// copy follows each time.
func TestTrackControlsFollow(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 s duet")
	}
	song := clickTrack(t, 30)
	var steps []string
	_, err := Run(t.Context(), Config{
		HostVoice:     make([]float32, 16*audio.SampleRate),
		GuestVoice:    make([]float32, 16*audio.SampleRate),
		Track:         song,
		RecordDir:     "", // plays, no take
		DeafToPartner: true,
		Logger:        testkit.Logger(t),
		Sessions: func(host, guest *app.Session) {
			// until waits, up to a deadline, for the guest's track to be
			// in the state want says.
			until := func(what string, want func(h, g app.TrackStatus) bool) {
				deadline := time.Now().Add(8 * time.Second)
				for {
					h, g := host.Track(), guest.Track()
					if want(h, g) {
						steps = append(steps, what)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("%s: host %+v, guest %+v", what, h, g)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			near := func(a, b time.Duration) bool { return (a - b).Abs() < 100*time.Millisecond }
			until("playing together", func(h, g app.TrackStatus) bool {
				return h.Playing && g.Playing && h.Position > time.Second && near(h.Position, g.Position)
			})
			if err := host.Seek(20 * time.Second); err != nil {
				t.Error(err)
			}
			until("sought together", func(h, g app.TrackStatus) bool {
				return g.Playing && h.Position > 20*time.Second && near(h.Position, g.Position)
			})
			if err := host.Pause(); err != nil {
				t.Error(err)
			}
			until("paused together", func(h, g app.TrackStatus) bool { return !h.Playing && !g.Playing })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 {
		t.Errorf("only %v", steps)
	}
}

// TestStreamedTrack sends the track in the guest's mix instead of as a
// file: the guest gets no file but hears the track.
func TestStreamedTrack(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s duet")
	}
	song := clickTrack(t, 6)
	res, err := Run(t.Context(), Config{
		HostVoice:     make([]float32, 10*audio.SampleRate),
		GuestVoice:    make([]float32, 10*audio.SampleRate),
		Track:         song,
		StreamTrack:   true,
		RecordDir:     t.TempDir(), // autoplay at once: there is nothing to send
		DeafToPartner: false,
		Monitor:       0,
		Logger:        testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GuestTrack.Ready || res.GuestTrack.Transferred != 0 {
		t.Errorf("the guest got the file: %+v", res.GuestTrack)
	}
	if !res.HostTrack.Streamed {
		t.Error("the host does not say it streams")
	}
	// The guest hears the song: stretches of it show up in what the
	// guest heard, a network trip and a jitter buffer late. Short ones:
	// the playout's drift following warps time a little over a second.
	var found []float64
	for _, at := range []int{2, 3, 4} {
		from := at*audio.SampleRate + firstSound(song.Samples[at*audio.SampleRate:]) // a burst, not a gap
		ref := song.Samples[from : from+audio.SampleRate/5]
		lag, score := measure.Delay(ref, res.GuestHeard, len(res.GuestHeard)-len(ref)-1)
		t.Logf("second %d of the song at %.0f ms in what the guest heard (correlation %.2f)", at, lag/48, score)
		found = append(found, score)
	}
	slices.Sort(found)
	if found[1] < 0.6 {
		t.Errorf("the guest does not hear the streamed track (correlations %.2f)", found)
	}
}
