package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/signal"
)

// loadRooms is how many rooms the load scenario opens at once: twice as
// many sockets.
const loadRooms = 1000

// loadLimits lift the per-address limits for the load test: every client
// comes from 127.0.0.1, which the default limits rightly throttle and cap.
var loadLimits = signal.Limits{Joins: 1e9, Creates: 1e9, JoinBurst: 1e9, CreateBurst: 1e9,
	Sockets: 4 * loadRooms, SocketsPerAddress: 4 * loadRooms}

// load opens 1,000 rooms (2,000 sockets, all open at once) on a loopback
// rendezvous server and runs a full exchange in each: offer and answer of
// ~3 KB and six trickled candidates each way, every message checked byte
// for byte at the other end. It reports relay latency, heap per room and
// lost or misrouted messages; then the same with the host on one instance
// and the guest on another, sharing the Redis at $DUET_REDIS.
func load(ctx context.Context, w io.Writer) ([]string, error) {
	fmt.Fprintf(w, "Per-address limits raised for this test (create and join unlimited): all %d clients share 127.0.0.1.\n", 2*loadRooms)
	fmt.Fprintln(w, "Latency: send to receive, 100 rooms exchanging at once; heap/room counts the servers and both clients (one process).")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\trooms\tsockets\trelayed\tlost\tmisrouted\tp50 ms\tp99 ms\tmax ms\theap/room KB\tsetup s\texchange s\t")
	row := func(name string, r loadResult) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t\n", name, r.rooms, 2*r.rooms, r.relayed,
			r.lost, r.misrouted, ms(r.p(0.5)), ms(r.p(0.99)), ms(r.p(1)), r.heapPerRoom/1024, r.setup.Seconds(), r.exchange.Seconds())
	}

	mem, err := loadRun(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	row("memory, 1 instance", mem)
	kv := []string{fmt.Sprintf("rooms=%d p50_ms=%.2f p99_ms=%.2f lost=%d misrouted=%d heap_per_room_kb=%.1f",
		mem.rooms, ms(mem.p(0.5)), ms(mem.p(0.99)), mem.lost, mem.misrouted, mem.heapPerRoom/1024)}

	addr := os.Getenv("DUET_REDIS")
	if addr == "" {
		fmt.Fprintln(tw, "redis, 2 instances\t—\t\t\t\t\t\t\t\t\t\t\t")
		if err := tw.Flush(); err != nil {
			return nil, err
		}
		fmt.Fprintln(w, "redis row skipped: set DUET_REDIS=host:port (e.g. 127.0.0.1:6390) to run it")
		return append(kv, "redis=skipped"), nil
	}
	red, err := loadRun(ctx, &addr)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	row("redis, host on A, guest on B", red)
	kv = append(kv, fmt.Sprintf("redis_rooms=%d redis_p50_ms=%.2f redis_p99_ms=%.2f redis_lost=%d redis_misrouted=%d",
		red.rooms, ms(red.p(0.5)), ms(red.p(0.99)), red.lost, red.misrouted))
	return kv, tw.Flush()
}

type loadResult struct {
	rooms, relayed, lost, misrouted int
	lat                             []time.Duration // sorted
	heapPerRoom                     float64         // bytes, servers and clients together
	setup, exchange                 time.Duration
}

// p returns the q-quantile of the relay latency.
func (r loadResult) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(int(q*float64(len(r.lat))), len(r.lat)-1)]
}

// labServer serves a rendezvous server on a loopback port until stop.
type labServer struct {
	url  string
	stop func() error
}

func startLabServer(ctx context.Context, cfg signal.ServerConfig) (*labServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- signal.Serve(ctx, ln, signal.NewServer(cfg), nil) }()
	return &labServer{
		url:  signal.URL(ln.Addr(), false),
		stop: func() error { cancel(); return <-done },
	}, nil
}

// loadRun runs the load on one server in memory, or with redisAddr on two
// sharing that Redis.
func loadRun(ctx context.Context, redisAddr *string) (loadResult, error) {
	var res loadResult
	var servers []*labServer
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	prefix := "duetlab:" + rand.Text()[:8] + ":"
	for range map[bool]int{false: 1, true: 2}[redisAddr != nil] {
		cfg := signal.ServerConfig{Limits: loadLimits}
		if redisAddr != nil {
			cfg.Store = signal.NewRedisStore(redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: 64}), prefix, nil)
		}
		s, err := startLabServer(ctx, cfg)
		if err != nil {
			return res, err
		}
		servers = append(servers, s)
	}
	if redisAddr != nil {
		defer cleanRedis(*redisAddr, prefix)
	}
	hostURL, guestURL := servers[0].url, servers[len(servers)-1].url

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	// Open every room first, so that all 2,000 sockets are open at once.
	rooms := make([]*loadRoom, loadRooms)
	start := time.Now()
	if err := parallel(ctx, 50, loadRooms, func(ctx context.Context, i int) error {
		r, err := openLoadRoom(ctx, hostURL, guestURL)
		rooms[i] = r
		return err
	}); err != nil {
		closeLoadRooms(rooms)
		return res, err
	}
	res.setup = time.Since(start)
	res.rooms = loadRooms
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	res.heapPerRoom = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / loadRooms

	var mu sync.Mutex
	var lost, misrouted, relayed atomic.Int64
	start = time.Now()
	err := parallel(ctx, 100, loadRooms, func(ctx context.Context, i int) error {
		lat, st := rooms[i].exchange(ctx, i)
		lost.Add(int64(st.lost))
		misrouted.Add(int64(st.misrouted))
		relayed.Add(int64(st.relayed))
		mu.Lock()
		res.lat = append(res.lat, lat...)
		mu.Unlock()
		return nil
	})
	res.exchange = time.Since(start)
	closeLoadRooms(rooms)
	if err != nil {
		return res, err
	}
	slices.Sort(res.lat)
	res.lost, res.misrouted, res.relayed = int(lost.Load()), int(misrouted.Load()), int(relayed.Load())
	return res, nil
}

// cleanRedis deletes the keys under prefix.
func cleanRedis(addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

// parallel runs f(0…n-1) on at most width goroutines and returns the
// first error.
func parallel(ctx context.Context, width, n int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range width {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// loadRoom is one room's two clients.
type loadRoom struct {
	host, guest *signal.Conn
	code        signal.Code
}

func openLoadRoom(ctx context.Context, hostURL, guestURL string) (*loadRoom, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := &loadRoom{}
	var err error
	if r.host, err = signal.Dial(ctx, hostURL); err != nil {
		return r, err
	}
	if r.guest, err = signal.Dial(ctx, guestURL); err != nil {
		return r, err
	}
	if r.code, err = r.host.Create(ctx); err != nil {
		return r, fmt.Errorf("create: %w", err)
	}
	if err := r.guest.Join(ctx, r.code); err != nil {
		return r, fmt.Errorf("join: %w", err)
	}
	if m, err := r.host.Recv(ctx); err != nil || m.Type != signal.TypePeerJoined {
		return r, fmt.Errorf("waiting for peer-joined: %+v, %v", m, err)
	}
	return r, nil
}

func closeLoadRooms(rooms []*loadRoom) {
	var wg sync.WaitGroup
	for _, r := range rooms {
		if r == nil {
			continue
		}
		wg.Go(func() {
			if r.host != nil {
				r.host.Close()
			}
			if r.guest != nil {
				r.guest.Close()
			}
		})
	}
	wg.Wait()
}

type exchangeStats struct{ relayed, lost, misrouted int }

// exchange runs the offer/answer/candidate exchange of room i, checking
// each message at the other end, and returns each message's relay time.
func (r *loadRoom) exchange(ctx context.Context, i int) ([]time.Duration, exchangeStats) {
	var lat []time.Duration
	var st exchangeStats
	send := func(from, to *signal.Conn, m signal.Message) {
		st.relayed++
		sent := time.Now()
		if err := from.Send(ctx, m); err != nil {
			st.lost++
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := to.Recv(rctx)
		cancel()
		switch {
		case err != nil:
			st.lost++
		case got.Type != m.Type || got.SDP != m.SDP || !sameCandidate(got.Candidate, m.Candidate):
			st.misrouted++
		default:
			lat = append(lat, time.Since(sent))
		}
	}
	send(r.host, r.guest, signal.Message{Type: signal.TypeOffer, SDP: labSDP(i, "offer")})
	send(r.guest, r.host, signal.Message{Type: signal.TypeAnswer, SDP: labSDP(i, "answer")})
	for k := range 6 {
		send(r.host, r.guest, signal.Message{Type: signal.TypeCandidate, Candidate: labCandidate(i, k, "h")})
		send(r.guest, r.host, signal.Message{Type: signal.TypeCandidate, Candidate: labCandidate(i, k, "g")})
	}
	return lat, st
}

// labSDP returns a realistic audio-plus-data-channel session description
// of some 3 KB, unique to room i and kind.
func labSDP(i int, kind string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS duet-%d-%s\r\n", 4611731400430051336+i, i, kind)
	b.WriteString("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n")
	fmt.Fprintf(&b, "a=ice-ufrag:%08x\r\na=ice-pwd:%032x\r\na=ice-options:trickle\r\n", i, i*7919)
	b.WriteString("a=fingerprint:sha-256 ")
	for k := range 32 {
		if k > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", (i+k*13)&0xff)
	}
	b.WriteString("\r\na=setup:actpass\r\na=mid:0\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
		"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=sendrecv\r\n" +
		"a=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1;stereo=0\r\n")
	fmt.Fprintf(&b, "a=ssrc:%d cname:duet-%d\r\na=ssrc:%d msid:duet-%d voice\r\n", 1000+i, i, 1000+i, i)
	b.WriteString("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n")
	// Candidates gathered before the offer, as non-trickling clients send.
	for k := range 12 {
		fmt.Fprintf(&b, "a=candidate:%d 1 udp %d 192.0.2.%d %d typ srflx raddr 10.0.0.%d rport %d generation 0 network-id %d\r\n",
			k+1, 1694498815-k, k+1, 40000+i%20000, k+1, 50000+k, k)
	}
	for b.Len() < 3000 {
		fmt.Fprintf(&b, "a=x-duet-pad:%s-%d-%d\r\n", kind, i, b.Len())
	}
	return b.String()
}

func labCandidate(i, k int, side string) *signal.Candidate {
	mid, idx, ufrag := "0", uint16(0), fmt.Sprintf("%s%07x", side, i)
	return &signal.Candidate{
		Candidate:        fmt.Sprintf("candidate:%d 1 udp %d 127.0.0.1 %d typ host generation 0 ufrag %s", k+1, 2130706431-k, 20000+i*8+k, ufrag),
		SDPMid:           &mid,
		SDPMLineIndex:    &idx,
		UsernameFragment: &ufrag,
	}
}

// sameCandidate compares candidates by value.
func sameCandidate(a, b *signal.Candidate) bool {
	if a == nil || b == nil {
		return a == b
	}
	eq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Candidate == b.Candidate && eq(a.SDPMid, b.SDPMid) && eq(a.UsernameFragment, b.UsernameFragment) &&
		(a.SDPMLineIndex == nil) == (b.SDPMLineIndex == nil) && (a.SDPMLineIndex == nil || *a.SDPMLineIndex == *b.SDPMLineIndex)
}
