package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/lab"
	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/filedev"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/wavfile"
	"github.com/duetapp/duet/net/guestpage"
	"github.com/duetapp/duet/net/peer/browsertest"
	"github.com/duetapp/duet/net/signal/server"
)

// browserLab measures the mouth-to-ear latency of a guest in a web browser
// (the guest page, headless Chromium and Firefox) against a desktop guest
// (app/lab), both ways, with the host a real app.Host on a file device.
//
// One machine, one wall clock: the host's file device sings sample n at
// Started()+n/48 kHz and plays what it hears on the same timeline; the
// page tells the wall-clock time of what it records (the partner's voice
// as WebAudio gets it, timed by getOutputTimestamp: when the browser says
// it reaches its speaker) and of when the voice it sings in place of the
// microphone is rendered into the call. Cross-correlation finds each
// voice in the other side's recording. So a browser's figures include what
// the browser says of its output and leave out its microphone's capture
// (a real microphone adds its own), and the desktop guest's exclude device
// buffers (file devices).
func browserLab(ctx context.Context, w io.Writer) ([]string, error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "guest\thost→guest ms\tguest→host ms\tscore h→g\tscore g→h\t")
	var kv []string
	hostVoice, guestVoice := voices(8)
	res, err := lab.Run(ctx, lab.Config{HostVoice: hostVoice, GuestVoice: guestVoice})
	if err != nil {
		return nil, fmt.Errorf("desktop guest: %w", err)
	}
	g2h, gs, err := res.Latency(true)
	if err != nil {
		return nil, fmt.Errorf("desktop guest→host: %w", err)
	}
	h2g, hs, err := res.Latency(false)
	if err != nil {
		return nil, fmt.Errorf("desktop host→guest: %w", err)
	}
	fmt.Fprintf(tw, "desktop (Duet)\t%.1f\t%.1f\t%.2f\t%.2f\t\n", ms(h2g), ms(g2h), hs, gs)
	kv = append(kv, fmt.Sprintf("desktop_h2g_ms=%.1f desktop_g2h_ms=%.1f", ms(h2g), ms(g2h)))
	for _, k := range browsertest.Kinds() {
		m, err := measureBrowser(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.2f\t%.2f\t\n", k, m.h2g, m.g2h, m.h2gScore, m.g2hScore)
		kv = append(kv, fmt.Sprintf("%s_h2g_ms=%.1f %s_g2h_ms=%.1f", k, m.h2g, k, m.g2h))
	}
	tw.Flush()
	return kv, nil
}

type browserFigures struct {
	h2g, g2h           float64 // ms
	h2gScore, g2hScore float64
}

// labPage is duetlab's end of the page's ?report hook (guest.js), and the
// recording it posts.
type labPage struct {
	mu     sync.Mutex
	state  map[string]any
	cmd    map[string]any
	rec    []float32
	recAt  float64 // wall-clock ms of rec[0] at the page's speaker
	recErr error
	posted chan struct{}
}

func (p *labPage) report(w http.ResponseWriter, r *http.Request) {
	var s map[string]any
	if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.state = s
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		cmd = map[string]any{}
	}
	json.NewEncoder(w).Encode(cmd)
}

func (p *labPage) record(w http.ResponseWriter, r *http.Request) {
	at, err := strconv.ParseFloat(r.Header.Get("X-Start-Wall-MS"), 64)
	rate := r.Header.Get("X-Rate")
	b, rerr := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil || rerr != nil:
		p.recErr = fmt.Errorf("the page's recording: %v %v", err, rerr)
	case rate != "48000":
		p.recErr = fmt.Errorf("the page records at %s Hz, not 48000", rate)
	default:
		p.rec = make([]float32, len(b)/4)
		for i := range p.rec {
			p.rec[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
		}
		p.recAt = at
	}
	close(p.posted)
}

// await polls the page's state until ok holds, or d passes.
func (p *labPage) await(ctx context.Context, d time.Duration, what string, ok func(map[string]any) bool) (map[string]any, error) {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		s := p.state
		p.mu.Unlock()
		if s != nil && ok(s) {
			return s, nil
		}
		if s != nil && s["phase"] == "problem" {
			return nil, fmt.Errorf("the page shows a problem: %v", s["problem"])
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("the page did not get to %s within %v (last state %v)", what, d, s)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// measureBrowser runs one duet with browser k as the guest.
func measureBrowser(ctx context.Context, k browsertest.Kind) (browserFigures, error) {
	var f browserFigures
	const seconds = 40 // the host sings that long: the browser joins meanwhile
	hostVoice, guestVoice := voices(seconds)
	dir, err := os.MkdirTemp("", "duetlab-browser")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	if err := wavfile.WriteFile(filepath.Join(dir, "voice.wav"), guestVoice[:6*audio.SampleRate]); err != nil {
		return f, err
	}

	page := &labPage{posted: make(chan struct{})}
	srv := server.New(server.Config{})
	srv.Handle(guestpage.Prefix, guestpage.Handler())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /report", page.report)
	mux.HandleFunc("POST /record", page.record)
	mux.Handle("GET /voice.wav", http.FileServer(http.Dir(dir)))
	mux.Handle("/", srv)
	hs := httptest.NewServer(mux)
	defer func() { srv.Close(); hs.Close() }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heard := &labSink{}
	dev := filedev.New(filedev.Config{Input: &audio.SliceReader{P: hostVoice}, Output: heard})
	host, err := app.Host(ctx, app.Config{Server: hs.URL, Device: dev, Loopback: true, Name: "Host"})
	if err != nil {
		return f, err
	}
	var running sync.WaitGroup
	defer running.Wait()
	defer cancel()
	running.Go(func() { host.Run(ctx) })
	link, err := guestpage.Link(hs.URL, host.Code())
	if err != nil {
		return f, err
	}
	b, err := browsertest.Launch(k, link+"?auto=1&report=/report", browsertest.Options{})
	if err != nil {
		return f, err
	}
	defer b.Close()
	if _, err := page.await(ctx, 30*time.Second, "connected", func(s map[string]any) bool {
		return s["phase"] == "connected" && s["partner"] == "Host"
	}); err != nil {
		return f, err
	}
	// Let both playouts settle, then sing and listen.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return f, ctx.Err()
	}
	page.mu.Lock()
	page.cmd = map[string]any{"do": "sing", "url": "/voice.wav"}
	page.mu.Unlock()
	s, err := page.await(ctx, 10*time.Second, "singing", func(s map[string]any) bool { return s["sungAtMS"] != nil })
	if err != nil {
		return f, err
	}
	sungAt, _ := s["sungAtMS"].(float64)
	page.mu.Lock()
	page.cmd = map[string]any{"do": "record", "ms": 4000, "path": "/record"}
	page.mu.Unlock()
	select {
	case <-page.posted:
	case <-time.After(20 * time.Second):
		return f, errors.New("the page posted no recording within 20 s")
	case <-ctx.Done():
		return f, ctx.Err()
	}
	page.mu.Lock()
	rec, recAt, recErr := page.rec, page.recAt, page.recErr
	page.mu.Unlock()
	if recErr != nil {
		return f, recErr
	}
	// The page has sung for more than 4 s: the host has heard it.
	start := dev.Started()
	wall := func(ms float64) time.Duration { return time.Unix(0, int64(ms*1e6)).Sub(start) } // on the device's timeline

	// Host → guest: a second of the host's voice, from 1 s into the
	// page's recording, found in it.
	const length = audio.SampleRate
	maxLag := audio.Samples(500 * time.Millisecond)
	from := audio.Samples(wall(recAt)) + audio.SampleRate // host voice index
	if from < 0 || from+length > len(hostVoice) || audio.SampleRate+length+maxLag > len(rec) {
		return f, fmt.Errorf("the recording (%d samples at %v) does not cover the host's voice", len(rec), wall(recAt))
	}
	lag, score := measure.Delay(hostVoice[from:from+length], rec[audio.SampleRate:audio.SampleRate+length+maxLag], maxLag)
	f.h2g, f.h2gScore = lag*1000/audio.SampleRate, score

	// Guest → host: a second of the page's voice, 2 s in, found in what
	// the host heard.
	out := heard.samples()
	at := audio.Samples(wall(sungAt)) + 2*audio.SampleRate // host output index of guest voice sample 2 s
	if at < 0 || at+length+maxLag > len(out) {
		return f, fmt.Errorf("the host's recording (%d samples) does not cover the page's voice (sung at %v)", len(out), wall(sungAt))
	}
	lag, score = measure.Delay(guestVoice[2*audio.SampleRate:2*audio.SampleRate+length], out[at:at+length+maxLag], maxLag)
	f.g2h, f.g2hScore = lag*1000/audio.SampleRate, score
	if f.h2gScore < 0.3 || f.g2hScore < 0.3 {
		return f, fmt.Errorf("a voice was not found (correlation %.2f host→guest, %.2f guest→host)", f.h2gScore, f.g2hScore)
	}
	return f, nil
}

// labSink keeps what the host's device plays.
type labSink struct {
	mu sync.Mutex
	p  []float32
}

func (s *labSink) Write(p []float32) error {
	s.mu.Lock()
	s.p = append(s.p, p...)
	s.mu.Unlock()
	return nil
}

func (s *labSink) Close() error { return nil }

func (s *labSink) samples() []float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]float32(nil), s.p...)
}
