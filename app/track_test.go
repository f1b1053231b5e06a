package app

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/impair"
)

// clickTrack writes a song of irregular clicks and tones (so no two
// stretches look alike to a cross-correlation) as a WAV file, and loads it
// as the host would.
func clickTrack(t *testing.T, seconds int) *track.Track {
	t.Helper()
	p := make([]float32, seconds*audio.SampleRate)
	at := 0
	for i := 0; at < len(p)-4800; i++ {
		hz := 300 + float64((i*37)%11)*80
		for k := range 1200 {
			p[at+k] = float32(0.5 * math.Sin(2*math.Pi*hz*float64(k)/audio.SampleRate) * math.Exp(-float64(k)/300))
		}
		at += 4000 + (i*7919)%6000
	}
	path := filepath.Join(t.TempDir(), "song.wav")
	w, err := wavfile.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
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
func singAlong(t *testing.T, song *track.Track, path impair.Profile) *LocalResult {
	t.Helper()
	res, err := RunLocal(t.Context(), LocalConfig{
		HostVoice:     make([]float32, 15*audio.SampleRate),
		GuestVoice:    make([]float32, 15*audio.SampleRate),
		Track:         song,
		RecordDir:     t.TempDir(),
		SingAlong:     10 * time.Millisecond,
		DeafToPartner: true,
		GuestPPM:      100,
		Network:       &path,
		Logger:        testLogger(t),
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
// two copies of the track play within a millisecond of each other: the
// same instants in what each singer heard, by the devices' own clocks.
func TestTrackInSync(t *testing.T) {
	if testing.Short() {
		t.Skip("a 15 s duet")
	}
	p := impair.Scenarios()[1]
	p.Seed = 3
	song := clickTrack(t, 10)
	res := singAlong(t, song, p)
	hostAt := func(tm time.Time) int { return audio.Samples(tm.Sub(res.HostStart)) }
	guestAt := func(tm time.Time) int {
		return int(float64(tm.Sub(res.GuestStart)) * audio.SampleRate * (1 + 100e-6) / 1e9)
	}
	// The count-in's first click starts the host's sound.
	countIn := res.HostStart.Add(audio.Duration(firstSound(res.HostHeard, 0)))
	checked := 0
	worst := 0.0
	// From a second into the song to a second before its end.
	end := int(2*time.Second/time.Millisecond) + len(song.Samples)/48 - 1000
	for ms := 3000; ms+500 <= end; ms += 1500 {
		tm := countIn.Add(time.Duration(ms) * time.Millisecond)
		h, g := hostAt(tm), guestAt(tm)
		if h+audio.SampleRate > len(res.HostHeard) || g+audio.SampleRate+480 > len(res.GuestHeard) {
			break
		}
		lag, score := measure.Delay(res.HostHeard[h:h+audio.SampleRate/2], res.GuestHeard[g-480:g+audio.SampleRate], 960)
		skew := (lag - 480) / audio.SampleRate * 1000
		t.Logf("%.1f s after the count-in: the guest's track is %+.3f ms from the host's (correlation %.2f)", float64(ms)/1000, skew, score)
		if score < 0.8 {
			t.Errorf("the copies do not match (correlation %.2f)", score)
		}
		worst = max(worst, math.Abs(skew))
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d stretches of the song to compare", checked)
	}
	if worst > 1 {
		t.Errorf("the guest's track strayed %.3f ms from the host's", worst)
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
	res := singAlong(t, clickTrack(t, 10), p)
	if res.HostTrack.Take == "" {
		t.Fatal("no take recorded")
	}
	read := func(name string) []float32 {
		p, err := wavfile.ReadFile(filepath.Join(res.HostTrack.Take, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	trk, host, guest := read(record.TrackFile), read(record.HostFile), read(record.GuestFile)
	for name, voice := range map[string][]float32{"host": host, "guest": guest} {
		from, n := audio.SampleRate/2, 4*audio.SampleRate
		if len(voice) < from+n+480 || len(trk) < from+n {
			t.Fatalf("%s: the take holds %d samples", name, len(voice))
		}
		lag, score := measure.Delay(trk[from:from+n], voice[from-240:from+n+240], 480)
		off := (lag - 240) / audio.SampleRate * 1000
		t.Logf("take: the %s's voice sits %+.3f ms from the track (correlation %.2f)", name, off, score)
		if score < 0.8 || math.Abs(off) > 1 {
			t.Errorf("take: the %s's voice is %+.3f ms off the track (correlation %.2f)", name, off, score)
		}
	}
}

// firstSound is the index of the first sample above the noise from from.
func firstSound(p []float32, from int) int {
	for i := from; i < len(p); i++ {
		if math.Abs(float64(p[i])) > 0.05 {
			return i
		}
	}
	return len(p)
}
