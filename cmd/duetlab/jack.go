package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/audio/jackprobe"
	"github.com/duetapp/duet/audio/wavfile"
)

// The jack scenario measures Duet as a singer hears it: host and guest are
// two `duet` processes on PortAudio's JACK device, on a JACK server with the
// dummy driver (48 kHz) that the lab starts for each period; a probe plays
// noise into each singer's input port and records the other's output port,
// both directions at once, on JACK's frame clock (audio/jackprobe). So the
// delay includes everything between the ports: device blocks, codec,
// network, playout. Jamulus (server and two headless clients), when
// installed, runs the same way on the same server, for comparison. Before
// them the probe records alone (-floor), so the table says how often the
// machine itself makes the server miss a period: on a virtual machine
// whose processors stall, no system on it can be free of dropouts.

// jackFlags are the jack scenario's flags.
type jackFlags struct {
	periods  string
	seconds  int
	duetArgs string
	jamulus  bool
	keep     string
	duet     string
	floor    int
}

func (f *jackFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.periods, "periods", "64,128", "jack: JACK `periods` in frames, comma-separated; a server and a run for each")
	fs.IntVar(&f.seconds, "seconds", 60, "jack: `seconds` recorded per run")
	fs.StringVar(&f.duetArgs, "duet-args", "", "jack: more `flags` for duet host and join, space-separated (e.g. \"-frame 2.5ms\")")
	fs.BoolVar(&f.jamulus, "jamulus", true, "jack: run Jamulus the same way when it is installed")
	fs.StringVar(&f.duet, "duet", "", "jack: run this duet `binary` instead of building ./cmd/duet (one built from an older commit: a before and after)")
	fs.IntVar(&f.floor, "floor", 10, "jack: `seconds` the probe records alone on each server first, counting the machine's own xruns (0: none)")
	fs.StringVar(&f.keep, "keep", "", "jack: keep the logs, what was played and heard (WAV) and the delays (CSV) in `dir`")
}

const (
	jackRate        = 48000
	jackConnectWait = 60 * time.Second
	jackLead        = 100 * time.Millisecond // from arming the probe to its first sample
)

// jackRun is one system's run at one period.
type jackRun struct {
	system   string
	period   int
	h2g, g2h jackAnalysis // h2g: the host's (first client's) voice heard by the guest
	h2gErr   error
	g2hErr   error
	xruns    int
	xrunAt   []int
	realtime bool
	// floorXruns is the server's xruns a minute with the probe alone on
	// it, before any system ran: the machine's own (NaN if not measured).
	floorXruns float64
	connectedS float64 // s from both connected to the probe's first sample
	// own figures, from the duet processes' output: the guest's for h2g,
	// the host's for g2h (NaN or -1 when they did not print them)
	ownMS       [2]float64
	ownEvents   [2]int
	ownConceal  [2]int // ms, the whole session
	ownStalls   [2]int // the listener's audio callbacks a block late, the whole session
	reconnected []string
	// load is the machine's 1-minute load average at the start and end of
	// the recording (NaN if unknown): the lab shares its cores.
	load [2]float64
}

func jackLab(f *jackFlags) scenario {
	return func(ctx context.Context, w io.Writer) ([]string, error) {
		return jackScenario(ctx, w, *f)
	}
}

func jackScenario(ctx context.Context, w io.Writer, f jackFlags) ([]string, error) {
	var periods []int
	for _, s := range strings.Split(f.periods, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || (p != 64 && p != 128 && p != 256) {
			return nil, fmt.Errorf("jack: period %q: give 64, 128 or 256", s)
		}
		periods = append(periods, p)
	}
	if f.seconds < 10 {
		return nil, errors.New("jack: -seconds must be at least 10 (settling is judged over 5 s)")
	}
	for _, tool := range []string{"jackd", "jack_wait"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("jack: needs %s (apt-get install jackd2)", tool)
		}
	}
	jamulus := ""
	if f.jamulus {
		jamulus, _ = exec.LookPath("Jamulus")
		if jamulus == "" {
			jamulus, _ = exec.LookPath("jamulus")
		}
	}
	// The logs go to -keep, or to a temporary folder kept only when a run
	// fails.
	dir, keep := f.keep, f.keep != ""
	if keep {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	} else {
		tmp, err := os.MkdirTemp("", "duetlab-jack-")
		if err != nil {
			return nil, err
		}
		dir = tmp
		defer func() {
			if !keep {
				os.RemoveAll(dir)
			}
		}()
	}
	fail := func(err error) ([]string, error) {
		if !keep {
			fmt.Fprintf(w, "logs kept in %s\n", dir)
			keep = true
		}
		return nil, err
	}

	duet := f.duet
	if duet == "" {
		fmt.Fprintln(w, "building duet …")
		duet = filepath.Join(dir, "duet")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", duet, "github.com/duetapp/duet/cmd/duet").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("jack: go build ./cmd/duet: %w\n%s", err, out)
		}
	} else if _, err := os.Stat(duet); err != nil {
		return nil, fmt.Errorf("jack: -duet: %w", err)
	}

	var runs []jackRun
	for _, period := range periods {
		rs, err := jackPeriod(ctx, w, f, period, duet, jamulus, dir)
		runs = append(runs, rs...)
		if err != nil {
			return fail(fmt.Errorf("jack: period %d: %w", period, err))
		}
	}
	if jamulus == "" && f.jamulus {
		fmt.Fprintln(w, "Jamulus is not installed (apt-get install jamulus): Duet alone.")
	}
	kv := jackReport(w, runs, f.seconds)
	if f.keep != "" {
		fmt.Fprintf(w, "logs, recordings and delays in %s\n", f.keep)
	}
	return kv, nil
}

// jackPeriod starts a JACK server at period and runs Duet, then Jamulus.
func jackPeriod(ctx context.Context, w io.Writer, f jackFlags, period int, duet, jamulus, dir string) ([]jackRun, error) {
	name := fmt.Sprintf("duetlab-%d-p%d", os.Getpid(), period)
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("jackd-p%d.log", period)))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	srv, err := jackprobe.StartDummy(ctx, jackprobe.ServerConfig{
		Name: name, Rate: jackRate, Period: period, Realtime: os.Geteuid() == 0, Log: logf,
	})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	env := append(os.Environ(),
		"JACK_DEFAULT_SERVER="+name,
		"LANG=en_US.UTF-8",                              // Fyne's locale parser refuses C.UTF-8
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"), // no user settings
	)
	floor := math.NaN()
	if f.floor > 0 {
		fmt.Fprintf(w, "period %d: the probe alone, %d s …\n", period, f.floor)
		if floor, err = jackFloor(ctx, name, f.floor); err != nil {
			return nil, fmt.Errorf("the probe alone: %w", err)
		}
	}
	var runs []jackRun
	fmt.Fprintf(w, "period %d: Duet, %d s …\n", period, f.seconds)
	r, err := jackDuet(ctx, f, name, period, duet, env, dir)
	r.realtime, r.floorXruns = srv.Realtime(), floor
	runs = append(runs, r)
	if err != nil {
		return runs, fmt.Errorf("duet: %w", err)
	}
	if jamulus != "" {
		fmt.Fprintf(w, "period %d: Jamulus, %d s …\n", period, f.seconds)
		r, err := jackJamulus(ctx, f, name, period, jamulus, env, dir)
		r.realtime, r.floorXruns = srv.Realtime(), floor
		if err != nil {
			// Duet's figures stand without the comparison.
			if ctx.Err() != nil {
				return runs, err
			}
			r.h2gErr, r.g2hErr = err, err
			fmt.Fprintf(w, "period %d: Jamulus failed: %v\n", period, err)
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// jackFloor records with the probe alone on the server for seconds and
// returns the server's xruns a minute: what the machine costs before any
// singer runs (a virtual machine's stalled processors, a busy core). A
// system run on the server can add to them, never take them away.
func jackFloor(ctx context.Context, server string, seconds int) (float64, error) {
	probe, err := jackprobe.Open(jackprobe.Config{Name: "duetlab-alone", Server: server, Length: seconds * jackRate, Record: 1})
	if err != nil {
		return 0, err
	}
	defer probe.Close()
	probe.Start(jackLead)
	if err := jackRecorded(ctx, probe, seconds); err != nil {
		return 0, err
	}
	probe.Close()
	return float64(probe.Recording().Xruns) * 60 / float64(seconds), nil
}

// jackRecorded waits for a started probe to record its seconds.
func jackRecorded(ctx context.Context, p *jackprobe.Probe, seconds int) error {
	select {
	case <-p.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(jackLead + time.Duration(seconds+30)*time.Second):
		return errors.New("the probe's recording did not complete: is the JACK server still running?")
	}
}

// jackSignals are the two voices: distinct noise, so neither direction
// can be mistaken for the other.
func jackSignals(seconds int) [][]float32 {
	n := seconds * jackRate
	return [][]float32{jackNoise(n, 1), jackNoise(n, 2)}
}

func jackDuet(ctx context.Context, f jackFlags, server string, period int, duet string, env []string, dir string) (jackRun, error) {
	run := jackRun{system: "Duet", period: period}
	probe, err := jackprobe.Open(jackprobe.Config{Name: "duetlab", Server: server, Length: f.seconds * jackRate, Play: jackSignals(f.seconds), Record: 2})
	if err != nil {
		return run, err
	}
	defer probe.Close()
	logs := func(who string) string { return filepath.Join(dir, fmt.Sprintf("duet-%s-p%d.log", who, period)) }

	rendezvous, err := startJackChild(logs("serve"), env, duet, "serve", "-listen", "127.0.0.1:0")
	if err != nil {
		return run, err
	}
	defer rendezvous.stop()
	m, err := rendezvous.waitLine(ctx, regexp.MustCompile(`^(https?://\S+)$`), 30*time.Second)
	if err != nil {
		return run, fmt.Errorf("rendezvous server: %w", err)
	}
	url := m[1]
	sing := func(args ...string) []string {
		args = append(args, "-server", url, "-loopback", "-monitor", "0", "-ntp", "",
			"-buffer", strconv.Itoa(period), "-input-device", "system", "-output-device", "system")
		return append(args, strings.Fields(f.duetArgs)...)
	}
	host, err := startJackChild(logs("host"), env, duet, sing("host", "-name", "host")...)
	if err != nil {
		return run, err
	}
	defer host.stop()
	m, err = host.waitLine(ctx, regexp.MustCompile(`^([A-Z0-9]{4}-[A-Z0-9]{4})$`), 30*time.Second)
	if err != nil {
		return run, fmt.Errorf("host: no room code: %w", err)
	}
	hostClient, err := jackNewClient(probe, nil)
	if err != nil {
		return run, fmt.Errorf("host: %w", err)
	}
	guest, err := startJackChild(logs("guest"), env, duet, sing("join", m[1], "-name", "guest")...)
	if err != nil {
		return run, err
	}
	defer guest.stop()
	connected := regexp.MustCompile(`Connected to your partner`)
	for _, c := range []*jackChild{host, guest} {
		if _, err := c.waitLine(ctx, connected, jackConnectWait); err != nil {
			return run, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	connectedAt := time.Now()
	guestClient, err := jackNewClient(probe, []string{hostClient})
	if err != nil {
		return run, fmt.Errorf("guest: %w", err)
	}
	paPorts := func(client string) jackPorts {
		return jackPorts{ins: []string{client + ":in_0"}, out: client + ":out_0", others: []string{client + ":out_1"}}
	}
	hostPorts, guestPorts := paPorts(hostClient), paPorts(guestClient)
	if err := jackMeasure(ctx, probe, &run, hostPorts, guestPorts, connectedAt, f.seconds); err != nil {
		return run, err
	}
	guest.stop()
	host.stop()
	run.ownMS[0], run.ownEvents[0], run.ownConceal[0], run.ownStalls[0] = duetOwnFigures(guest)
	run.ownMS[1], run.ownEvents[1], run.ownConceal[1], run.ownStalls[1] = duetOwnFigures(host)
	return run, jackKeep(f.keep, &run, probe.Recording(), dir)
}

// jackNewClient finds the PortAudio client that is not one of known (PortAudio's JACK clients are PortAudio, PortAudio-01,
// …, registered when a program opens PortAudio).
func jackNewClient(p *jackprobe.Probe, known []string) (string, error) {
	var found []string
	for _, port := range p.Ports(`^PortAudio[^:]*:in_0$`) {
		client, _, _ := strings.Cut(port, ":")
		if !slices.Contains(known, client) {
			found = append(found, client)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("want one new PortAudio JACK client, found %v (known %v)", found, known)
	}
	return found[0], nil
}

// jackPorts are one singer's JACK ports: where the probe sings in (all
// of ins), the one it listens to, and others the singer has.
type jackPorts struct {
	ins    []string
	out    string
	others []string
}

// jackMeasure connects the probe alone to both singers (the host sings
// signal 0 and is heard on recording 1), records for seconds and analyses
// both directions into run.
func jackMeasure(ctx context.Context, p *jackprobe.Probe, run *jackRun, host, guest jackPorts, connectedAt time.Time, seconds int) error {
	// Cut everything else first: PortAudio connects its streams to
	// system:* when they start, and the host must not hear the guest's
	// playback.
	for _, s := range []jackPorts{host, guest} {
		for _, in := range s.ins {
			if err := jackCut(p, in, true); err != nil {
				return err
			}
		}
		if err := jackCut(p, s.out, false); err != nil {
			return err
		}
		for _, o := range s.others {
			if err := jackCut(p, o, false); err != nil && !errors.Is(err, jackprobe.ErrPort) {
				return err
			}
		}
	}
	// singer is the end of an edge that is the singer's port.
	type edge struct{ src, dst, singer string }
	var want []edge
	for i, s := range []jackPorts{host, guest} {
		for _, in := range s.ins {
			want = append(want, edge{p.PlayPort(i), in, in})
		}
	}
	want = append(want, edge{guest.out, p.RecordPort(0), guest.out}, edge{host.out, p.RecordPort(1), host.out})
	for _, e := range want {
		if err := p.Connect(e.src, e.dst); err != nil {
			return err
		}
	}
	run.load[0] = loadAverage()
	start := p.Start(jackLead)
	run.connectedS = start.Sub(connectedAt).Seconds()
	if err := jackRecorded(ctx, p, seconds); err != nil {
		return err
	}
	run.load[1] = loadAverage()
	for _, e := range want {
		other := e.src
		if e.singer == e.src {
			other = e.dst
		}
		got, err := p.Connections(e.singer)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{other}) {
			run.reconnected = append(run.reconnected, fmt.Sprintf("%s→%v", e.singer, got))
		}
	}
	p.Close()
	rec := p.Recording()
	run.xruns, run.xrunAt = rec.Xruns, rec.XrunAt
	run.h2g, run.h2gErr = analyseJack(rec.Played[0], rec.Recorded[0], jackRate)
	run.g2h, run.g2hErr = analyseJack(rec.Played[1], rec.Recorded[1], jackRate)
	return nil
}

// jackCut disconnects port (an input if in) from everything.
func jackCut(p *jackprobe.Probe, port string, in bool) error {
	conns, err := p.Connections(port)
	if err != nil {
		return err
	}
	for _, c := range conns {
		src, dst := port, c
		if in {
			src, dst = c, port
		}
		if err := p.Disconnect(src, dst); err != nil {
			return err
		}
	}
	return nil
}

var (
	duetStatusRE = regexp.MustCompile(`partner ([0-9.]+) ms away.*concealed (\d+)×`)
	duetFinalRE  = regexp.MustCompile(`(\d+) ms of your partner concealed(?:; this computer's audio ran late (\d+)×)?`)
)

// duetOwnFigures reads what a singer's duet said about its partner's
// voice: the last latency it reported, the concealment events in its
// status lines, and from its closing line the concealed ms and how often
// its own audio callback ran late (NaN and -1 when it did not say).
func duetOwnFigures(c *jackChild) (latency float64, events, concealedMS, stalls int) {
	latency, events, concealedMS, stalls = math.NaN(), -1, -1, -1
	for _, m := range c.matches(duetStatusRE) {
		latency, _ = strconv.ParseFloat(m[1], 64)
		n, _ := strconv.Atoi(m[2])
		events = max(events, 0) + n
	}
	if ms := c.matches(duetFinalRE); len(ms) > 0 {
		last := ms[len(ms)-1]
		concealedMS, _ = strconv.Atoi(last[1])
		stalls, _ = strconv.Atoi(last[2]) // none said: 0
	}
	return latency, events, concealedMS, stalls
}

func jackJamulus(ctx context.Context, f jackFlags, server string, period int, jamulus string, env []string, dir string) (jackRun, error) {
	run := jackRun{system: "Jamulus", period: period, ownMS: [2]float64{math.NaN(), math.NaN()}, ownEvents: [2]int{-1, -1}, ownConceal: [2]int{-1, -1}, ownStalls: [2]int{-1, -1}}
	probe, err := jackprobe.Open(jackprobe.Config{Name: "duetlab", Server: server, Length: f.seconds * jackRate, Play: jackSignals(f.seconds), Record: 2})
	if err != nil {
		return run, err
	}
	defer probe.Close()
	port, err := jackFreeUDP()
	if err != nil {
		return run, err
	}
	logs := func(who string) string { return filepath.Join(dir, fmt.Sprintf("jamulus-%s-p%d.log", who, period)) }
	// -F: the server offers 64-sample frames ("fast update").
	jserver, err := startJackChild(logs("server"), env, jamulus, "-s", "-n", "-F", "-u", "4", "-p", strconv.Itoa(port), "--serverbindip", "127.0.0.1")
	if err != nil {
		return run, err
	}
	defer jserver.stop()
	if _, err := jserver.waitLine(ctx, regexp.MustCompile(`selected port number`), 30*time.Second); err != nil {
		return run, fmt.Errorf("server: %w", err)
	}
	var clients []*jackChild
	for _, who := range []string{"a", "b"} {
		ini := filepath.Join(dir, fmt.Sprintf("jamulus-%s-p%d.ini", who, period))
		if err := os.WriteFile(ini, jamulusIni(period), 0o644); err != nil {
			return run, err
		}
		cport, err := jackFreeUDP()
		if err != nil {
			return run, err
		}
		c, err := startJackChild(logs(who), env, jamulus, "-n", "-t", "-i", ini, "-c", fmt.Sprintf("127.0.0.1:%d", port),
			"-p", strconv.Itoa(cport), "-j", "--mutemyown", "--clientname", "duetlab-"+who)
		if err != nil {
			return run, err
		}
		defer c.stop()
		clients = append(clients, c)
	}
	if _, err := jserver.waitLine(ctx, regexp.MustCompile(`connected \(2\)`), jackConnectWait); err != nil {
		return run, fmt.Errorf("server: the two clients did not connect: %w", err)
	}
	connectedAt := time.Now()
	ports := func(who string) jackPorts {
		c := "Jamulus duetlab-" + who
		return jackPorts{ins: []string{c + ":input left", c + ":input right"}, out: c + ":output left", others: []string{c + ":output right"}}
	}
	if err := jackMeasure(ctx, probe, &run, ports("a"), ports("b"), connectedAt, f.seconds); err != nil {
		return run, err
	}
	for _, c := range clients {
		c.stop()
	}
	return run, jackKeep(f.keep, &run, probe.Recording(), dir)
}

// jamulusIni is a client's settings: mono, normal quality, the automatic
// jitter buffer, no feedback detection (the probe's noise is no howl);
// "small network buffers" (64-sample Opus frames) at period 64, as a
// singer would choose there.
func jamulusIni(period int) []byte {
	small := 0
	if period <= 64 {
		small = 1
	}
	return fmt.Appendf(nil, `<client>
 <audiochannels>0</audiochannels>
 <audioquality>1</audioquality>
 <autojitbuf>1</autojitbuf>
 <enableopussmall>%d</enableopussmall>
 <enablefeedbackdetection>0</enablefeedbackdetection>
 <newclientlevel>100</newclientlevel>
 <audfad>50</audfad>
</client>
`, small)
}

// jackFreeUDP finds a free UDP port on loopback (it could be taken again
// before the program binds it; on this lab's quiet loopback it is not).
func jackFreeUDP() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// jackKeep writes what was played and heard as WAV files and the delay
// estimates as CSV under keep (nothing without -keep).
func jackKeep(keep string, run *jackRun, rec jackprobe.Recording, dir string) error {
	if keep == "" {
		return nil
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-p%d", strings.ToLower(run.system), run.period))
	for i, d := range []string{"h2g", "g2h"} {
		if err := wavfile.WriteFile(base+"-"+d+"-played.wav", anaClean(rec.Played[i])); err != nil {
			return err
		}
		if err := wavfile.WriteFile(base+"-"+d+"-heard.wav", anaClean(rec.Recorded[i])); err != nil {
			return err
		}
	}
	var b strings.Builder
	b.WriteString("direction,heard_s,delay_ms,score\n")
	for _, d := range []struct {
		name string
		a    jackAnalysis
	}{{"h2g", run.h2g}, {"g2h", run.g2h}} {
		for _, blk := range d.a.blocks {
			fmt.Fprintf(&b, "%s,%.3f,%.3f,%.3f\n", d.name, d.a.heardAt(blk), d.a.ms(blk.lag), blk.score)
		}
		for _, dr := range d.a.dropouts {
			fmt.Fprintf(&b, "%s-dropout,%.4f,%.1f,\n", d.name, float64(dr.at)/jackRate, float64(dr.length)*1000/jackRate)
		}
	}
	return os.WriteFile(base+"-delays.csv", []byte(b.String()), 0o644)
}

// atXruns counts the dropouts that began between 10 ms before an xrun and
// the delay plus 50 ms after it: a missed cycle on the singer's side is
// heard one delay later, on the listener's at once.
func atXruns(a jackAnalysis, xrunAt []int) int {
	n := 0
	for _, d := range a.dropouts {
		for _, x := range xrunAt {
			lo := x - jackRate/100
			hi := x + int((a.median+50)*jackRate/1000)
			if d.at >= lo && d.at <= hi {
				n++
				break
			}
		}
	}
	return n
}

// jackReport prints the table and returns the summary's pairs: Duet's
// medians per period and direction, its worst dropouts per minute and
// settling time over all its runs, Jamulus's worse direction per period.
func jackReport(w io.Writer, runs []jackRun, seconds int) []string {
	runs = slices.Clone(runs)
	slices.SortStableFunc(runs, func(a, b jackRun) int { return b.period - a.period })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "period\tsystem\tdirection\tmedian ms\tp10 ms\tp90 ms\tsettle s\texcursions/min\toutside %\tdropouts/min\tat xruns\tdropped ms/min\town ms\town conceal/min\town stalls/min\txruns/min\talone\tload\t")
	var kv, jam, notes []string
	worstDrops, worstSettle, worstXruns, worstAlone := 0.0, 0.0, 0.0, math.NaN()
	for _, r := range runs {
		minutes := float64(seconds) / 60
		xpm := float64(r.xruns) / minutes
		worstXruns = max(worstXruns, xpm)
		alone := "-"
		if !math.IsNaN(r.floorXruns) {
			alone = fmt.Sprintf("%.1f", r.floorXruns)
			worstAlone = math.Max(r.floorXruns, nanTo(worstAlone, r.floorXruns))
		}
		worstJam := math.NaN()
		load := fmt.Sprintf("%.1f→%.1f", r.load[0], r.load[1])
		for i, d := range []struct {
			name string
			a    jackAnalysis
			err  error
		}{{"h2g", r.h2g, r.h2gErr}, {"g2h", r.g2h, r.g2hErr}} {
			if d.err != nil {
				fmt.Fprintf(tw, "%d\t%s\t%s\tfailed\t\t\t\t\t\t\t\t\t\t\t\t%.1f\t%s\t%s\t\n", r.period, r.system, d.name, xpm, alone, load)
				notes = append(notes, fmt.Sprintf("period %d %s %s: %v", r.period, r.system, d.name, d.err))
				if r.system == "Duet" {
					kv = append(kv, fmt.Sprintf("p%d_%s_ms=NaN", r.period, d.name))
				}
				continue
			}
			a := d.a
			settle := "never"
			settleS := float64(seconds)
			if a.settle >= 0 {
				settleS = a.settle + r.connectedS
				settle = fmt.Sprintf("%.1f", settleS)
			}
			drops := a.perMinute(len(a.dropouts))
			var droppedMS float64
			for _, dr := range a.dropouts {
				droppedMS += float64(dr.length) * 1000 / jackRate
			}
			own, ownEv, ownStalls := "-", "-", "-"
			if r.ownStalls[i] >= 0 {
				ownStalls = fmt.Sprintf("%.1f", float64(r.ownStalls[i])/minutes)
			}
			if !math.IsNaN(r.ownMS[i]) {
				own = fmt.Sprintf("%.1f", r.ownMS[i])
			}
			if r.ownEvents[i] >= 0 {
				ownEv = fmt.Sprintf("%.1f", float64(r.ownEvents[i])/minutes)
			} else if r.ownConceal[i] >= 0 {
				ownEv = fmt.Sprintf("%d ms", r.ownConceal[i])
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%s\t%s\t%s\t%.1f\t%s\t%s\t\n",
				r.period, r.system, d.name, a.median, a.p10, a.p90, settle,
				a.perMinute(a.excursions), 100*a.outside, drops, atXruns(a, r.xrunAt),
				droppedMS*60/math.Max(a.heardSeconds, 1), own, ownEv, ownStalls, xpm, alone, load)
			if r.system == "Duet" {
				kv = append(kv, fmt.Sprintf("p%d_%s_ms=%.2f", r.period, d.name, a.median))
				worstDrops = max(worstDrops, drops)
				worstSettle = max(worstSettle, settleS)
			} else {
				worstJam = math.Max(a.median, nanTo(worstJam, a.median))
			}
		}
		if r.system != "Duet" {
			jam = append(jam, fmt.Sprintf("jamulus_p%d_ms=%.2f", r.period, worstJam))
		}
		for _, c := range r.reconnected {
			notes = append(notes, fmt.Sprintf("period %d %s: connected to more than the probe at the end: %s", r.period, r.system, c))
		}
	}
	tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	fmt.Fprintf(w, "h2g: the host's voice (first client) as the guest hears it, port to port; g2h the other way. "+
		"settle: from both connected until the delay stays within %.1f ms of the median for %.0f s; excursions: later runs outside it. "+
		"dropouts: 2.5 ms stretches heard that are not what was sung (concealment, gaps), merged within 10 ms; at xruns: those next to a JACK xrun. "+
		"own: what duet itself printed (latency, concealment; stalls: the listener's audio callbacks that ran a block or more late). alone: the server's xruns a minute with the probe alone on it, just before: the machine's own. load: the machine's 1-minute load average as the recording began and ended.\n", settleBandMS, settleHoldS)
	if len(runs) > 0 {
		fmt.Fprintf(w, "JACK with real-time scheduling: %v\n", runs[0].realtime)
	}
	kv = append(kv, fmt.Sprintf("concealed_per_min=%.1f", worstDrops), fmt.Sprintf("settle_s=%.1f", worstSettle))
	kv = append(kv, jam...)
	kv = append(kv, fmt.Sprintf("xruns_per_min=%.1f", worstXruns))
	if !math.IsNaN(worstAlone) {
		kv = append(kv, fmt.Sprintf("alone_xruns_per_min=%.1f", worstAlone))
	}
	return kv
}

// loadAverage is the 1-minute load average, NaN where /proc has none.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return math.NaN()
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func nanTo(x, v float64) float64 {
	if math.IsNaN(x) {
		return v
	}
	return x
}
