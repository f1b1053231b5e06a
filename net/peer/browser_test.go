package peer

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/jitter"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/peer/browsertest"
)

//go:embed testdata/browser.html
var browserPage []byte

// pageMsg is a message between the test and testdata/browser.html.
type pageMsg struct {
	Type      string                   `json:"type"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
	State     string                   `json:"state,omitempty"`
	Message   string                   `json:"message,omitempty"`
	Hz        float64                  `json:"hz,omitempty"`
	MS        int                      `json:"ms,omitempty"`
	Amps      []float64                `json:"amps,omitempty"`
	RMS       float64                  `json:"rms,omitempty"`
	Rate      float64                  `json:"rate,omitempty"`
	Stats     pageStats                `json:"stats"`
	Before    pageStats                `json:"before"`
}

// pageStats are the browser's WebRTC statistics (W3C webrtc-stats).
type pageStats struct {
	In struct {
		PacketsReceived          int64   `json:"packetsReceived"`
		PacketsLost              int64   `json:"packetsLost"`
		ConcealedSamples         int64   `json:"concealedSamples"`
		TotalSamplesReceived     int64   `json:"totalSamplesReceived"`
		JitterBufferDelay        float64 `json:"jitterBufferDelay"`
		JitterBufferEmittedCount int64   `json:"jitterBufferEmittedCount"`
	} `json:"in"`
	Out struct {
		PacketsSent int64 `json:"packetsSent"`
	} `json:"out"`
}

// page is the test's end of the browser page's WebSocket.
type page struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan pageMsg
}

// openPage serves testdata/browser.html, starts browser k on it with a
// fake microphone playing a sine of micHz at micAmp, and returns the page's socket
// once it is open.
func openPage(t *testing.T, k browsertest.Kind, micHz, micAmp float64) *page {
	t.Helper()
	wav := filepath.Join(t.TempDir(), "mic.wav")
	sine := &tone.Sine{Hz: micHz, Amp: float32(micAmp)}
	pcm := make([]float32, 48000) // Chromium loops it: a whole number of periods
	sine.Read(pcm)
	if err := wavfile.WriteFile(wav, pcm); err != nil {
		t.Fatal(err)
	}
	conns := make(chan *websocket.Conn, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(browserPage)
	})
	var wg sync.WaitGroup
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		select {
		case conns <- c:
		default:
			c.Close(websocket.StatusPolicyViolation, "one page at a time")
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b := browsertest.Start(t, k, srv.URL, browsertest.Options{AudioFile: wav, ToneHz: int(micHz)})
	p := &page{t: t, msgs: make(chan pageMsg, 100)}
	select {
	case p.conn = <-conns:
	case <-b.Exited():
		t.Fatalf("%s exited before opening the page", k)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not open the page's socket within 20 s", k)
	}
	p.conn.SetReadLimit(1 << 20)
	wg.Add(1)
	go func() { // the page's reader, stopped by closing the socket
		defer wg.Done()
		defer close(p.msgs)
		for {
			_, data, err := p.conn.Read(context.Background())
			if err != nil {
				return
			}
			var m pageMsg
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("page sent %q: %v", data, err)
				return
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() {
		p.conn.CloseNow()
		wg.Wait()
	})
	return p
}

// next returns the page's next message, failing the test on an error
// from the page, a closed socket or a wait longer than d.
func (p *page) next(d time.Duration) pageMsg {
	p.t.Helper()
	select {
	case m, ok := <-p.msgs:
		return p.check(m, ok)
	case <-time.After(d):
		p.t.Fatalf("no message from the page within %v", d)
	}
	panic("unreachable")
}

// check fails the test if m, received from msgs, is an error or the end.
func (p *page) check(m pageMsg, ok bool) pageMsg {
	p.t.Helper()
	switch {
	case !ok:
		p.t.Fatal("the page closed its socket")
	case m.Type == "error":
		p.t.Fatalf("page: %s", m.Message)
	}
	return m
}

func (p *page) send(m pageMsg) {
	b, err := json.Marshal(m)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		p.t.Errorf("to the page: %v", err)
	}
}

// arrival is a voice packet from the browser as OnPacket saw it.
type arrival struct {
	received
	at time.Duration
}

// TestRealBrowser is a real browser as the partner of a Duet host: Duet
// offers, the browser answers (the answer a standard browser makes, which
// Duet once took wrongly: see register), and each hears the other's tone
// at the level it was sent, with no packet lost. The browser sends the
// packet length Duet asks for, 10 or 20 ms, and those packets play
// through Duet's jitter buffer as its own do: no concealment, the tone at
// its level. Chromium's padding-only packets are skipped, not counted lost,
// and never number a frame recovered from RED.
func TestRealBrowser(t *testing.T) {
	for _, k := range browsertest.Kinds() {
		for _, ptime := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/%v", k, ptime), func(t *testing.T) { testRealBrowser(t, k, ptime) })
		}
	}
}

// The tones: Duet's voice, and the browsers' fake microphones (Chromium's
// plays the test's WAV file, Firefox's is a sine of its own at 0.1).
const (
	duetHz, duetAmp    = 440.0, 0.25
	browserHz          = 660.0
	chromiumAmp, ffAmp = 0.25, 0.1
	measureFor         = 1200 // ms
)

func testRealBrowser(t *testing.T, k browsertest.Kind, ptime time.Duration) {
	start := time.Now()
	pg := openPage(t, k, browserHz, chromiumAmp)
	opened := time.Since(start)

	got := make(chan arrival, 4000)
	epoch := time.Now()
	host, err := New(Config{
		Loopback: true,
		Ptime:    ptime,
		OnPacket: func(seq uint16, ts uint32, kind codec.Kind, payload []byte) {
			select {
			case got <- arrival{received{seq, ts, bytes.Clone(payload), kind}, time.Since(epoch)}:
			default:
				t.Error("the test fell behind the browser's packets")
			}
		},
		OnCandidate: func(c webrtc.ICECandidateInit) { pg.send(pageMsg{Type: "candidate", Candidate: &c}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	offer, err := host.Offer()
	if err != nil {
		t.Fatal(err)
	}
	pg.send(pageMsg{Type: "offer", SDP: offer})
	controlled := false
	deadline := time.After(15 * time.Second)
	for connected := host.Connected(); connected != nil; {
		select {
		case m, ok := <-pg.msgs:
			switch m = pg.check(m, ok); m.Type {
			case "answer":
				if err := host.Accept(m.SDP); err != nil {
					t.Fatalf("Duet refused %s's answer: %v\n%s", k, err, m.SDP)
				}
			case "candidate":
				if err := host.AddCandidate(*m.Candidate); err != nil {
					t.Fatal(err)
				}
			}
		case <-connected:
			connected = nil
		case <-deadline:
			t.Fatalf("%s did not connect within 15 s", k)
		}
	}
	connectedAfter := time.Since(start)
	if !host.Accepts(codec.Opus) {
		t.Fatalf("%s did not accept Opus", k)
	}

	// Duet's voice: 5 ms Opus frames of a sine, in real time: every frame
	// due by now (a loaded machine's ticker skips ticks; the frames
	// must not be skipped with them).
	host.SetRedundancy(1)
	ctx, stop := context.WithCancel(context.Background())
	var sending sync.WaitGroup
	sending.Go(func() {
		enc, err := codec.NewEncoder(5*time.Millisecond, 64000)
		if err != nil {
			t.Error(err)
			return
		}
		sine := &tone.Sine{Hz: duetHz, Amp: duetAmp}
		pcm, buf := make([]float32, enc.FrameSamples()), make([]byte, codec.MaxPacket)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		began := time.Now()
		for sent := 0; ; {
			for ; sent <= int(time.Since(began)/(5*time.Millisecond)); sent++ {
				sine.Read(pcm)
				n, err := enc.Encode(pcm, buf)
				if err != nil {
					t.Error(err)
					return
				}
				if err := host.WriteVoice(codec.Opus, uint16(65000+sent), uint32(sent*len(pcm)), buf[:n]); err != nil {
					t.Error(err)
					return
				}
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	})
	defer sending.Wait()
	defer stop()

	// The browser's voice starts when its audio does (Firefox's takes a
	// second or two to reach PulseAudio); so does its playout.
	var arr []arrival
	select {
	case a := <-got:
		arr = append(arr, a)
	case <-time.After(10 * time.Second):
		t.Fatalf("no voice from %s within 10 s of connecting", k)
	}
	firstVoice := time.Since(start)
	// A control message reaches the page as text.
	const hello = `{"type":"hello","name":"Duet"}`
	for deadline := time.Now().Add(10 * time.Second); host.SendControl([]byte(hello)) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("the control channel did not open within 10 s")
		}
		select {
		case m, ok := <-pg.msgs:
			if m = pg.check(m, ok); m.Type == "control" {
				t.Fatalf("the page got control message %q before it was sent", m.Message)
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
	pg.send(pageMsg{Type: "measure", Hz: duetHz, MS: measureFor})
	var heard pageMsg
	for heard.Type != "heard" {
		switch heard = pg.next(10 * time.Second); heard.Type {
		case "control":
			if heard.Message != hello {
				t.Errorf("the page got control message %q, want the text %s", heard.Message, hello)
			}
			controlled = true
		}
	}
	if !controlled {
		t.Error("the page got no control message")
	}
	stop()
	sending.Wait()

	// Duet → browser.
	med, low := median(heard.Amps), slices.Min(heard.Amps)
	in, before := heard.Stats.In, heard.Before.In
	t.Logf("%s heard Duet's %.0f Hz sine of %.2f at %.3f (median of %d windows; lowest %.3f), "+
		"%d packets, %d lost, %d samples of %d concealed while it listened",
		k, duetHz, duetAmp, med, len(heard.Amps), low, in.PacketsReceived, in.PacketsLost,
		in.ConcealedSamples-before.ConcealedSamples, in.TotalSamplesReceived-before.TotalSamplesReceived)
	if db := 20 * math.Log10(med/duetAmp); math.Abs(db) > 1 {
		t.Errorf("%s heard Duet's sine %.1f dB off", k, db)
	}
	if in.PacketsLost != 0 {
		t.Errorf("%s lost %d of Duet's packets on loopback", k, in.PacketsLost)
	}

	// Browser → Duet.
	for len(got) > 0 {
		arr = append(arr, <-got)
	}
	st := host.Stats()
	want := uint32(ptime.Seconds() * 48000)
	gaps, steps := 0, map[uint32]int{}
	for i := 1; i < len(arr); i++ {
		if arr[i].kind != codec.Opus {
			t.Fatalf("%s sent %v", k, arr[i].kind)
		}
		if d := arr[i].seq - arr[i-1].seq; d != 1 {
			gaps++
			continue
		}
		steps[arr[i].ts-arr[i-1].ts]++
	}
	t.Logf("Duet got %d packets from %s: %d padding only, %d RED, %d frames recovered, %d redundant blocks skipped, "+
		"%d discarded; %d gaps in the frames' numbers; timestamp steps %v",
		st.PacketsReceived, k, st.PaddingReceived, st.REDPacketsReceived, st.FramesRecovered, st.REDBlocksSkipped,
		st.PacketsDiscarded, gaps, steps)
	if len(arr) < 20 {
		t.Fatalf("only %d frames from %s", len(arr), k)
	}
	sent := time.Duration(arr[len(arr)-1].ts-arr[0].ts) * time.Second / 48000
	t.Logf("%s sent %v of audio in %v", k, sent, arr[len(arr)-1].at-arr[0].at)
	if gaps > 0 || st.FramesRecovered > 0 || st.REDBlocksSkipped > 0 || st.PacketsDiscarded > 0 {
		t.Errorf("on loopback: %d gaps, %d frames recovered, %d blocks skipped, %d packets discarded; want none",
			gaps, st.FramesRecovered, st.REDBlocksSkipped, st.PacketsDiscarded)
	}
	if steps[want] != len(arr)-1-gaps {
		t.Errorf("%s's frames are not all %v long: timestamp steps %v", k, ptime, steps)
	}
	// Through Duet's jitter buffer, as a browser on an idle machine would
	// send the packets (each at its timestamp): the voice must play at
	// its level with nothing concealed. As they came is only reported: on
	// a loaded machine both the browser's pacing and our reader's
	// scheduling suffer (CI runs other tests beside this one: up to 27 %
	// concealed was measured here at a load of 9 on 2 cores, none at 1).
	amp := map[browsertest.Kind]float64{browsertest.Chromium: chromiumAmp, browsertest.Firefox: ffAmp}[k]
	paced := slices.Clone(arr)
	for i := range paced {
		paced[i].at = arr[0].at + time.Duration(paced[i].ts-arr[0].ts)*time.Second/48000
	}
	for _, run := range []struct {
		name  string
		arr   []arrival
		check bool
	}{{"as they came", arr, false}, {"evenly paced", paced, true}} {
		amps, ps := playBrowser(t, run.arr)
		t.Logf("Duet played the browser's %.0f Hz sine of %.2f, %s, at %.3f (median of %d windows; lowest %.3f); "+
			"jitter buffer: target %v, %d of %d samples concealed, %d late, %d lost",
			browserHz, amp, run.name, median(amps), len(amps), slices.Min(amps), ps.TargetDelay, ps.ConcealedSamples,
			ps.PlayedSamples, ps.PacketsDiscarded, ps.PacketsLost)
		if !run.check {
			continue
		}
		if db := 20 * math.Log10(median(amps)/amp); math.Abs(db) > 1 || slices.Min(amps) < amp/2 {
			t.Errorf("%s: Duet played the browser's sine %.1f dB off (lowest window %.3f)", run.name, db, slices.Min(amps))
		}
		if ps.PacketsLost > 0 || ps.ConcealedSamples > 0 {
			t.Errorf("%s: Duet's jitter buffer concealed %d of %d samples, counted %d packets lost",
				run.name, ps.ConcealedSamples, ps.PlayedSamples, ps.PacketsLost)
		}
	}
	t.Logf("%s: page open after %v, connected after %v, first voice after %v, done after %v", k,
		opened.Round(time.Millisecond), connectedAfter.Round(time.Millisecond), firstVoice.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond))
}

// playBrowser plays the browser's packets through a jitter.Playout as Duet's
// pipeline sets one up, each inserted at its arrival time, reading
// 128-sample device blocks, and returns the amplitude of the browser's
// sine in each 100 ms from the first that plays, and the playout's figures.
func playBrowser(t *testing.T, arr []arrival) ([]float64, jitter.PlayoutStats) {
	t.Helper()
	sw, err := codec.NewSwitch()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	var now time.Duration
	pl := jitter.NewPlayout(jitter.PlayoutConfig{
		Now: func() time.Duration { return now },
		Config: jitter.Config{
			Frame:     2 * codec.CustomFrame,
			MaxPacket: codec.MaxPacket,
			WaitStep:  codec.FormatOf(codec.OpusCustom).ConcealStep(),
		}}, opusSwitch{sw})
	const block = 128
	var out []float32
	buf := make([]float32, block)
	next := 0
	for now = arr[0].at; now < arr[len(arr)-1].at; now += block * time.Second / 48000 {
		for ; next < len(arr) && arr[next].at <= now; next++ {
			a := arr[next]
			pl.Insert(a.seq, a.ts, a.at, a.payload)
		}
		pl.ReadAt(buf, now)
		out = append(out, buf...)
	}
	start := slices.IndexFunc(out, func(v float32) bool { return v != 0 })
	if start < 0 {
		t.Fatal("Duet's jitter buffer played nothing of the browser's")
	}
	var amps []float64
	for i := start + 4800; i+4800 <= len(out); i += 4800 {
		amps = append(amps, measure.Tone(out[i:i+4800], browserHz, 48000))
	}
	if len(amps) == 0 {
		t.Fatal("less than 200 ms of the browser's voice played")
	}
	return amps, pl.Stats()
}

// opusSwitch decodes Opus through a codec.Switch, as Duet's pipeline does.
type opusSwitch struct{ sw *codec.Switch }

func (d opusSwitch) Decode(p []byte, pcm []float32) (int, error) {
	return d.sw.Decode(codec.Opus, p, pcm)
}
func (d opusSwitch) Conceal(pcm []float32) error { return d.sw.Conceal(pcm) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}
