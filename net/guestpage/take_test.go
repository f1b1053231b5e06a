package guestpage_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/record"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/peer/browsertest"
)

// TestBrowserTake: the host records a take while a browser guest sings
// along. A browser cannot say where on the track it sang (Duet's app
// reports it), so the take places its voice by when the packets arrived:
// the track position the host heard then, less half the round trip and
// the packet's length. The guest sings clicks (lab.js's sing, through
// WebAudio, which tells the wall-clock time its voice began: one machine,
// one clock); they must land in guest.wav within 20 ms (median) of where
// the page's track was at its speaker when they were sung (what a singer
// in time with it does), as the page reports it, each within 50 ms but one,
// that one within 100 ms: under CI's load headless Chromium once held its
// voice back 56 ms at the first click, 15 at the second, none from the
// third (its sending queue, which no receiver sees, draining over a
// second). Without the estimate there is no guest voice in the take at all.
//
// How good it is: the estimate itself holds to a fifth of a millisecond
// while the browser's sending delay is steady, but it follows that delay,
// which the browser does not tell. Headless Chromium's voice from WebAudio
// leaves it later and later (2-3 ms a second, its RTP clock 0.2 % slow):
// clicks land −4…+15 ms off. A microphone's capture latency, unknown
// too, comes on top.
func TestBrowserTake(t *testing.T) {
	for _, k := range browsertest.Kinds() {
		t.Run(string(k), func(t *testing.T) { testBrowserTake(t, k) })
	}
}

func testBrowserTake(t *testing.T, k browsertest.Kind) {
	firefoxAudio(t, k)
	song := loadSong(t, make([]float32, 30*audio.SampleRate)) // silence: only its clock matters
	d := startDuet(t, k, func(c *app.Config) { c.Track = song })
	const clicks, every = 8, audio.SampleRate / 2
	voice := make([]float32, clicks*every)
	for i := range clicks { // a 2 ms burst at 2 kHz
		for n := range 96 {
			voice[i*every+every/2+n] = float32(0.8 * math.Sin(2*math.Pi*float64(n)/24) * math.Exp(-float64(n)/48))
		}
	}
	if err := wavfile.WriteFile(filepath.Join(d.files, "voice.wav"), voice); err != nil {
		t.Fatal(err)
	}
	d.rep.await(t, 30*time.Second, "the track ready", func(s pageState) bool {
		return s.Phase == "connected" && s.Track != nil && s.Track.Ready
	})
	takeDir, err := d.host.Record(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := d.rep.await(t, 15*time.Second, "the track playing past its count-in", func(s pageState) bool {
		return s.Track.Playing && s.Track.Pos != nil && *s.Track.Pos > audio.SampleRate/2 && s.Track.Sched != nil
	})
	heardFrom := d.out.len() // the host's speaker, from before the first click
	d.rep.do(map[string]any{"do": "sing", "url": "/files/voice.wav"})
	s = d.rep.await(t, 10*time.Second, "singing", func(s pageState) bool {
		if s.LabError != "" {
			t.Fatalf("the page could not sing: %s", s.LabError)
		}
		return s.SungAtMS != nil
	})
	sungAt := time.Unix(0, int64(*s.SungAtMS*1e6))
	// Where the page's track plays at its speaker, against the wall: what
	// a singer in time with it follows.
	var heard []trackState
	// Until the page has reported past its song and the host has heard
	// every click (its speaker plays the voice after the take has it;
	// 0.7 there, over a microphone tone of 0.28): the voice sung and
	// arrived, however late a loaded browser sends it.
	last := d.rep.await(t, 15*time.Second, "every click sung and heard by the host", func(s pageState) bool {
		if s.Track.Pos != nil {
			heard = append(heard, *s.Track)
		}
		past := time.Unix(0, int64(s.Track.WallMS*1e6)).After(sungAt.Add(audio.Duration(len(voice))))
		return past && countOnsets(d.out.from(heardFrom), 0.5, audio.SampleRate/4) >= clicks
	})
	// The page renders its voice on its AudioContext's clock, which in a
	// headless browser runs a little off the wall's (0.3 % fast has been
	// seen) and on a loaded machine stalls (1 % slow over a song, in one
	// step of 45 ms, in CI): the clicks left the page at their context
	// times, as far apart on the wall as the page's speaker played them.
	ctxRate := (last.Track.CtxTime - s.Track.CtxTime) * 1000 / (last.Track.WallMS - s.Track.WallMS)
	if s.SungCtx == nil {
		t.Fatal("the page did not say when on its AudioContext it sang")
	}
	reports := append([]trackState{*s.Track}, heard...)
	clickAt := func(d time.Duration) time.Time {
		c := *s.SungCtx + d.Seconds()
		return sungAt.Add(time.Duration((speakerWallMS(reports, c, ctxRate) - speakerWallMS(reports, *s.SungCtx, ctxRate)) * 1e6))
	}
	if err := d.host.StopRecording(); err != nil {
		t.Fatal(err)
	}
	guest, err := wavfile.ReadFile(filepath.Join(takeDir, record.GuestFile))
	if err != nil {
		t.Fatal(err)
	}
	// The track position at the page's speaker at wall-clock time w,
	// between the page's reports around it.
	posAt := func(w time.Time) float64 {
		ms := float64(w.UnixNano()) / 1e6
		i := sort.Search(len(heard), func(i int) bool { return heard[i].WallMS > ms })
		i = max(1, min(i, len(heard)-1))
		a, b := heard[i-1], heard[i]
		return *a.Pos + (*b.Pos-*a.Pos)*(ms-a.WallMS)/(b.WallMS-a.WallMS)
	}
	if len(heard) < 2 {
		t.Fatalf("the page reported its track %d times while singing", len(heard))
	}
	var errs []float64
	for i := range clicks {
		want := posAt(clickAt(audio.Duration(i*every + every/2)))
		from := int(want) - audio.SampleRate/10
		if from < 0 || from >= len(guest) {
			t.Fatalf("click %d belongs at %.0f, outside guest.wav's %d samples", i, want, len(guest))
		}
		got := onset(guest, from, audio.SampleRate/5)
		if got < 0 {
			t.Errorf("click %d: none in guest.wav within 100 ms of %.0f", i, want)
			continue
		}
		errs = append(errs, (float64(got)-want)/audio.SampleRate*1000)
	}
	// The page's track against the host's (its schedule, on one wall
	// clock) while it sang: what a guest in time with the page sings
	// off the host's track, which the take cannot know.
	epoch := d.host.Epoch()
	var skews []float64
	for _, r := range heard {
		if r.Sched != nil && r.Sched.Playing {
			at := time.Unix(0, int64(r.WallMS*1e6)).Sub(epoch)
			host := float64(r.Sched.Pos) + float64(at-time.Duration(r.Sched.At))*audio.SampleRate/1e9
			skews = append(skews, (*r.Pos-host)/audio.SampleRate*1000)
		}
	}
	t.Logf("%s's clicks in the take against the track: %.2f ms (its AudioContext's clock ran %.5f of the wall's; %d reports of it; its track against the host's %.2f ms)", k, errs, ctxRate, len(reports), skews)
	abs := make([]float64, len(errs))
	wide := 0
	for i, e := range errs {
		abs[i] = math.Abs(e)
		if abs[i] > 50 {
			wide++
		}
		if abs[i] > 100 || wide > 1 && abs[i] > 50 {
			t.Errorf("click %d lands %.2f ms off the track", i, e)
		}
	}
	if m := median(abs); m > 20 {
		t.Errorf("%s's clicks land %.2f ms off the track (median)", k, m)
	}
	if _, err := os.Stat(filepath.Join(takeDir, record.HostFile)); err != nil {
		t.Error(err)
	}
}

// countOnsets counts the runs louder than level in p, each at least gap
// samples after the last's start.
func countOnsets(p []float32, level float64, gap int) int {
	n, next := 0, 0
	for i := 0; i < len(p); i++ {
		if i >= next && math.Abs(float64(p[i])) > level {
			n, next = n+1, i+gap
		}
	}
	return n
}

// onset is the first sample from from on, within n, louder than a quarter
// of full scale; -1 if none.
func onset(p []float32, from, n int) int {
	for i := from; i < min(from+n, len(p)); i++ {
		if math.Abs(float64(p[i])) > 0.25 {
			return i
		}
	}
	return -1
}

// speakerWallMS is the wall-clock ms at which the page's speaker played
// its AudioContext's time c: a least-squares line through the page's
// reports within half a second of c, or, with fewer than three, the line
// through the last at rate (context seconds per wall second).
func speakerWallMS(reports []trackState, c, rate float64) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, r := range reports {
		if x := r.CtxTime - c; math.Abs(x) <= 0.5 {
			n, sx, sy, sxx, sxy = n+1, sx+x, sy+r.WallMS, sxx+x*x, sxy+x*r.WallMS
		}
	}
	if n < 3 || n*sxx == sx*sx {
		last := reports[len(reports)-1]
		return last.WallMS + (c-last.CtxTime)*1000/rate
	}
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return (sy - slope*sx) / n // at x = 0: at c
}
