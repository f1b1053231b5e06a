package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/track/tracktest"
)

// wavBomb is attack 2 of issue 12, against a guest: a 262 KB 8-bit WAV at
// 200 Hz, decoded as a guest decodes the track its host sent. It reports
// the peak growth of the process's resident memory during the decode
// (which counts libsamplerate's C buffers too) and of the Go heap, both
// sampled every millisecond, and what the decode returned. It runs first,
// in a process that has done nothing else yet.
func wavBomb(ctx context.Context) (attackResult, error) {
	// Unbounded, the decode took 50 s here (libsamplerate at its best
	// quality on 63 million samples).
	const bound = 2 * time.Minute
	res := attackResult{name: "WAV bomb: 262 KB of 8-bit WAV at 200 Hz, decoded"}
	bomb := tracktest.Bomb()
	debug.FreeOSMemory()
	rss0, err := selfRSS()
	if err != nil {
		return res, err
	}
	heap0 := heapBytes()

	var (
		peakRSS, peakHeap uint64
		wg                sync.WaitGroup
		stop              = make(chan struct{})
	)
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if r, err := selfRSS(); err == nil {
				peakRSS = max(peakRSS, r)
			}
			peakHeap = max(peakHeap, heapBytes())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	type decoded struct {
		t   *track.Track
		err error
	}
	done := make(chan decoded, 1)
	start := time.Now()
	var alloc uint64
	go func() {
		// Owned by this function, which waits for it below unless the
		// decode outlives the bound; then the lab fails and exits.
		var d decoded
		alloc = tracktest.Alloc(func() { d.t, d.err = track.Decode("bomb.wav", bomb) })
		done <- d
	}()
	var d decoded
	select {
	case d = <-done:
	case <-time.After(bound):
		close(stop)
		wg.Wait()
		return res, fmt.Errorf("the decode ran past %v", bound)
	case <-ctx.Done():
		close(stop)
		wg.Wait()
		return res, ctx.Err()
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()

	grow := func(peak, base uint64) float64 { return float64(max(peak, base)-base) / (1 << 20) }
	rssMB, heapMB := grow(peakRSS, rss0), grow(peakHeap, heap0)
	outcome := fmt.Sprintf("refused: %v", d.err)
	if d.err == nil {
		outcome = fmt.Sprintf("decoded to %.0f s (%d MB of samples)", float64(len(d.t.Samples))/48000, len(d.t.Samples)*4>>20)
	}
	res.result = fmt.Sprintf("%d-byte file; %s in %.1f s; peak growth: RSS %.0f MB, Go heap %.0f MB; Go allocated %.0f MB",
		len(bomb), outcome, took.Seconds(), rssMB, heapMB, float64(alloc)/(1<<20))
	d = decoded{}
	debug.FreeOSMemory() // the samples, before the next attack
	res.kv = []string{fmt.Sprintf("wav_bomb_peak_mb=%.0f", max(rssMB, heapMB))}
	return res, nil
}

// selfRSS returns this process's resident memory in bytes.
func selfRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	kb, err := statusKB(b, "VmRSS")
	return uint64(kb) << 10, err
}

// heapBytes returns the bytes of live and not yet swept heap objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
