package track

import (
	"math"

	"github.com/duetapp/duet/audio"
)

// Follower steers a guest's Player so that it plays the host's track
// position at the same instant as the host: the host reports where its
// player was (Snapshot, on its own clock) a few times a second; the guest
// maps its own snapshots onto the host's clock and sets its player's rate
// (a proportional-integral control on the position error, so a sound
// card's drift is followed without a pitch anyone hears) or, when far off,
// reschedules it.
//
// It belongs to one goroutine.
type Follower struct {
	gen     uint32
	playing bool
	points  []hostPoint // the host's recent snapshots, oldest first
	integ   float64
	err     float64
}

type hostPoint struct {
	at  float64 // host session clock, ns
	pos float64
}

// followPoints is how many host snapshots the fit keeps.
const followPoints = 16

// Follower limits: a position error above jumpAt reschedules; the rate
// stays within ±maxDeviation of 1 (0.2 %, about 3 cents).
const (
	jumpAt       = 0.010 * audio.SampleRate
	maxDeviation = 0.002
)

// Host records the host's snapshot s. It returns true when the host's
// schedule changed (a new generation, or play/stop): the caller then
// reschedules its player with Schedule(s, offset).
func (f *Follower) Host(s Snapshot) (changed bool) {
	if s.Gen != f.gen || s.Playing != f.playing {
		f.gen, f.playing = s.Gen, s.Playing
		f.points = f.points[:0]
		f.integ = 0
		changed = true
	}
	if s.Playing {
		if len(f.points) == followPoints {
			copy(f.points, f.points[1:])
			f.points = f.points[:followPoints-1]
		}
		f.points = append(f.points, hostPoint{float64(s.At), s.Pos})
	}
	return changed
}

// Playing reports whether the host's timeline runs.
func (f *Follower) Playing() bool { return f.playing }

// Expected returns the host's track position at host instant at, from a
// line through its recent snapshots; ok is false before the first.
func (f *Follower) Expected(at int64) (pos float64, ok bool) {
	n := len(f.points)
	if n == 0 {
		return 0, false
	}
	last := f.points[n-1]
	slope := float64(audio.SampleRate) / 1e9 // samples per ns, until fitted
	if n >= 4 {
		var sx, sy, sxx, sxy float64
		for _, p := range f.points {
			x, y := p.at-last.at, p.pos-last.pos
			sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
		}
		k := float64(n)
		if d := k*sxx - sx*sx; d > 0 {
			slope = (k*sxy - sx*sy) / d
			icpt := (sy - slope*sx) / k
			return last.pos + icpt + slope*(float64(at)-last.at), true
		}
	}
	return last.pos + slope*(float64(at)-last.at), true
}

// Steer compares the guest's snapshot g (its At already mapped onto the
// host's clock) with where the host was at that instant, and returns the
// rate to play at, or jump with the schedule to restart from when the
// error is too large to glide away. dt is the time since the last Steer,
// in seconds.
func (f *Follower) Steer(g Snapshot, dt float64) (rate float64, jump *Schedule) {
	want, ok := f.Expected(g.At)
	if !ok || !g.Playing || !g.Valid || g.Gen != f.gen {
		f.integ = 0
		return 1, nil
	}
	e := want - g.Pos // samples the guest is behind
	f.err = e
	if math.Abs(e) > jumpAt {
		f.integ = 0
		return 1, &Schedule{Playing: true, At: g.At, Pos: int64(math.Round(want))}
	}
	// A PI control damped at about 0.7: it closes an error in a couple of
	// seconds and learns the sound cards' drift in a few without
	// overshooting much (a proportional part alone would trail 100 ppm by
	// 0.2 ms); faster would chase the clock estimate's jitter. While the
	// rate sits at its limit the integral holds (no wind-up).
	// (TestFollowerDrift: within 0.1 ms from 5 s on.)
	const kp, ki = 0.6, 0.18
	es := e / audio.SampleRate
	out := f.integ + kp*es
	if math.Abs(out) < maxDeviation {
		f.integ = max(-maxDeviation, min(maxDeviation, f.integ+ki*es*dt))
	}
	return 1 + max(-maxDeviation, min(maxDeviation, f.integ+kp*es)), nil
}

// Error is the position error at the last Steer, in samples (positive:
// the guest is behind).
func (f *Follower) Error() float64 { return f.err }
