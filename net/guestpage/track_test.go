package guestpage_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/peer/browsertest"
)

// trackState is the page's report on the backing track (track.js's
// report).
type trackState struct {
	Name          string   `json:"name"`
	Size          int64    `json:"size"`
	Got           int64    `json:"got"`
	Ready         bool     `json:"ready"`
	Error         string   `json:"error"`
	Playing       bool     `json:"playing"`
	Jumps         int      `json:"jumps"`
	SkewMS        *float64 `json:"skewMS"`
	Rate          float64  `json:"rate"`
	WallMS        float64  `json:"wallMS"`
	CtxTime       float64  `json:"ctxTime"`
	Pos           *float64 `json:"pos"`
	ClockOffsetNS *float64 `json:"clockOffsetNS"`
	Sched         *track.Schedule
}

// TestBrowserTrack: the host's backing track reaches the browser over the
// file channel, is decoded by WebAudio, and plays on the host's session
// clock after the count-in: the page's track position at its speaker (as
// WebAudio's getOutputTimestamp tells) against the host's at the same
// wall-clock instant (the two run on one machine, so one clock) is the
// skew; it must stay within 10 ms.
func TestBrowserTrack(t *testing.T) {
	for _, k := range browsertest.Kinds() {
		t.Run(string(k), func(t *testing.T) { testBrowserTrack(t, k) })
	}
}

func testBrowserTrack(t *testing.T, k browsertest.Kind) {
	firefoxAudio(t, k)
	song := loadSong(t, tone.Bursts(20*audio.SampleRate, 0.3, 1))
	d := startDuet(t, k, func(c *app.Config) { c.Track, c.AutoPlay = song, true })
	s := d.rep.await(t, 30*time.Second, "the track ready", func(s pageState) bool {
		if s.Track != nil && s.Track.Error != "" {
			t.Fatalf("the page could not use the track: %s", s.Track.Error)
		}
		return s.Track != nil && s.Track.Ready
	})
	t.Logf("%s has the track (%d bytes) after %v", k, s.Track.Size, time.Since(d.start).Round(time.Millisecond))
	s = d.rep.await(t, 15*time.Second, "the track playing", func(s pageState) bool {
		return s.Track.Playing && s.Track.Pos != nil && s.Track.Sched != nil
	})
	t.Logf("%s plays the track after %v", k, time.Since(d.start).Round(time.Millisecond))

	// Three seconds of the page's positions against the host's schedule.
	epoch := d.host.Epoch()
	var skews, self []float64
	var first *trackState
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		s = d.rep.await(t, 5*time.Second, "a report", func(pageState) bool { return true })
		tr := s.Track
		if !tr.Playing || tr.Pos == nil || tr.Sched == nil || !tr.Sched.Playing {
			t.Fatalf("the track stopped: %+v", *tr)
		}
		wall := time.Unix(0, int64(tr.WallMS*1e6))
		at := wall.Sub(epoch) // on the host's session clock
		host := float64(tr.Sched.Pos) + float64(at-time.Duration(tr.Sched.At))*audio.SampleRate/1e9
		skews = append(skews, (*tr.Pos-host)/audio.SampleRate*1000)
		if first == nil {
			first = tr
		}
		t.Logf("skew %.2f ms, page's %v ms, rate %.5f, jumps %d; the AudioContext's clock ran %.5f of the wall's", skews[len(skews)-1], fmtp(tr.SkewMS), tr.Rate, tr.Jumps,
			(tr.CtxTime-first.CtxTime)*1000/(tr.WallMS-first.WallMS))
		if tr.SkewMS != nil {
			self = append(self, *tr.SkewMS)
		}
	}
	worst := slices.MaxFunc(skews, func(a, b float64) int { return cmpAbs(a, b) })
	t.Logf("%s's track against the host's: median %.2f ms, worst %.2f ms over %d reports (the page's own view: median %.2f ms); %d jumps, rate %.5f, clock offset %.3f ms",
		k, median(skews), worst, len(skews), median(self), s.Track.Jumps, s.Track.Rate, *s.Track.ClockOffsetNS/1e6)
	if math.Abs(median(skews)) > 10 || math.Abs(worst) > 20 {
		t.Errorf("%s's track is off the host's by %.2f ms (median), %.2f ms at worst", k, median(skews), worst)
	}
	st := d.host.Track()
	if !st.PartnerReady || !st.Playing {
		t.Errorf("the host's track: %+v", st)
	}
}

func cmpAbs(a, b float64) int {
	switch {
	case math.Abs(a) < math.Abs(b):
		return -1
	case math.Abs(a) > math.Abs(b):
		return 1
	}
	return 0
}

func fmtp(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// loadSong writes samples to a WAV file and loads it as the host's
// backing track, as a singer's file would be.
func loadSong(t *testing.T, samples []float32) *track.Track {
	t.Helper()
	path := filepath.Join(t.TempDir(), "song.wav")
	if err := wavfile.WriteFile(path, samples); err != nil {
		t.Fatal(err)
	}
	song, err := track.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return song
}
