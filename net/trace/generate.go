package trace

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/duetapp/duet/net/impair"
)

// Options shape a synthetic trace.
type Options struct {
	// Duration is how long the sender sends; 0 means a minute.
	Duration time.Duration
	// Frame is RTP ticks (48 kHz samples) per packet; 0 means 240 (5 ms).
	Frame int
	// DriftPPM is how fast the sender's clock runs against the
	// receiver's, in parts per million: +200 sends 200 ppm more packets
	// per receiver second than nominal.
	DriftPPM float64
	// Size is each packet's size on the wire in bytes, for the profile's
	// rate limit; 0 means 120 (a 5 ms Opus frame at 96 kbit/s with RTP,
	// SRTP, UDP and IP headers).
	Size int
	// Seq and TS are the first packet's sequence number and timestamp.
	Seq uint16
	TS  uint32
}

// Generate returns the arrivals of a stream of packets sent every
// Options.Frame ticks on the sender's clock over path p (seeded by p.Seed):
// the same arguments give the same trace. Arrivals are whole microseconds
// on the receiver's clock, whose zero is the first send.
func Generate(p impair.Profile, o Options) *Trace {
	if o.Duration <= 0 {
		o.Duration = time.Minute
	}
	if o.Frame <= 0 {
		o.Frame = 240
	}
	if o.Size <= 0 {
		o.Size = 120
	}
	// Receiver-clock seconds between sends.
	period := float64(o.Frame) / 48000 / (1 + o.DriftPPM*1e-6)
	n := int(o.Duration.Seconds() / period)
	m := impair.NewModel(p)
	t := &Trace{
		Frame: o.Frame,
		Sent:  n,
		Comments: []string{fmt.Sprintf(" scenario=%s seed=%d drift_ppm=%+g duration=%v",
			p.Name, p.Seed, o.DriftPPM, o.Duration)},
	}
	for i := range n {
		sent := time.Duration(float64(i) * period * float64(time.Second))
		f := m.Send(sent, o.Size)
		for c := range f.Copies {
			at := f.Arrival + time.Duration(c)*impair.DuplicateGap
			t.Records = append(t.Records, Record{
				Seq:     o.Seq + uint16(i),
				TS:      o.TS + uint32(i*o.Frame),
				Arrival: at.Truncate(time.Microsecond),
			})
		}
	}
	// Copies and reordered packets arrive out of send order.
	slices.SortStableFunc(t.Records, func(a, b Record) int {
		return cmp.Compare(a.Arrival, b.Arrival)
	})
	return t
}
