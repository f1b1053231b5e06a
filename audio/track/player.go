package track

import (
	"math"
	"sync/atomic"

	"github.com/duetapp/duet/audio"
)

// Schedule says what a Player plays: from track position Pos (in samples;
// negative is before the song) at session-clock instant At (nanoseconds),
// onwards, when Playing. CountIn clicks that many beats of Beat samples
// before Pos. Gen numbers schedules: a new one replaces the last.
type Schedule struct {
	Gen     uint32
	Playing bool
	At      int64
	Pos     int64
	CountIn int
	Beat    int64
}

// DefaultBeat is the count-in's beat: 120 beats a minute.
const DefaultBeat = audio.SampleRate / 2

// Snapshot is where a Player was at its latest block: track position Pos
// (fractional samples) played at session-clock instant At, under schedule
// Gen. Valid is false before the first block.
type Snapshot struct {
	Gen     uint32
	Playing bool
	At      int64
	Pos     float64
	Valid   bool
}

// Player plays a track on the audio thread. Its owner sets the track, the
// schedule and the rate from any goroutine; Read runs on the audio thread
// and neither blocks nor allocates. Without a track it still keeps the
// timeline (a silent song), which is what a take without a backing track
// is recorded on.
type Player struct {
	track atomic.Pointer[Track]
	sched atomic.Pointer[Schedule]
	rate  atomic.Uint64 // float64 bits: track samples per device sample

	// audio thread
	cur     *Schedule
	pos     float64
	started bool

	// published by the audio thread (a sequence lock: odd while writing)
	seq                    atomic.Uint64
	snapAt                 atomic.Int64
	snapPos                atomic.Uint64
	snapGen                atomic.Uint32
	snapPlaying, snapValid atomic.Bool
}

// NewPlayer returns a stopped player at rate 1.
func NewPlayer() *Player {
	p := &Player{}
	p.rate.Store(math.Float64bits(1))
	p.sched.Store(&Schedule{})
	return p
}

// SetTrack sets what plays (nil: a silent timeline).
func (p *Player) SetTrack(t *Track) { p.track.Store(t) }

// Track returns what plays, or nil.
func (p *Player) Track() *Track { return p.track.Load() }

// Schedule sets what plays from now on.
func (p *Player) Schedule(s Schedule) { p.sched.Store(&s) }

// Current returns the schedule last set.
func (p *Player) Current() Schedule { return *p.sched.Load() }

// SetRate sets how many track samples each device sample advances: 1 on
// the host, near 1 on a guest following the host.
func (p *Player) SetRate(r float64) { p.rate.Store(math.Float64bits(r)) }

// Rate returns the rate last set.
func (p *Player) Rate() float64 { return math.Float64frombits(p.rate.Load()) }

// Snapshot returns where the player was at its latest block.
func (p *Player) Snapshot() Snapshot {
	for {
		s1 := p.seq.Load()
		if s1&1 == 1 {
			continue
		}
		s := Snapshot{
			Gen:     p.snapGen.Load(),
			Playing: p.snapPlaying.Load(),
			At:      p.snapAt.Load(),
			Pos:     math.Float64frombits(p.snapPos.Load()),
			Valid:   p.snapValid.Load(),
		}
		if p.seq.Load() == s1 {
			return s
		}
	}
}

// Read fills out with the track as scheduled, out[0] being heard at
// session-clock instant at. It returns the track position of out[0] and
// whether the timeline runs (playing, count-in included).
func (p *Player) Read(out []float32, at int64) (pos float64, playing bool) {
	if s := p.sched.Load(); s != p.cur {
		p.cur = s
		p.started = false
	}
	s := p.cur
	if !s.Playing {
		clear(out)
		p.publish(s, at, 0, false)
		return 0, false
	}
	if !p.started {
		// Where the schedule puts this block: the song may be under way.
		// Whole samples: the host then plays the file sample for sample.
		p.pos = math.Round(float64(s.Pos) + float64(at-s.At)*audio.SampleRate/1e9)
		p.started = true
	}
	pos = p.pos
	p.publish(s, at, pos, true)
	rate := math.Float64frombits(p.rate.Load())
	var samples []float32
	if t := p.track.Load(); t != nil {
		samples = t.Samples
	}
	x := p.pos
	for i := range out {
		switch {
		case x < float64(s.Pos):
			out[i] = click(x, s)
		case x >= 0 && x < float64(len(samples)):
			out[i] = hermite(samples, x)
		default:
			out[i] = 0
		}
		x += rate
	}
	p.pos = x
	return pos, true
}

func (p *Player) publish(s *Schedule, at int64, pos float64, playing bool) {
	p.seq.Add(1)
	p.snapGen.Store(s.Gen)
	p.snapPlaying.Store(playing)
	p.snapAt.Store(at)
	p.snapPos.Store(math.Float64bits(pos))
	p.snapValid.Store(true)
	p.seq.Add(1)
}

// click is the count-in at position x before the schedule's Pos: a short
// decaying tone on each beat, the first one higher.
func click(x float64, s *Schedule) float32 {
	before := float64(s.Pos) - x // > 0
	if s.CountIn <= 0 || s.Beat <= 0 || before > float64(int64(s.CountIn)*s.Beat) {
		return 0
	}
	beats := int64(math.Ceil(before / float64(s.Beat))) // 1 … CountIn
	into := float64(beats)*float64(s.Beat) - before     // samples since the click
	const length = 0.03 * audio.SampleRate
	if into >= length {
		return 0
	}
	hz := 1500.0
	if beats == int64(s.CountIn) {
		hz = 2000
	}
	t := into / audio.SampleRate
	return float32(0.5 * math.Sin(2*math.Pi*hz*t) * math.Exp(-into/(length/5)))
}

// hermite reads p at fractional index x (0 ≤ x < len(p)) by 4-point cubic
// Hermite interpolation; at whole indices it is exact.
func hermite(p []float32, x float64) float32 {
	i := int(x)
	f := float32(x - float64(i))
	if f == 0 {
		return p[i]
	}
	at := func(j int) float32 {
		if j < 0 || j >= len(p) {
			return 0
		}
		return p[j]
	}
	xm, x0, x1, x2 := at(i-1), p[i], at(i+1), at(i+2)
	c1 := (x1 - xm) / 2
	c2 := xm - 2.5*x0 + 2*x1 - x2/2
	c3 := (x2-xm)/2 + 1.5*(x0-x1)
	return ((c3*f+c2)*f+c1)*f + x0
}
