// Package miccheck shows a singer that their microphone is heard: it runs
// an audio device that plays silence and reports the input's level (peak
// and RMS in dBFS, audio/meter) at a steady interval, for the level bar of
// a setup screen.
//
// Run drives any audio.Device (the real one is audio/device's). Its
// process callback only hands each input block to a lock-free meter and
// clears the output; the level is measured, and level called, on Run's
// goroutine. Its errors are sentences for the singer.
package miccheck

import (
	"context"
	"fmt"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/meter"
)

// DefaultEvery is how often Run reports the level when not told: 20 times
// a second, about as often as a level bar is redrawn.
const DefaultEvery = 50 * time.Millisecond

// Run starts dev, plays silence on it and calls level with the input's
// level every interval (DefaultEvery if 0) until ctx ends or the device
// stops; it closes dev before it returns. It returns nil when ctx ended or
// the input simply ended, and an error wrapping the device's when the
// device was lost.
func Run(ctx context.Context, dev audio.Device, every time.Duration, level func(meter.Level)) error {
	defer dev.Close()
	if every <= 0 {
		every = DefaultEvery
	}
	m := meter.New()
	if err := dev.Start(func(in, out []float32) {
		m.Write(in)
		clear(out)
	}); err != nil {
		return fmt.Errorf("the microphone did not start: %w", err)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-dev.Done():
			if err := dev.Err(); err != nil {
				return fmt.Errorf("the microphone stopped: %w", err)
			}
			return nil
		case <-tick.C:
			level(m.Level())
		}
	}
}
