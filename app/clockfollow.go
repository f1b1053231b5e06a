package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/net/clock"
	"github.com/duetapp/duet/net/ntpcheck"
)

// pingInterval is how often the guest measures the clocks; for the first
// fastPingFor of a connection, every fastPingInterval.
const (
	pingInterval     = 100 * time.Millisecond
	fastPingInterval = 20 * time.Millisecond
	fastPingFor      = 10 * time.Second
)

// clockLink is the clock follower's way to the partner: the connection
// supervisor's current connection.
type clockLink interface {
	// connID is the current connection's number (0 before the first).
	connID() uint32
	// sendClock sends on its clock channel, if there is one open.
	sendClock(b []byte)
}

// clockFollower measures the host's session clock against this one's
// (guest) and answers the guest's pings (host); it also asks an NTP
// server once, as a cross-check (Config.NTPServer).
//
// The guest pings from run's goroutine. Pongs arrive on the peer's
// goroutine (onClock), which stamps them and hands them to run; run alone
// touches the estimator and publishes each new estimate. The host answers
// a ping at once on the peer's goroutine and keeps no state. estimate and
// ntpStatus are safe from any goroutine.
type clockFollower struct {
	host bool
	now  func() int64 // the session clock, ns
	link clockLink
	ntp  string // the server to ask; empty for none
	log  *slog.Logger

	estimator *clock.Estimator  // run's goroutine
	samples   chan clock.Sample // peer goroutines → run
	up        chan struct{}     // a connection came up: ping fast (latest only)

	latest   atomic.Pointer[estimated]
	ntpState atomic.Pointer[NTPStatus]
}

// estimated is one published estimate, or why there is none yet.
type estimated struct {
	est clock.Estimate
	err error
}

func newClockFollower(host bool, now func() int64, link clockLink, ntpServer string, log *slog.Logger) *clockFollower {
	f := &clockFollower{
		host: host,
		now:  now,
		link: link,
		ntp:  ntpServer,
		log:  log,
		// Thirty seconds of pings at the steady rate (the first ten
		// seconds' fast pings would otherwise crowd the window to five).
		estimator: clock.New(900),
		samples:   make(chan clock.Sample, 64),
		up:        make(chan struct{}, 1),
	}
	f.latest.Store(&estimated{err: clock.ErrNoSamples})
	f.ntpState.Store(&NTPStatus{})
	return f
}

// run pings (guest) and keeps the estimate until ctx is done.
func (f *clockFollower) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if f.ntp != "" {
		wg.Go(func() { f.checkNTP(ctx) })
	}
	if f.host {
		return // pongs need no goroutine
	}
	steady := time.NewTicker(pingInterval)
	defer steady.Stop()
	var fast *time.Ticker // while a connection is new
	var fastPings <-chan time.Time
	var fastUntil time.Time
	defer func() {
		if fast != nil {
			fast.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.up:
			if fast != nil {
				fast.Stop()
			}
			fast = time.NewTicker(fastPingInterval)
			fastPings, fastUntil = fast.C, time.Now().Add(fastPingFor)
		case <-steady.C:
			f.ping()
		case now := <-fastPings:
			// The first seconds of a connection ping five times as often:
			// the estimate needs fast samples each way, and on a jittery
			// path they are rare.
			if now.Before(fastUntil) {
				f.ping()
			} else {
				fast.Stop()
				fast, fastPings = nil, nil
			}
		case s := <-f.samples:
			f.add(s)
		}
	}
}

// connected tells the follower a connection came up. Never blocks.
func (f *clockFollower) connected() {
	select {
	case f.up <- struct{}{}:
	default: // one is already waiting
	}
}

// ping sends a clock ping (if the channel is not open yet, the next one
// goes).
func (f *clockFollower) ping() {
	f.link.sendClock(clock.AppendPing(make([]byte, 0, clock.PingSize), f.now()))
}

// onClock handles a clock message on connection conn, on its peer's
// goroutine: the host answers pings at once; the guest hands each pong to
// run.
func (f *clockFollower) onClock(conn uint32, b []byte) {
	if conn != f.link.connID() {
		return
	}
	if f.host {
		t2 := f.now()
		t1, err := clock.ParsePing(b)
		if err != nil {
			return
		}
		f.link.sendClock(clock.AppendPong(make([]byte, 0, clock.PongSize), t1, t2, f.now()))
		return
	}
	t4 := f.now()
	t1, t2, t3, err := clock.ParsePong(b)
	if err != nil {
		return
	}
	select {
	case f.samples <- clock.Sample{T1: t1, T2: t2, T3: t3, T4: t4}:
	default: // run is behind; pings keep coming
	}
}

// add puts a sample into the estimate and publishes it; run's goroutine.
func (f *clockFollower) add(s clock.Sample) {
	if err := f.estimator.Add(s); err != nil {
		f.log.Debug("clock sample rejected", "err", err)
		return
	}
	est, err := f.estimator.Estimate()
	f.latest.Store(&estimated{est, err})
}

// estimate returns the latest estimate of the host's clock against this
// one's; an error until the first pong. Safe from any goroutine.
func (f *clockFollower) estimate() (clock.Estimate, error) {
	e := f.latest.Load()
	return e.est, e.err
}

// ntpStatus returns the NTP cross-check's answer (zero while asking, or
// without a server). Safe from any goroutine.
func (f *clockFollower) ntpStatus() NTPStatus { return *f.ntpState.Load() }

// checkNTP asks the NTP server once how far this machine's clock is off.
func (f *clockFollower) checkNTP(ctx context.Context) {
	r, err := ntpcheck.Check(ctx, ntpcheck.Config{Server: f.ntp})
	st := NTPStatus{Server: f.ntp, Offset: r.Offset, RTT: r.RTT}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		st.Err = err.Error()
		f.log.Info("no NTP cross-check", "server", f.ntp, "err", err)
	} else {
		f.log.Info("NTP cross-check", "server", r.Server, "offset", r.Offset, "rtt", r.RTT, "stratum", r.Stratum)
	}
	f.ntpState.Store(&st)
}
