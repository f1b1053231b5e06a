package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/track/tracktest"
)

// wavBomb is attack 2 of issue 12, against a guest: a 262 KB 8-bit WAV at
// 200 Hz, decoded as a guest decodes the track its host sent; then the
// same samples at the lowest rate Duet accepts, whose decode must cost
// about its output and no more. For each it reports the peak growth of
// the process's resident memory during the decode (which counts
// libsamplerate's C buffers too) and of the Go heap, both sampled every
// millisecond, and what the decode returned. It runs first, in a process
// that has done nothing else yet.
func wavBomb(ctx context.Context) (attackResult, error) {
	res := attackResult{name: "WAV bomb: 262 KB of 8-bit WAV at 200 Hz, decoded"}
	bomb, err := decodePeak(ctx, tracktest.Bomb())
	if err != nil {
		return res, err
	}
	low, err := decodePeak(ctx, tracktest.WAV(track.MinRate, 8, 1, make([]float32, tracktest.BombSamples)))
	if err != nil {
		return res, err
	}
	res.result = fmt.Sprintf("%s; the same samples at %d Hz: %s", bomb, track.MinRate, low)
	res.kv = []string{fmt.Sprintf("wav_bomb_peak_mb=%.0f wav_%dhz_peak_mb=%.0f wav_%dhz_output_mb=%.0f",
		bomb.peakMB(), track.MinRate, low.peakMB(), track.MinRate, low.outputMB)}
	return res, nil
}

// decodeStats is what one decode cost.
type decodeStats struct {
	size          int     // of the file, bytes
	err           error   // of the decode
	seconds       float64 // of audio decoded
	outputMB      float64 // the samples decoded
	took          time.Duration
	rssMB, heapMB float64 // peak growth during the decode
	allocMB       float64 // allocated on the Go heap in all
}

func (d decodeStats) peakMB() float64 { return max(d.rssMB, d.heapMB) }

func (d decodeStats) String() string {
	outcome := fmt.Sprintf("refused (%v)", d.err)
	if d.err == nil {
		outcome = fmt.Sprintf("decoded to %.0f s (%.0f MB of samples)", d.seconds, d.outputMB)
	}
	return fmt.Sprintf("%d-byte file %s in %.1f s, peak growth RSS %.0f MB, Go heap %.0f MB, Go allocated %.0f MB",
		d.size, outcome, d.took.Seconds(), d.rssMB, d.heapMB, d.allocMB)
}

// decodePeak decodes file with track.Decode, sampling memory meanwhile.
func decodePeak(ctx context.Context, file []byte) (decodeStats, error) {
	// Unbounded, the bomb's decode took 50 to 70 s here (libsamplerate at
	// its best quality on 63 million samples).
	const bound = 2 * time.Minute
	st := decodeStats{size: len(file)}
	debug.FreeOSMemory()
	rss0, err := selfRSS()
	if err != nil {
		return st, err
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
	stopSampling := func() {
		close(stop)
		wg.Wait()
	}
	type decoded struct {
		samples int
		alloc   uint64
		err     error
	}
	done := make(chan decoded, 1)
	start := time.Now()
	go func() {
		// Owned by decodePeak, which waits for it below unless the decode
		// outlives the bound; then the lab fails and exits.
		var d decoded
		d.alloc = tracktest.Alloc(func() {
			t, err := track.Decode("bomb.wav", file)
			if d.err = err; err == nil {
				d.samples = len(t.Samples)
			}
		})
		done <- d
	}()
	var d decoded
	select {
	case d = <-done:
	case <-time.After(bound):
		stopSampling()
		return st, fmt.Errorf("the decode ran past %v", bound)
	case <-ctx.Done():
		stopSampling()
		return st, ctx.Err()
	}
	st.took = time.Since(start)
	stopSampling()
	debug.FreeOSMemory() // the samples, before what comes next

	grow := func(peak, base uint64) float64 { return float64(max(peak, base)-base) / (1 << 20) }
	st.rssMB, st.heapMB = grow(peakRSS, rss0), grow(peakHeap, heap0)
	st.err, st.allocMB = d.err, float64(d.alloc)/(1<<20)
	st.seconds, st.outputMB = float64(d.samples)/audio.SampleRate, float64(d.samples*4)/(1<<20)
	return st, nil
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
