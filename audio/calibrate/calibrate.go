// Package calibrate measures an audio device's real round trip: it plays a
// probe (linear chirps) on the output, records the input, and finds the
// probe in the recording by cross-correlation. With a loopback cable, or a
// speaker heard by the microphone, the delay found is what the sound card,
// driver and buffers add, output to input, which the drivers' own figures
// often get wrong.
//
// Run drives any audio.Device. Its process callback only copies into and
// out of buffers made beforehand; the analysis runs after the device stops.
package calibrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/measure"
	"github.com/duetapp/duet/audio/tone"
)

// ErrNoEcho reports that the probe was not heard back.
var ErrNoEcho = errors.New("calibrate: the test sound did not come back: connect the output to the input (a loopback cable, or turn the speakers up near the microphone)")

const (
	chirpLen   = audio.SampleRate / 10 // 100 ms
	gap        = audio.SampleRate * 4 / 10
	probes     = 4
	leadIn     = audio.SampleRate / 2 // silence first, to let the device settle
	maxLatency = 500 * time.Millisecond
)

// MinConfidence is the confidence below which a measurement is not to be
// trusted: with every probe matched (Run refuses a match under 0.5), the
// probes disagreed by more than about two samples.
const MinConfidence = 0.5

// ErrUnreliable reports a measurement below MinConfidence.
var ErrUnreliable = errors.New("calibrate: the measurement is not reliable")

// Result is a measured round trip.
type Result struct {
	// RoundTrip is the delay from output to input.
	RoundTrip time.Duration
	// Confidence is 0…1: the weakest probe's normalised correlation,
	// scaled down when the probes disagree by more than a sample.
	Confidence float64
	// Each is the round trip measured by each probe.
	Each []time.Duration
}

// Check returns an error wrapping ErrUnreliable, which says what to do,
// when r's confidence is below MinConfidence.
func (r Result) Check() error {
	if r.Confidence < MinConfidence {
		return fmt.Errorf("%w (confidence %.2f): hold the microphone closer to the speaker, or use a cable, and try again", ErrUnreliable, r.Confidence)
	}
	return nil
}

// Run plays the probe through dev, which it starts, and closes dev when
// done. progress, if not nil, is told the fraction done (0…1) from the
// calling goroutine.
func Run(ctx context.Context, dev audio.Device, progress func(float64)) (Result, error) {
	chirp := tone.Chirp(300, 8000, chirpLen, 0.5)
	total := leadIn + probes*(chirpLen+gap) + audio.Samples(maxLatency)
	play := make([]float32, total)
	for i := range probes {
		copy(play[leadIn+i*(chirpLen+gap):], chirp)
	}
	rec := make([]float32, total)

	var pos atomic.Int64 // samples played and recorded so far
	finished := make(chan struct{})
	err := dev.Start(func(in, out []float32) {
		p := int(pos.Load())
		if p >= total {
			clear(out)
			return
		}
		n := copy(out, play[p:])
		clear(out[n:])
		copy(rec[p:], in)
		pos.Store(int64(p + len(in)))
		if p+len(in) >= total {
			close(finished)
		}
	})
	if err != nil {
		dev.Close()
		return Result{}, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-ctx.Done():
			dev.Close()
			return Result{}, ctx.Err()
		case <-dev.Done():
			err := dev.Err()
			dev.Close()
			if err != nil {
				return Result{}, err
			}
			return Result{}, errors.New("calibrate: the audio device stopped")
		case <-tick.C:
			if progress != nil {
				progress(float64(pos.Load()) / float64(total))
			}
		}
	}
	if err := dev.Close(); err != nil {
		return Result{}, err
	}
	if progress != nil {
		progress(1)
	}
	return analyse(chirp, rec)
}

// analyse finds each probe in the recording.
func analyse(chirp, rec []float32) (Result, error) {
	var res Result
	maxLag := audio.Samples(maxLatency)
	minScore := 1.0
	var lags []float64
	for i := range probes {
		at := leadIn + i*(chirpLen+gap)
		end := min(len(rec), at+chirpLen+maxLag)
		lag, score := measure.Delay(chirp, rec[at:end], maxLag)
		if score < 0.5 {
			return Result{}, fmt.Errorf("%w (probe %d matched at %.2f)", ErrNoEcho, i+1, score)
		}
		minScore = min(minScore, score)
		lags = append(lags, lag)
		res.Each = append(res.Each, samplesToDuration(lag))
	}
	slices.Sort(lags)
	median := (lags[len(lags)/2-1] + lags[len(lags)/2]) / 2
	spread := lags[len(lags)-1] - lags[0]
	res.RoundTrip = samplesToDuration(median)
	res.Confidence = minScore / math.Max(1, spread)
	return res, nil
}

func samplesToDuration(n float64) time.Duration {
	return time.Duration(n * float64(time.Second) / audio.SampleRate)
}
