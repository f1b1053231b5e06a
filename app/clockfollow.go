package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/net/clock"
	"github.com/duetapp/duet/net/congestion"
	"github.com/duetapp/duet/net/ntpcheck"
)

// pingInterval is how often the guest measures the clocks; for the first
// fastPingFor of a connection, every fastPingInterval (with pings until
// the partner's stamped voice goes into the estimate, then with its voice
// alone: see run). heardInterval is
// how often the host reports the fastest of the guest's voice packets.
// The stamped voice carries most of the estimate, so the messages are few:
// each costs about 100 bytes on the wire and its acknowledgement as much
// (at 100 and 20 ms they took 55-140 kbit/s each way, more than a slow
// link's voice: duetlab bottleneck's data_kbps).
const (
	pingInterval     = 250 * time.Millisecond
	fastPingInterval = 50 * time.Millisecond
	fastPingFor      = 5 * time.Second
	heardInterval    = 250 * time.Millisecond
)

// clockWindow is how much of the past the estimate reads: long enough for
// the drift, short enough that a path's changed delay soon shows.
const clockWindow = 30 * time.Second

// clockLink is the clock follower's way to the partner: the connection
// supervisor's current connection.
type clockLink interface {
	// connID is the current connection's number (0 before the first).
	connID() uint32
	// sendClock sends on its clock channel, if there is one open.
	sendClock(b []byte)
	// ourQueue takes our voice's standing queue on connection conn, as
	// the partner's report that came at at shows it; never blocks.
	ourQueue(conn uint32, q time.Duration, at time.Time)
}

// clockFollower measures the host's session clock against this one's
// (guest) and answers the guest's pings (host); it also asks an NTP
// server once, as a cross-check (Config.NTPServer).
//
// Both sides' voice packets carry their sender's session clock (a
// clock.Stamp, see peer's timing.go), and each side keeps the fastest of
// its partner's over an interval (onVoice, on the peer's reader
// goroutine): the host reports its to the guest every heardInterval (a
// clock.Heard on the clock channel), the guest adds its own at each ping.
// The guest reports the host's too, with each ping: each side's reports
// of its own voice are its direction's one-way delay, whose floor is that
// direction's standing queue (congestion.OneWay), for its congestion
// control (clockLink.ourQueue). These trips, hundreds a second where pings are ten, are what makes the
// estimate good to a tenth of a millisecond on a jittery path; the pings
// remain for a partner whose voice is not stamped, and until the first
// estimate (a stamp is read against a time known to within seconds).
//
// The guest pings from run's goroutine. Pongs and reports arrive on the
// peer's goroutine (onClock), which stamps them and adds them to the
// estimator (safe for concurrent use); run estimates and publishes at
// each ping. The host answers a ping at once on the peer's goroutine;
// its run reports. estimate and ntpStatus are safe from any goroutine.
type clockFollower struct {
	host bool
	now  func() int64 // the session clock, ns
	link clockLink
	ntp  string // the server to ask; empty for none
	log  *slog.Logger

	estimator *clock.Estimator
	voice     clock.Fastest // the partner's fastest voice packet since the last take
	toReport  clock.Fastest // guest: the same since the last report of it to the host

	// queueMu guards queue, our voice's one-way delay on connection
	// queueConn, from the partner's reports (the peers' goroutines).
	queueMu   sync.Mutex
	queue     congestion.OneWay
	queueConn uint32
	up        chan struct{} // a connection came up: ping fast (latest only)

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
		host:      host,
		now:       now,
		link:      link,
		ntp:       ntpServer,
		log:       log,
		estimator: clock.New(clockWindow),
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
		f.report(ctx)
		return
	}
	steady := time.NewTicker(pingInterval)
	defer steady.Stop()
	var fast *time.Ticker // while a connection is new
	var fastPings <-chan time.Time
	var fastUntil time.Time
	stamped := false // a stamped voice packet went into the estimate since the connection came up
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
			fastPings, fastUntil, stamped = fast.C, time.Now().Add(fastPingFor), false
		case <-steady.C:
			f.ping()
		case now := <-fastPings:
			// The first seconds of a connection sample five times as
			// often: the estimate needs fast samples each way, and on a
			// jittery path they are rare. Once a stamped voice packet has
			// gone into it, the voice's trips carry it, and the pings
			// (with their acknowledgements, 60 kbit/s) would only crowd a
			// slow link: the fast ticks then take the voice's only.
			switch {
			case !now.Before(fastUntil):
				fast.Stop()
				fast, fastPings = nil, nil
			case stamped:
				f.sample()
			default:
				stamped = f.ping()
			}
		}
	}
}

// report sends the host's reports of the guest's voice until ctx is done.
func (f *clockFollower) report(ctx context.Context) {
	tick := time.NewTicker(heardInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if stamp, at, ok := f.voice.Take(); ok {
				f.link.sendClock(clock.AppendHeard(make([]byte, 0, clock.HeardSize), stamp, at))
			}
		}
	}
}

// onVoice takes the stamp of a partner's voice packet on connection conn,
// read at at; the peer's reader goroutine, per packet.
func (f *clockFollower) onVoice(conn uint32, stamp uint32, at int64) {
	if conn == f.link.connID() {
		f.voice.Add(stamp, at)
		if !f.host {
			f.toReport.Add(stamp, at)
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

// ping samples and sends a clock ping (if the channel is not open yet,
// the next one goes), and with it a report of the host's fastest voice
// packet since the last (for the host's congestion control: its
// direction's queue); it reports whether a voice packet went into the
// estimate.
func (f *clockFollower) ping() (stamped bool) {
	stamped = f.sample()
	f.link.sendClock(clock.AppendPing(make([]byte, 0, clock.PingSize), f.now()))
	if stamp, at, ok := f.toReport.Take(); ok {
		f.link.sendClock(clock.AppendHeard(make([]byte, 0, clock.HeardSize), stamp, at))
	}
	return stamped
}

// sample adds the host's fastest voice packet since the last sample to
// the estimate and publishes it; it reports whether a voice packet went
// in.
func (f *clockFollower) sample() (stamped bool) {
	if stamp, at, ok := f.voice.Take(); ok {
		// The host sent it about when its clock read at + offset.
		if est, err := f.estimate(); err == nil {
			f.estimator.AddBackward(clock.Unstamp(stamp, at+int64(est.Offset)), at)
			stamped = true
		}
	}
	est, err := f.estimator.Estimate()
	f.latest.Store(&estimated{est, err})
	return stamped
}

// onClock handles a clock message on connection conn, on its peer's
// goroutine: the host answers pings at once; the guest adds each pong and
// each report of its voice to the estimate.
func (f *clockFollower) onClock(conn uint32, b []byte) {
	if conn != f.link.connID() {
		return
	}
	if f.host {
		t2 := f.now()
		if stamp, at, err := clock.ParseHeard(b); err == nil {
			f.heard(conn, clock.Unstamp(stamp, t2), at)
			return
		}
		t1, err := clock.ParsePing(b)
		if err != nil {
			return
		}
		f.link.sendClock(clock.AppendPong(make([]byte, 0, clock.PongSize), t1, t2, f.now()))
		return
	}
	t4 := f.now()
	if stamp, at, err := clock.ParseHeard(b); err == nil {
		// The report is of a packet sent within the last second or so.
		sent := clock.Unstamp(stamp, t4)
		f.estimator.AddForward(sent, at)
		f.heard(conn, sent, at)
		return
	}
	t1, t2, t3, err := clock.ParsePong(b)
	if err != nil {
		return
	}
	if err := f.estimator.Add(clock.Sample{T1: t1, T2: t2, T3: t3, T4: t4}); err != nil {
		f.log.Debug("clock sample rejected", "err", err)
	}
}

// heard takes the partner's report of our fastest voice packet of an
// interval on connection conn, sent at sent (our session clock) and
// received at received (theirs): our direction's standing queue goes to
// the link.
func (f *clockFollower) heard(conn uint32, sent, received int64) {
	now := time.Now()
	f.queueMu.Lock()
	if conn != f.queueConn {
		f.queue, f.queueConn = congestion.OneWay{}, conn // another path
	}
	q := f.queue.Add(now, sent, received)
	f.queueMu.Unlock()
	f.link.ourQueue(conn, q, now)
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
