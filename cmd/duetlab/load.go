package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
	"github.com/duetapp/duet/net/signal/store/redisstore"
)

// loadRooms is how many rooms the load scenario opens at once: twice as
// many sockets.
const loadRooms = 10_000

// loadExchanging is how many rooms run their exchange at once while relay
// latency is measured.
const loadExchanging = 100

// loadWorkers are the client processes: each holds the two sockets of a
// share of the rooms, so that none needs more descriptors than the
// machine lets a process have.
const loadWorkers = 2

// loadSources are the loopback addresses each worker dials from (all of
// 127/8 is loopback on Linux), so that no one source runs short of ports.
const loadSources = 8

// loadMargin is the descriptors a server needs besides its sockets: the
// listener, stdio, epoll, Redis connections.
const loadMargin = 128

// loadLimits lift the server's limits for a load test of rooms rooms:
// every client comes from a few loopback addresses, which the default
// limits rightly throttle and cap.
func loadLimits(rooms int) server.Limits {
	return server.Limits{Joins: 1e9, Creates: 1e9, JoinBurst: 1e9, CreateBurst: 1e9,
		Sockets: 2*rooms + 100, SocketsPerAddress: 2*rooms + 100, Rooms: rooms + 100, RoomsPerAddress: rooms + 100}
}

// The load runs in processes of its own, this program again with
// loadRoleEnv set: servers ("server": a rendezvous server in memory, or
// on the Redis of loadRedisEnv under loadPrefixEnv) and client workers
// ("clients"). So the servers' memory is measured alone, and no process
// needs more descriptors than its own sockets. Each takes commands on
// stdin and answers on stdout, a line each; the end of stdin stops it.
// With loadProfileEnv each process writes a CPU profile to that path
// followed by its role and process id; with loadHeapProfileEnv a server
// writes a heap profile there when asked for its memory.
const (
	loadRoleEnv        = "DUETLAB_LOAD_ROLE"
	loadRedisEnv       = "DUETLAB_LOAD_REDIS"
	loadPrefixEnv      = "DUETLAB_LOAD_PREFIX"
	loadRoomsEnv       = "DUETLAB_LOAD_ROOMS"
	loadProfileEnv     = "DUETLAB_LOAD_CPUPROFILE"
	loadHeapProfileEnv = "DUETLAB_LOAD_SERVER_MEMPROFILE"
)

// load opens 10,000 rooms (20,000 sockets, all open at once) on a loopback
// rendezvous server in a process of its own and runs a full exchange in
// each: offer and answer of ~3 KB and six trickled candidates each way,
// every message checked byte for byte at the other end, 100 rooms at a
// time. It reports relay latency, the server's memory per room and lost
// or misrouted messages; then the same with the host on one instance and
// the guest on another, sharing the Redis at $DUET_REDIS.
//
// One process may hold as many sockets as its descriptor limit allows: a
// server in memory, which holds both sockets of every room, takes fewer
// rooms when the hard limit is below 20,000 and some (it says so).
func load(ctx context.Context, w io.Writer) ([]string, error) {
	if role := os.Getenv(loadRoleEnv); role != "" {
		if f := os.Getenv(loadProfileEnv); f != "" {
			pf, err := os.Create(fmt.Sprintf("%s.%s.%d", f, role, os.Getpid()))
			if err != nil {
				return nil, err
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return nil, err
			}
			defer pprof.StopCPUProfile()
		}
	}
	switch os.Getenv(loadRoleEnv) {
	case "server":
		return nil, loadServe(ctx, os.Stdin, os.Stdout)
	case "clients":
		return nil, loadClients(ctx, os.Stdin, os.Stdout)
	}
	limit, err := raiseLoadFDLimit()
	if err != nil {
		return nil, err
	}
	memRooms := min(loadRooms, int(limit-loadMargin)/2)
	fmt.Fprintf(w, "Limits set for this test (create and join unlimited, caps above the load); clients in %d processes dialing from %d loopback addresses each.\n",
		loadWorkers, loadSources)
	fmt.Fprintf(w, "Latency: send to receive, %d rooms exchanging at once; server memory (heap and goroutine stacks) per room, measured in the servers' processes.\n", loadExchanging)
	fmt.Fprintf(w, "Machine load before: %s (latency suffers when other work shares the cores).\n", machineLoad())
	if memRooms < loadRooms {
		fmt.Fprintf(w, "In memory one server holds both sockets of every room: %d rooms fit its descriptor limit of %d.\n", memRooms, limit)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setup\trooms\tsockets\trelayed\tlost\tmisrouted\tp50 ms\tp99 ms\tmax ms\tserver KB/room\t(heap\tstacks)\tsetup s\texchange s\t")
	row := func(name string, r loadResult) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, r.rooms, 2*r.rooms, r.relayed,
			r.lost, r.misrouted, ms(r.p(0.5)), ms(r.p(0.99)), ms(r.p(1)), r.memPerRoom()/1024, r.heapPerRoom/1024, r.stackPerRoom/1024,
			r.setup.Seconds(), r.exchange.Seconds())
	}

	mem, err := loadRun(ctx, memRooms, "")
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	row("memory, 1 instance", mem)
	kv := []string{fmt.Sprintf("rooms=%d p50_ms=%.2f p99_ms=%.2f lost=%d misrouted=%d server_kb_per_room=%.1f",
		mem.rooms, ms(mem.p(0.5)), ms(mem.p(0.99)), mem.lost, mem.misrouted, mem.memPerRoom()/1024)}

	fmt.Fprintf(w, "Machine load after memory run: %s.\n", machineLoad())
	addr := os.Getenv("DUET_REDIS")
	if addr == "" {
		fmt.Fprintln(tw, "redis, 2 instances\t—\t\t\t\t\t\t\t\t\t\t\t")
		if err := tw.Flush(); err != nil {
			return nil, err
		}
		fmt.Fprintln(w, "redis row skipped: set DUET_REDIS=host:port (e.g. 127.0.0.1:6390) to run it")
		return append(kv, "redis=skipped"), nil
	}
	red, err := loadRun(ctx, loadRooms, addr)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	row("redis, host on A, guest on B", red)
	kv = append(kv, fmt.Sprintf("redis_rooms=%d redis_p50_ms=%.2f redis_p99_ms=%.2f redis_lost=%d redis_misrouted=%d redis_server_kb_per_room=%.1f",
		red.rooms, ms(red.p(0.5)), ms(red.p(0.99)), red.lost, red.misrouted, red.memPerRoom()/1024))
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	fmt.Fprintln(w, "With Redis, memory per room sums both instances (each holds one socket of each room).")
	fmt.Fprintf(w, "Machine load after: %s.\n", machineLoad())
	return kv, nil
}

// machineLoad returns the machine's load averages over 1, 5 and 15
// minutes, as /proc/loadavg has them.
func machineLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// raiseLoadFDLimit raises the descriptor limit to the hard limit (Go does
// so at start already; this says what it is), which the load's processes
// inherit.
func raiseLoadFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("descriptor limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("descriptor limit: %w", err)
		}
	}
	if need := uint64(loadRooms/loadWorkers*2 + loadMargin); l.Cur < need {
		return 0, fmt.Errorf("a load worker needs %d descriptors; the limit is %d (ulimit -Hn)", need, l.Cur)
	}
	return l.Cur, nil
}

type loadResult struct {
	rooms, relayed, lost, misrouted int
	lat                             []time.Duration // sorted
	heapPerRoom, stackPerRoom       float64         // bytes, of the servers
	setup, exchange                 time.Duration
}

// memPerRoom is the servers' memory per room: heap and goroutine stacks.
func (r loadResult) memPerRoom() float64 { return r.heapPerRoom + r.stackPerRoom }

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

func startLabServer(ctx context.Context, cfg server.Config) (*labServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, ln, server.New(cfg), nil) }()
	return &labServer{
		url:  server.URL(ln.Addr(), false),
		stop: func() error { cancel(); return <-done },
	}, nil
}

// loadServe is a load server: it prints "url URL" and answers each "mem"
// with "mem HEAP STACKS" (bytes, after a GC).
func loadServe(ctx context.Context, in io.Reader, out io.Writer) error {
	rooms, err := strconv.Atoi(os.Getenv(loadRoomsEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", loadRoomsEnv, err)
	}
	cfg := server.Config{Limits: loadLimits(rooms)}
	if addr := os.Getenv(loadRedisEnv); addr != "" {
		cfg.Store = redisstore.New(redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64}), os.Getenv(loadPrefixEnv))
	}
	srv, err := startLabServer(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "url", srv.url)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if sc.Text() == "mem" {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			if f := os.Getenv(loadHeapProfileEnv); f != "" {
				if err := writeHeapProfile(f); err != nil {
					return err
				}
			}
			fmt.Fprintln(out, "mem", m.HeapAlloc, m.StackInuse)
		}
	}
	return srv.stop()
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadClients is a client worker: "open HOSTURL GUESTURL FIRST N K" opens
// rooms FIRST… from the addresses 127.0.K.* (answer "ok"), "exchange WIDTH" runs their exchanges
// WIDTH at a time (answer: "lat NS" per message relayed, then "ok
// RELAYED LOST MISROUTED"). Any failure is answered "error TEXT".
func loadClients(ctx context.Context, in io.Reader, out io.Writer) error {
	var rooms []*loadRoom
	defer func() { closeLoadRooms(rooms) }()
	first := 0
	bw := bufio.NewWriter(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var err error
		switch {
		case len(f) == 6 && f[0] == "open":
			first, _ = strconv.Atoi(f[3])
			n, _ := strconv.Atoi(f[4])
			rooms = make([]*loadRoom, n)
			sources := make([]signal.DialOption, loadSources)
			for i := range sources {
				sources[i] = fromLoopback(fmt.Sprintf("127.0.%s.%d", f[5], i+1))
			}
			err = parallel(ctx, 25, n, func(ctx context.Context, i int) error {
				r, err := openLoadRoom(ctx, f[1], f[2], sources[i%loadSources])
				rooms[i] = r
				return err
			})
			if err == nil {
				fmt.Fprintln(bw, "ok")
			}
		case len(f) == 2 && f[0] == "exchange":
			width, _ := strconv.Atoi(f[1])
			var mu sync.Mutex
			var st exchangeStats
			err = parallel(ctx, width, len(rooms), func(ctx context.Context, i int) error {
				lat, s := rooms[i].exchange(ctx, first+i)
				mu.Lock()
				defer mu.Unlock()
				st.relayed, st.lost, st.misrouted = st.relayed+s.relayed, st.lost+s.lost, st.misrouted+s.misrouted
				for _, d := range lat {
					fmt.Fprintln(bw, "lat", int64(d))
				}
				return nil
			})
			if err == nil {
				fmt.Fprintln(bw, "ok", st.relayed, st.lost, st.misrouted)
			}
		default:
			err = fmt.Errorf("unknown command %q", sc.Text())
		}
		if err != nil {
			fmt.Fprintln(bw, "error", strings.ReplaceAll(err.Error(), "\n", " "))
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}

// loadProc is one process of the load.
type loadProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startLoadProc starts a process of the load in role with env.
func startLoadProc(ctx context.Context, role string, env ...string) (*loadProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "load")
	cmd.Env = append(append(os.Environ(), loadRoleEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	p := &loadProc{cmd: cmd}
	if p.in, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.out = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// line returns the process's next line of output.
func (p *loadProc) line() (string, error) {
	if !p.out.Scan() {
		return "", fmt.Errorf("a load process ended: %v", p.out.Err())
	}
	if e, ok := strings.CutPrefix(p.out.Text(), "error "); ok {
		return "", errors.New(e)
	}
	return p.out.Text(), nil
}

// stop ends the process and waits for it.
func (p *loadProc) stop() error {
	p.in.Close()
	return p.cmd.Wait()
}

// loadRun runs the load of rooms rooms on one server in memory, or with
// redisAddr on two sharing that Redis.
func loadRun(ctx context.Context, rooms int, redisAddr string) (loadResult, error) {
	res := loadResult{rooms: rooms}
	var procs []*loadProc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	prefix := "duetlab:" + rand.Text()[:8] + ":"
	instances := 1
	if redisAddr != "" {
		instances = 2
		defer cleanRedis(redisAddr, prefix)
	}
	var servers []*loadProc
	var urls []string
	for range instances {
		p, err := startLoadProc(ctx, "server", loadRoomsEnv+"="+strconv.Itoa(rooms),
			loadRedisEnv+"="+redisAddr, loadPrefixEnv+"="+prefix)
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
		servers = append(servers, p)
		l, err := p.line()
		if err != nil {
			return res, err
		}
		url, ok := strings.CutPrefix(l, "url ")
		if !ok {
			return res, fmt.Errorf("the load server said %q", l)
		}
		urls = append(urls, url)
	}
	hostURL, guestURL := urls[0], urls[len(urls)-1]
	// serverMem returns the servers' heap and stacks, in bytes.
	serverMem := func() ([2]int64, error) {
		var sum [2]int64
		for _, s := range servers {
			fmt.Fprintln(s.in, "mem")
			l, err := s.line()
			if err != nil {
				return sum, err
			}
			var heap, stacks int64
			if _, err := fmt.Sscanf(l, "mem %d %d", &heap, &stacks); err != nil {
				return sum, fmt.Errorf("the load server said %q", l)
			}
			sum[0] += heap
			sum[1] += stacks
		}
		return sum, nil
	}
	before, err := serverMem()
	if err != nil {
		return res, err
	}
	var workers []*loadProc
	for range loadWorkers {
		p, err := startLoadProc(ctx, "clients")
		if err != nil {
			return res, err
		}
		procs = append(procs, p)
		workers = append(workers, p)
	}
	// all sends cmd(i) to every worker and handles each line of their
	// answers until "ok …", in parallel.
	all := func(cmd func(i int) string, each func(line string) error) error {
		errs := make(chan error, len(workers))
		var mu sync.Mutex
		for i, p := range workers {
			go func() {
				fmt.Fprintln(p.in, cmd(i))
				for {
					l, err := p.line()
					if err != nil || strings.HasPrefix(l, "ok") {
						if err == nil {
							mu.Lock()
							err = each(l)
							mu.Unlock()
						}
						errs <- err
						return
					}
					mu.Lock()
					err = each(l)
					mu.Unlock()
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		var first error
		for range workers {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}

	// Open every room first, so that all the sockets are open at once.
	share := (rooms + loadWorkers - 1) / loadWorkers
	start := time.Now()
	if err := all(func(i int) string {
		first := min(i*share, rooms)
		return fmt.Sprintf("open %s %s %d %d %d", hostURL, guestURL, first, min(share, rooms-first), i+1)
	}, func(string) error { return nil }); err != nil {
		return res, err
	}
	res.setup = time.Since(start)
	after, err := serverMem()
	if err != nil {
		return res, err
	}
	res.heapPerRoom = float64(after[0]-before[0]) / float64(rooms)
	res.stackPerRoom = float64(after[1]-before[1]) / float64(rooms)

	start = time.Now()
	err = all(func(int) string { return fmt.Sprintf("exchange %d", loadExchanging/loadWorkers) }, func(l string) error {
		var a, b, c int
		if n, _ := fmt.Sscanf(l, "lat %d", &a); n == 1 {
			res.lat = append(res.lat, time.Duration(a))
			return nil
		}
		if n, _ := fmt.Sscanf(l, "ok %d %d %d", &a, &b, &c); n == 3 {
			res.relayed, res.lost, res.misrouted = res.relayed+a, res.lost+b, res.misrouted+c
			return nil
		}
		return fmt.Errorf("a load worker said %q", l)
	})
	res.exchange = time.Since(start)
	if err != nil {
		return res, err
	}
	slices.Sort(res.lat)
	return res, nil
}

// fromLoopback dials from the loopback address ip.
func fromLoopback(ip string) signal.DialOption {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	return func(o *websocket.DialOptions) { o.HTTPClient = client }
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

func openLoadRoom(ctx context.Context, hostURL, guestURL string, from signal.DialOption) (*loadRoom, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := &loadRoom{}
	var err error
	if r.host, err = signal.Dial(ctx, hostURL, from); err != nil {
		return r, err
	}
	if r.guest, err = signal.Dial(ctx, guestURL, from); err != nil {
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
