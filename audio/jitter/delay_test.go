package jitter

import "testing"

// TestDelayWindowFreeQuantile: the need waits for 99.8 % of the packets
// where that costs no more than freeWait over the quantile asked for, and
// keeps to the quantile where the slow packets are further out.
func TestDelayWindowFreeQuantile(t *testing.T) {
	for _, tc := range []struct {
		name string
		slow int64 // one packet in 200 is slow by this many samples more
		want int64
	}{
		{"slow ones near", 5, 5},
		{"slow ones a block out", 128, 0},
	} {
		w := newDelayWindow(0.98)
		const block = 128
		for i := range 1000 {
			ts := uint32(i * block)
			extra := int64(0)
			if i%200 == 199 {
				extra = tc.slow
			}
			avail := int64(i*block) + 256 + extra
			w.add(ts, avail, avail)
		}
		got := w.compute(int64(999*block)+256) - 256
		if got != tc.want {
			t.Errorf("%s: need %d samples over the fastest, want %d", tc.name, got, tc.want)
		}
	}
}
