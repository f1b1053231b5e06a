package track

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
)

func ramp(n int) *Track {
	t := &Track{Samples: make([]float32, n)}
	for i := range t.Samples {
		t.Samples[i] = float32(i) / float32(n)
	}
	return t
}

// TestPlayerSchedule checks that the track starts at its instant, exactly,
// and that a schedule already under way starts mid-song.
func TestPlayerSchedule(t *testing.T) {
	tr := ramp(48000)
	p := NewPlayer()
	p.SetTrack(tr)
	blockNs := int64(128) * 1e9 / audio.SampleRate
	p.Schedule(Schedule{Gen: 1, Playing: true, At: 10 * blockNs, Pos: 0})
	out := make([]float32, 128)
	var heard []float32
	for b := range 20 {
		p.Read(out, int64(b)*blockNs)
		heard = append(heard, out...)
	}
	for i, v := range heard[:10*128] {
		if v != 0 {
			t.Fatalf("sample %d before the start is %v", i, v)
		}
	}
	for i, v := range heard[10*128:] {
		if v != tr.Samples[i] {
			t.Fatalf("sample %d of the song is %v, want %v", i, v, tr.Samples[i])
		}
	}
	// Joining late: the schedule started 960 samples ago.
	q := NewPlayer()
	q.SetTrack(tr)
	q.Schedule(Schedule{Gen: 1, Playing: true, At: 0, Pos: 0})
	pos, playing := q.Read(out, 960*1e9/audio.SampleRate)
	if !playing || math.Abs(pos-960) > 0.01 || math.Abs(float64(out[0]-tr.Samples[960])) > 1e-6 {
		t.Errorf("late start at %v (playing %v), sample %v", pos, playing, out[0])
	}
	if s := q.Snapshot(); !s.Valid || s.Pos != pos {
		t.Errorf("snapshot %+v", s)
	}
}

// TestPlayerCountIn checks the clicks come on the beats before the song.
func TestPlayerCountIn(t *testing.T) {
	p := NewPlayer()
	p.SetTrack(ramp(48000))
	p.Schedule(Schedule{Gen: 1, Playing: true, At: 0, Pos: 0, CountIn: 4, Beat: DefaultBeat})
	out := make([]float32, 4*DefaultBeat)
	p.Read(out, -4*DefaultBeat*1e9/audio.SampleRate)
	for beat := range 4 {
		seg := out[beat*DefaultBeat : (beat+1)*DefaultBeat]
		var peak float32
		for _, v := range seg[:DefaultBeat/10] {
			peak = max(peak, float32(math.Abs(float64(v))))
		}
		var rest float32
		for _, v := range seg[DefaultBeat/10:] {
			rest = max(rest, float32(math.Abs(float64(v))))
		}
		if peak < 0.2 || rest != 0 {
			t.Errorf("beat %d: click peak %.2f, then %.2f", beat, peak, rest)
		}
	}
}

// TestFollowerDrift runs a host and a guest player on simulated clocks: the
// guest's sound card runs 100 ppm slow, its session clock is offset from
// the host's and its offset estimate is noisy (±0.2 ms). Over five
// simulated minutes the guest's track stays within 1 ms of the host's,
// from five seconds on.
func TestFollowerDrift(t *testing.T) {
	const (
		block  = 128
		ppm    = -100
		offset = int64(3 * time.Second) // host clock − guest clock
	)
	host, guest := NewPlayer(), NewPlayer()
	hostBlock := float64(block) * 1e9 / audio.SampleRate
	guestBlock := hostBlock / (1 + ppm*1e-6)
	start := int64(500 * time.Millisecond)
	host.Schedule(Schedule{Gen: 1, Playing: true, At: start, Pos: 0})
	rng := rand.New(rand.NewPCG(1, 2))
	var f Follower
	out := make([]float32, block)
	var hb, gb int
	nextSync, nextSteer := 0.0, 0.0
	worst, steady := 0.0, 0.0
	lastSteer := 0.0
	rateSum, rates := 0.0, 0
	for now := 0.0; now < float64(5*time.Minute); {
		// Whichever device's block comes first runs.
		th, tg := float64(hb)*hostBlock, float64(gb)*guestBlock+137e3
		if th <= tg {
			now = th
			host.Read(out, int64(th))
			hb++
			if now >= nextSync {
				s := host.Snapshot()
				if f.Host(s) {
					guest.Schedule(Schedule{Gen: 1, Playing: true, At: start - offset, Pos: 0})
				}
				nextSync += float64(250 * time.Millisecond)
			}
			continue
		}
		now = tg
		guestAt := int64(tg) - offset
		pos, playing := guest.Read(out, guestAt)
		gb++
		if playing && now > float64(start) {
			want := (now - float64(start)) * audio.SampleRate / 1e9
			e := math.Abs(pos - want)
			if now > float64(5*time.Second) {
				worst = max(worst, e)
				steady = e
			}
		}
		if now >= nextSteer {
			g := guest.Snapshot()
			noise := (rng.Float64()*2 - 1) * 0.2e6
			g.At += offset + int64(noise)
			rate, jump := f.Steer(g, (now-lastSteer)/1e9)
			lastSteer = now
			if jump != nil {
				jump.At -= offset
				jump.Gen = 2
				guest.Schedule(*jump)
			}
			guest.SetRate(rate)
			if now > float64(4*time.Minute) {
				rateSum += rate
				rates++
			}
			nextSteer += float64(100 * time.Millisecond)
		}
	}
	mean := rateSum / float64(rates)
	t.Logf("worst error after 5 s: %.1f samples (%.2f ms); at the end %.1f; mean rate in the last minute %.6f",
		worst, worst/48, steady, mean)
	if worst > 48 {
		t.Errorf("the guest's track strayed %.1f samples (%.2f ms) from the host's", worst, worst/48)
	}
	if math.Abs(mean-1/(1+ppm*1e-6)) > 5e-6 {
		t.Errorf("mean rate %.6f does not follow the %d ppm drift", mean, ppm)
	}
}

func TestHermiteExactAtWholeIndices(t *testing.T) {
	p := []float32{0, 1, 0, -1, 0}
	for i, v := range p {
		if got := hermite(p, float64(i)); got != v {
			t.Errorf("hermite(%d) = %v", i, got)
		}
	}
	if got := hermite(p, 0.5); got < 0.5 || got > 0.8 {
		t.Errorf("hermite(0.5) = %v", got)
	}
}

func BenchmarkPlayerRead(b *testing.B) {
	p := NewPlayer()
	p.SetTrack(ramp(48000 * 60))
	p.Schedule(Schedule{Gen: 1, Playing: true})
	p.SetRate(1.0001)
	out := make([]float32, 128)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Read(out, int64(i)*2666666)
	}
}
