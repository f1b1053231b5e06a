package app

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/net/clock"
)

// fakeClockLink is a connection that keeps what the follower sends.
type fakeClockLink struct {
	sent chan []byte
}

func (l *fakeClockLink) connID() uint32 { return 1 }

func (l *fakeClockLink) ourQueue(uint32, time.Duration, time.Time) {}

func (l *fakeClockLink) sendClock(b []byte) {
	select {
	case l.sent <- b:
	default: // a test that does not read them
	}
}

// TestHostReportsFastestVoice: the host reports, on the clock channel, the
// fastest of the guest's stamped voice packets since its last report, and
// ignores those of a connection gone.
func TestHostReportsFastestVoice(t *testing.T) {
	t.Parallel()
	link := &fakeClockLink{sent: make(chan []byte, 16)}
	var now atomic.Int64
	f := newClockFollower(true, now.Load, link, "", testkit.Logger(t))
	const offset = int64(7 * time.Second) // host minus guest
	for i, d := range []time.Duration{31, 12, 40, 19} {
		sent := int64(i) * int64(5*time.Millisecond)
		f.onVoice(1, clock.Stamp(sent), sent+offset+int64(d*time.Millisecond))
	}
	f.onVoice(2, clock.Stamp(0), offset) // faster, but on a stale connection
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case b := <-link.sent:
		stamp, at, err := clock.ParseHeard(b)
		want := int64(5 * time.Millisecond)
		if err != nil || stamp != clock.Stamp(want) || at != want+offset+int64(12*time.Millisecond) {
			t.Fatalf("reported stamp %d at %d (%v), want %d at %d", stamp, at, err, clock.Stamp(want), want+offset+int64(12*time.Millisecond))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5 s")
	}
}

// TestGuestUsesVoiceTrips: a guest whose pings queue 20 ms on the way out
// (so they alone put the offset 10 ms off) reads the offset from the
// voice's trips, which met no queue: the host's report of the guest's
// voice, and the host's voice it stamps itself.
func TestGuestUsesVoiceTrips(t *testing.T) {
	t.Parallel()
	link := &fakeClockLink{sent: make(chan []byte, 64)}
	var now atomic.Int64 // the guest's clock
	f := newClockFollower(false, now.Load, link, "", testkit.Logger(t))
	const (
		offset = int64(3 * time.Second) // host minus guest
		oneWay = int64(40 * time.Millisecond)
		queue  = int64(20 * time.Millisecond) // the pings' wait on the way out
	)
	for i := range 50 {
		t0 := int64(i) * int64(100*time.Millisecond)
		// A ping and its pong.
		t2 := t0 + oneWay + queue + offset
		now.Store(t0 + 2*oneWay + queue)
		f.onClock(1, clock.AppendPong(nil, t0, t2, t2))
		// A voice packet each way that met no queue, and the host's
		// report of the guest's.
		f.onVoice(1, clock.Stamp(t0+offset), t0+oneWay)
		f.onClock(1, clock.AppendHeard(nil, clock.Stamp(t0), t0+oneWay+offset))
		f.ping()
	}
	est, err := f.estimate()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(int64(est.Offset) - offset); d.Abs() > 10*time.Microsecond {
		t.Errorf("offset %v, want %v: %v off (pings alone: 10 ms)", est.Offset, time.Duration(offset), d)
	}
}

// TestGuestFastPingsEndWithStampedVoice: a new connection's fast pings go
// on while the estimate has only pings, and end once the host's stamped
// voice has gone into it (its trips carry the estimate from then on, and
// on a slow link the pings crowded the voice).
func TestGuestFastPingsEndWithStampedVoice(t *testing.T) {
	t.Parallel()
	link := &fakeClockLink{sent: make(chan []byte, 256)}
	var now atomic.Int64 // the guest's clock
	f := newClockFollower(false, now.Load, link, "", testkit.Logger(t))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f.connected()
	// pings counts the pings sent over d, the host's voice coming every
	// 10 ms if voice is set.
	pings := func(d time.Duration, voice bool) (n int) {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.After(d)
		for {
			select {
			case b := <-link.sent:
				if _, err := clock.ParsePing(b); err == nil {
					n++
				}
			case <-tick.C:
				if voice {
					at := now.Add(int64(10 * time.Millisecond))
					f.onVoice(1, clock.Stamp(at+int64(time.Second)), at+int64(20*time.Millisecond))
				}
			case <-end:
				return n
			}
		}
	}
	// Fast: every fastPingInterval (10 in half a second), where steady
	// would be 2.
	if n := pings(500*time.Millisecond, false); n < 5 {
		t.Fatalf("%d pings in the connection's first half second, want fast ones", n)
	}
	// A pong for an estimate, then stamped voice: within a few pings it
	// goes into the estimate, and the next second has steady pings only
	// (4; fast would be 20).
	f.onClock(1, clock.AppendPong(nil, 0, int64(time.Second), int64(time.Second)))
	pings(300*time.Millisecond, true)
	if n := pings(time.Second, true); n > 8 {
		t.Errorf("%d pings in a second of stamped voice, want the steady %d", n, int(time.Second/pingInterval))
	}
}
