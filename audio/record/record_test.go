package record

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/track"
	"github.com/duetapp/duet/audio/wavfile"
)

// clicks is a signal with a short burst every period samples.
func clicks(n, period int) []float32 {
	p := make([]float32, n)
	for i := period / 2; i < n; i += period {
		for k := range 48 {
			p[i+k] = float32(0.8 * math.Sin(2*math.Pi*float64(k)/8) * math.Exp(-float64(k)/12))
		}
	}
	return p
}

// onset finds the sample where the first burst after from begins.
func onset(p []float32, from int) int {
	for i := from; i < len(p); i++ {
		if math.Abs(float64(p[i])) > 0.2 {
			return i
		}
	}
	return -1
}

func read(t *testing.T, dir, name string) []float32 {
	t.Helper()
	p, err := wavfile.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAligned records a host voice and a guest voice that sang the same
// clicks at the same track positions; the guest's arrives as packets,
// late, out of order, one lost, its sound card 100 ppm fast, and its RTP
// clock starting anywhere: all in Opus, or changing codec every 200 ms
// (Opus, Opus Custom, L24, L16: look-aheads of 2.5, 1.33 and 0 ms). Both
// stems must put the clicks where the track has them, within a sample or
// two.
func TestAligned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		kinds []codec.Kind // one per 9,600 samples, in turn
	}{
		{"opus", []codec.Kind{codec.Opus}},
		{"switching", []codec.Kind{codec.Opus, codec.OpusCustom, codec.L24, codec.L16, codec.OpusCustom, codec.Opus, codec.L16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { testAligned(t, tc.kinds) })
		})
	}
}

func testAligned(t *testing.T, kinds []codec.Kind) {
	const n = 48000 * 3
	song := clicks(n, 4800)
	tr := &track.Track{Name: "clicks", Samples: song}
	dir := t.TempDir()
	take, err := Start(Config{Dir: dir, Track: tr, Flush: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The guest: its RTP time u advances 1.0001 per track sample, so it
	// sang track position pos at u = base + pos × 1.0001. It sends Opus in
	// 5 ms frames, the others in 128-sample device blocks; codecs change
	// at multiples of 9,600 samples, halfway between clicks.
	encs := map[codec.Kind]codec.FrameEncoder{}
	for k, packet := range map[codec.Kind]int{codec.Opus: 240, codec.OpusCustom: 128, codec.L16: 128, codec.L24: 128} {
		e, err := codec.FormatOf(k).NewEncoder(codec.EncoderOptions{Packet: packet})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		encs[k] = e
	}
	base := uint32(0xfffff000) // wraps during the song
	const ratio = 1.0001
	sung := make([]float32, n+n/10000)
	for i := range sung {
		if j := int(float64(i) / ratio); j < n {
			sung[i] = song[j]
		}
	}
	type pkt struct {
		ts   uint32
		kind codec.Kind
		data []byte
	}
	var pkts []pkt
	buf := make([]byte, codec.MaxPacket)
	for u := 0; ; {
		k := kinds[u/9600%len(kinds)]
		size := encs[k].FrameSamples()
		if u+size > len(sung) {
			break
		}
		m, err := encs[k].Encode(sung[u:u+size], buf)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, pkt{base + uint32(u), k, append([]byte(nil), buf[:m]...)})
		u += size
	}
	pkts = append(pkts[:100], pkts[101:]...) // lost
	for i := 0; i+1 < len(pkts); i += 7 {
		pkts[i], pkts[i+1] = pkts[i+1], pkts[i] // reordered
	}
	pos := 0
	for i, p := range pkts {
		// The host sings in step, in 240-sample blocks from position 0.
		if u := int(p.ts - base); pos+240 <= n && pos <= u {
			take.HostVoice(int64(pos), song[pos:pos+240])
			pos += 240
		}
		if i%50 == 0 {
			u := p.ts - base
			take.GuestPosition(p.ts, float64(u)/ratio)
		}
		take.GuestPacket(p.ts, p.kind, p.data)
		if i%100 == 99 {
			drained(t, take) // at the pace of a real song, the rings never fill
		}
	}
	for ; pos+240 <= n; pos += 240 {
		take.HostVoice(int64(pos), song[pos:pos+240])
	}
	if err := take.Close(); err != nil {
		t.Fatal(err)
	}
	host, guest, trk, mix := read(t, dir, HostFile), read(t, dir, GuestFile), read(t, dir, TrackFile), read(t, dir, MixFile)
	if len(host) != n || len(guest) != n || len(trk) != n || len(mix) != n {
		t.Fatalf("lengths host %d guest %d track %d mix %d, want %d", len(host), len(guest), len(trk), len(mix), n)
	}
	worst := 0
	for c := 2400; c < n-4800; c += 4800 {
		want := onset(trk, c)
		for name, p := range map[string][]float32{"host": host, "guest": guest} {
			got := onset(p, c)
			if d := got - want; d < -2 || d > 2 {
				t.Errorf("%s click at %d, track's at %d", name, got, want)
			} else if name == "guest" {
				worst = max(worst, max(d, -d))
			}
		}
	}
	t.Logf("guest clicks within %d samples of the track's", worst)
	if take.Dropped() != 0 {
		t.Errorf("%d dropped", take.Dropped())
	}
}

// drained lets the writer take everything from the rings, in a synctest
// bubble: one flush period passes on the fake clock, and once the writer,
// woken by its ticker, waits again, the rings must be empty.
func drained(t *testing.T, take *Take) {
	t.Helper()
	time.Sleep(take.cfg.Flush)
	synctest.Wait()
	if n := take.packets.Len() + take.host.Len(); n > 0 {
		t.Fatalf("%d blocks and packets left in the rings after a flush", n)
	}
}

// TestCrashSafe checks that files are valid while the take runs: what a
// killed process leaves behind.
func TestCrashSafe(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		take, err := Start(Config{Dir: dir, Flush: 10 * time.Millisecond, Hold: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer take.Close()
		voice := clicks(48000, 4800)
		for pos := 0; pos < len(voice); pos += 128 {
			take.HostVoice(int64(pos), voice[pos:pos+128])
			take.Live(voice[pos : pos+128])
		}
		// One flush: everything but the last Hold of the second is written.
		drained(t, take)
		if got := take.Length(); got != 900*time.Millisecond {
			t.Fatalf("%v written after a flush, want 900 ms", got)
		}
		host := read(t, dir, HostFile)
		if len(host) != 43200 {
			t.Errorf("host.wav holds %d samples while running, want 43200", len(host))
		}
		for i := range host {
			if math.Abs(float64(host[i]-voice[i])) > 1e-4 {
				t.Fatalf("sample %d is %v, want %v", i, host[i], voice[i])
			}
		}
	})
}

func TestStartRefusesExistingTake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, MixFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Dir: dir}); err == nil {
		t.Fatal("overwrote a take")
	}
	if _, err := os.Stat(filepath.Join(dir, HostFile)); !os.IsNotExist(err) {
		t.Errorf("left host.wav behind (%v)", err)
	}
}

// TestHostVoiceDoesNotAllocate counts the audio thread's allocations in a
// synctest bubble: once the writer has started and waits for its ticker,
// fake time stands still while the test runs, so the writer allocates
// nothing that AllocsPerRun, which counts the whole process's, would see.
func TestHostVoiceDoesNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		take, err := Start(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer take.Close()
		synctest.Wait()
		p := make([]float32, 128)
		if a := testing.AllocsPerRun(100, func() { take.HostVoice(0, p); take.Live(p) }); a != 0 {
			t.Errorf("%v allocations", a)
		}
	})
}

// TestNewGuest records two guests one after the other, the second with
// an RTP clock a quarter of the way round from the first's: both land
// where they sang, and the jump costs no time.
func TestNewGuest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 48000 * 2
		take, song, dir, enc := clickTake(t, n)
		buf := make([]byte, codec.MaxPacket)
		base := uint32(1000)
		for pos := 0; pos+240 <= n; pos += 240 {
			if pos == n/2 {
				take.NewGuest()
				base += 1 << 30
			}
			take.HostVoice(int64(pos), song[pos:pos+240])
			k, err := enc.Encode(song[pos:pos+240], buf)
			if err != nil {
				t.Fatal(err)
			}
			ts := base + uint32(pos)
			if pos%4800 == 0 || pos == n/2 {
				take.GuestPosition(ts, float64(pos))
			}
			take.GuestPacket(ts, codec.Opus, buf[:k])
			if pos%24000 == 0 {
				drained(t, take)
			}
		}
		if err := take.Close(); err != nil {
			t.Fatal(err)
		}
		trk, guest := read(t, dir, TrackFile), read(t, dir, GuestFile)
		if len(guest) != n || take.Dropped() != 0 {
			t.Errorf("guest.wav holds %d samples, %d dropped; want %d, none: the new guest's clock is no gap to fill", len(guest), take.Dropped(), n)
		}
		for c := 2400; c < n-4800; c += 4800 {
			want, got := onset(trk, c), onset(guest, c)
			if d := got - want; d < -2 || d > 2 {
				t.Errorf("guest click at %d, track's at %d", got, want)
			}
		}
	})
}

// TestGuestArrivals records a guest that reports no positions (a browser):
// its voice is placed by when its packets arrived, each up to 10 ms late
// on the way, one in ten not delayed at all, its RTP clock starting
// anywhere. The clicks land within two samples of the track's. Halfway,
// its reports start, against estimates 2 ms too late: from then on the
// reports place it, the estimates are ignored.
func TestGuestArrivals(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n, bias = 48000 * 4, 96
		rng := rand.New(rand.NewPCG(1, 2))
		trk, guest := recordArrivals(t, n, func(take *Take, pos int, ts uint32) {
			late := 0.0
			if rng.IntN(10) != 0 {
				late = rng.Float64() * 480
			}
			if pos < n/2 {
				take.GuestArrived(ts, float64(pos)+late)
			} else {
				take.GuestArrived(ts, float64(pos)+bias+late)
				if pos%48000 == 0 { // once a second: between two, estimates would come
					take.GuestPosition(ts, float64(pos))
				}
			}
		})
		worst := 0
		for c := 2400; c < n-4800; c += 4800 {
			want, got := onset(trk, c), onset(guest, c)
			d := got - want
			if d < -2 || d > 2 {
				t.Errorf("guest click at %d, track's at %d (%+d)", got, want, d)
			}
			worst = max(worst, d, -d)
		}
		t.Logf("guest clicks within %d samples of the track's", worst)
	})
}

// TestGuestArrivalsDelayBump: a guest without reports whose every packet
// comes 50 ms later for a second (a loaded browser's sending) is still
// placed by the tightest bound of the last two seconds: its clicks land
// within two samples of the track's throughout. Placed by each half
// second's own bound, those of that second landed 50 ms late.
func TestGuestArrivalsDelayBump(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 48000 * 5
		rng := rand.New(rand.NewPCG(3, 4))
		trk, guest := recordArrivals(t, n, func(take *Take, pos int, ts uint32) {
			late := 0.0
			if pos/240%10 != 0 { // one in ten comes straight through
				late = rng.Float64() * 480
			}
			if pos >= 2*48000 && pos < 3*48000 {
				late += 2400
			}
			take.GuestArrived(ts, float64(pos)+late)
		})
		for c := 2400; c < n-4800; c += 4800 {
			if d := onset(guest, c) - onset(trk, c); d < -2 || d > 2 {
				t.Errorf("guest click at %d, track's at %d (%+d)", onset(guest, c), onset(trk, c), d)
			}
		}
	})
}

// clickTake starts a take in a directory of its own over a track of n
// samples of clicks every 100 ms, and an encoder for the guest's voice
// (5 ms Opus packets).
func clickTake(t *testing.T, n int) (take *Take, song []float32, dir string, enc *codec.Encoder) {
	t.Helper()
	song = clicks(n, 4800)
	dir = t.TempDir()
	take, err := Start(Config{Dir: dir, Track: &track.Track{Samples: song}, Flush: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	enc, err = codec.NewEncoder(5*time.Millisecond, 96000)
	if err != nil {
		t.Fatal(err)
	}
	return take, song, dir, enc
}

// recordArrivals records n samples of clicks every 100 ms as both the
// host's voice and a guest's (5 ms Opus packets, its RTP clock starting at
// 3,000,000,000), telling the take of each guest packet through arrive
// before the packet itself; it returns the take's track and guest stems.
func recordArrivals(t *testing.T, n int, arrive func(take *Take, pos int, ts uint32)) (trk, guest []float32) {
	t.Helper()
	take, song, dir, enc := clickTake(t, n)
	buf := make([]byte, codec.MaxPacket)
	const base = uint32(3_000_000_000)
	for pos := 0; pos+240 <= n; pos += 240 {
		take.HostVoice(int64(pos), song[pos:pos+240])
		k, err := enc.Encode(song[pos:pos+240], buf)
		if err != nil {
			t.Fatal(err)
		}
		ts := base + uint32(pos)
		arrive(take, pos, ts)
		take.GuestPacket(ts, codec.Opus, buf[:k])
		if pos%24000 == 0 {
			drained(t, take)
		}
	}
	if err := take.Close(); err != nil {
		t.Fatal(err)
	}
	return read(t, dir, TrackFile), read(t, dir, GuestFile)
}

// TestPositionAtExtrapolates: beyond the pairs the guest's rate comes only
// from pairs at least two seconds apart; two close ones (a browser's first
// estimates, 30 ms apart and half a millisecond off) give none, and the
// voice goes on at the nominal rate instead of drifting 12 ms in half a
// second. Far apart ones, 100 ppm off, are followed.
func TestPositionAtExtrapolates(t *testing.T) {
	close := []pair{{1920, 1945}, {3360, 3360}}
	if got := positionAt(close, 28800); math.Abs(got-28800) > 0.5 {
		t.Errorf("from two pairs 30 ms apart, 28800 at %.1f, want 28800", got)
	}
	if got := positionAt(close, 0); math.Abs(got-25) > 0.5 {
		t.Errorf("before them, 0 at %.1f, want 25 (the first pair's offset)", got)
	}
	far := []pair{{0, 0}, {96000, 96009.6}, {120000, 120012}}
	if got := positionAt(far, 168000); math.Abs(got-168016.8) > 0.5 {
		t.Errorf("from pairs 100 ppm off, 168000 at %.1f, want 168016.8", got)
	}
	if got := positionAt(far, 48000); math.Abs(got-48004.8) > 0.01 {
		t.Errorf("between pairs, 48000 at %.2f, want 48004.80", got)
	}
}
