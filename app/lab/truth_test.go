package lab

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/duetapp/duet/app"
	"github.com/duetapp/duet/app/internal/testkit"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/net/impair"
)

func rtpPacket(pt uint8, seq uint16, ts uint32) []byte {
	b := make([]byte, 20)
	b[0], b[1] = 0x80, pt
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], 0xfeed)
	return b
}

// TestWireTruth: the socket's view counts lost, duplicated and reordered
// voice packets across the 16-bit wraparound, and the time the lost ones
// carried, and ignores what is not voice.
func TestWireTruth(t *testing.T) {
	var w wire
	const frame = 240
	for i := range 12 {
		w.sent(rtpPacket(111, uint16(65530+i), uint32(i*frame)))
	}
	w.sent(rtpPacket(200, 1, 0))           // RTCP
	w.sent([]byte{0x16, 0xfe, 0xfd, 0, 0}) // DTLS
	// 65532, 65533 and 2 lost, 65535 and 0 swapped, 3 twice, 5 never
	// came (after the last to arrive: not known lost).
	for _, i := range []int{0, 1, 4, 6, 5, 7, 9, 9, 10} {
		w.read(rtpPacket(111, uint16(65530+i), uint32(i*frame)))
	}
	w.read(rtpPacket(201, 7, 0))
	got := w.truth()
	want := Truth{Sent: 12, Arrived: 8, Lost: 3, LostSamples: 3 * frame, Duplicated: 1, Reordered: 1}
	if got != want {
		t.Errorf("truth %+v, want %+v", got, want)
	}
}

// TestCountsMatchTruth checks what each session reports of the partner's
// voice against what the network did to it, seen on the sockets (Result's
// ToHost and ToGuest): packets lost within one, and concealment within a
// packet of the audio the lost packets carried plus what late packets and
// waits for them explain. Two paths from issue 16: reordering with loss
// and redundancy (RED) on, where a recovered frame's own packet coming
// later counted as a duplicate and so as lost; and a 5 s cut, longer than
// the jitter buffer, which counted nothing lost and only 100 ms concealed.
func TestCountsMatchTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("two duets of 12 s")
	}
	for _, tc := range []struct {
		name  string
		path  impair.Profile
		codec codec.Kind
		cut   bool
	}{
		{"reordering", impair.Profile{Delay: 35 * time.Millisecond, Jitter: 12 * time.Millisecond, Reorder: true,
			Loss: impair.GilbertElliott{LossGood: 0.03}, Seed: 16}, codec.Opus, false},
		{"cut", impair.Profile{Delay: 5 * time.Millisecond, Seed: 16}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			var cut *impair.Cut
			connected := make(chan struct{}, 2)
			if tc.cut {
				cut = &impair.Cut{}
				path.Cut = cut
			}
			cfg := Config{
				HostVoice:  testkit.Sine(196, 12),
				GuestVoice: testkit.Sine(330, 12),
				Network:    &path,
				Codec:      tc.codec,
				Logger:     testkit.Logger(t),
				OnEvent: func(host bool, e app.Event) {
					if e.State == app.StateConnected {
						select {
						case connected <- struct{}{}:
						default:
						}
					}
				},
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			type outcome struct {
				res *Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := Run(ctx, cfg)
				done <- outcome{res, err}
			}()
			if tc.cut {
				for range 2 {
					select {
					case <-connected:
					case <-time.After(30 * time.Second):
						t.Fatal("the singers did not connect")
					}
				}
				// Sing 3 s, then the path goes down for 5 s: the scenario
				// itself, not a wait for something to happen.
				time.Sleep(3 * time.Second)
				cut.Set(true)
				time.Sleep(5 * time.Second)
				cut.Set(false)
			}
			o := <-done
			if o.err != nil {
				t.Fatal(o.err)
			}
			check := func(who string, truth Truth, st app.Stats) {
				v := st.Voice
				t.Logf("%s: truth %+v", who, truth)
				t.Logf("%s: lost %d, discarded %d, skipped %d, recovered %d, duplicated %d, concealed %d samples (%d events, %d waits), received %d, ring overruns %d, resets %d",
					who, v.PacketsLost, v.PacketsDiscarded, v.PacketsSkipped, v.PacketsRecovered, v.PacketsDuplicated,
					v.ConcealedSamples, v.ConcealmentEvents, v.Underruns, v.PacketsReceived, st.PacketOverruns, v.Resets)
				if truth.Arrived == 0 {
					t.Fatalf("%s: no voice packet came over the sockets", who)
				}
				// Packets the audio thread had no room for never reached
				// the buffer: lost to it, though they came.
				if d := v.PacketsLost - int64(truth.Lost) - st.PacketOverruns; d < -1 || d > 1 {
					t.Errorf("%s: reports %d lost (%d ring overruns), the network lost %d", who, v.PacketsLost, st.PacketOverruns, truth.Lost)
				}
				if v.PacketsDuplicated != int64(truth.Duplicated) {
					t.Errorf("%s: reports %d duplicated, the network duplicated %d", who, v.PacketsDuplicated, truth.Duplicated)
				}
				if v.PacketsRecovered > v.PacketsLost+v.PacketsDiscarded {
					t.Errorf("%s: %d recovered of %d lost and %d late", who, v.PacketsRecovered, v.PacketsLost, v.PacketsDiscarded)
				}
				// Concealed: the lost audio, less what redundancy brought
				// back, plus late packets' frames and the waits for them,
				// within a packet. A packet holds 20 ms at most (Opus's
				// longest frame, which the adapter sends on a path it
				// finds congested, as after a cut). A wait conceals whole pitch periods of the voice,
				// up to four of Opus Custom's 64-sample steps, and may be
				// rounded up by less than the longest period (640 samples)
				// when its packet never comes (jitter's expander).
				const frame = 960
				low := int64(truth.LostSamples) - v.PacketsRecovered*frame
				high := int64(truth.LostSamples) + v.PacketsDiscarded*frame + v.Underruns*(4*codec.CustomFrame+640)
				if c := v.ConcealedSamples; c < low-frame || c > high+frame {
					t.Errorf("%s: concealed %d samples, the network's loss explains %d…%d (± %d)", who, c, low, high, frame)
				}
			}
			check("host", o.res.ToHost, o.res.HostStats)
			check("guest", o.res.ToGuest, o.res.GuestStats)
		})
	}
}
