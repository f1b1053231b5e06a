package echo_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/echo"
	"github.com/duetapp/duet/audio/echo/echotest"
	"github.com/duetapp/duet/audio/measure"
)

const pathDelay = 12 * time.Millisecond // two 128-sample device buffers and some

func newCanceller(t testing.TB, k echo.Kind, o echo.Options) *echo.Canceller {
	t.Helper()
	c, err := echo.New(k, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestDefaultRemovesEcho runs the lab's scene through the default canceller
// and through none: without one the echo is plain, with it the echo is
// 25 dB down (the lab measures 31–32) and the near-end singer barely
// touched in double talk.
func TestDefaultRemovesEcho(t *testing.T) {
	scene := echotest.NewScene(pathDelay)
	if rms := measure.DBFS(measure.RMS(scene.Echo)); rms < -30 {
		t.Fatalf("the scene's echo is at %.1f dBFS, too faint to test with", rms)
	}
	off := scene.Measure(scene.Run(echotest.Off{}, 128))
	if off.ERLE > 1 || off.ERLE < -1 {
		t.Errorf("no canceller: ERLE %.1f dB, want 0", off.ERLE)
	}
	c := newCanceller(t, echo.Default, echo.Options{Delay: pathDelay})
	res := scene.Measure(scene.Run(c, 128))
	t.Logf("%v: %+v", echo.Default, res)
	if res.ERLE < 25 {
		t.Errorf("ERLE %.1f dB, want ≥ 25", res.ERLE)
	}
	if res.DoubleTalk > 4 {
		t.Errorf("near-end singer %.1f dB down in double talk, want ≤ 4", res.DoubleTalk)
	}
	if res.After < 20 {
		t.Errorf("ERLE after the echo path changed %.1f dB, want ≥ 20", res.After)
	}
}

// TestBlockSizes checks that the callback size changes nothing but the
// latency: odd and changing blocks give the same samples as 10 ms blocks.
func TestBlockSizes(t *testing.T) {
	n := 3 * audio.SampleRate
	far := echotest.Singer(n, 220, 0.5, 1)
	mic := echotest.NewRoom(100*time.Millisecond, pathDelay, 3).Echo(far)
	for _, k := range echo.Kinds() {
		run := func(blocks []int) ([]float32, int) {
			c := newCanceller(t, k, echo.Options{Delay: pathDelay})
			out := make([]float32, n)
			for i, b := 0, 0; i < n; b++ {
				j := min(i+blocks[b%len(blocks)], n)
				c.Process(mic[i:j], far[i:j], out[i:j])
				i = j
			}
			return out, c.LatencySamples()
		}
		want, wantLat := run([]int{480})
		for _, blocks := range [][]int{{128}, {37}, {64, 1000, 1, 256, 480, 7}} {
			got, lat := run(blocks)
			extra := lat - wantLat
			if extra < 0 || extra >= 480 {
				t.Errorf("%v blocks %v: latency %d, want %d plus less than a frame", k, blocks, lat, wantLat)
				continue
			}
			for i := audio.SampleRate / 2; i < n-extra; i++ {
				if got[i+extra] != want[i] {
					t.Errorf("%v blocks %v: sample %d is %v, want %v", k, blocks, i, got[i+extra], want[i])
					break
				}
			}
		}
	}
}

// TestLatency checks that Latency is how far the output trails the
// microphone, library delay included, by sending noise straight in.
func TestLatency(t *testing.T) {
	n := 2 * audio.SampleRate
	voice := echotest.Noise(n, 0.1, 9) // white: one sharp correlation peak
	silence := make([]float32, n)
	for _, k := range echo.Kinds() {
		for _, o := range []echo.Options{{}, {NoiseSuppression: true}, {SuppressResidual: true}} {
			for _, block := range []int{480, 128} {
				c := newCanceller(t, k, o)
				out := make([]float32, n)
				for i := 0; i < n; i += block {
					j := min(i+block, n)
					c.Process(voice[i:j], silence[i:j], out[i:j])
				}
				lag, score := measure.Delay(voice, out, 2000)
				if d := lag - float64(c.LatencySamples()); math.Abs(d) > 4 || score < 0.5 { // noise suppression takes some of the noise
					t.Errorf("%v %+v block %d: output %.1f samples late (score %.2f), Latency says %d", k, o, block, lag, score, c.LatencySamples())
				}
			}
		}
	}
}

// TestWebRTCFlat sends tones across a voice's range through WebRTC with
// nothing played: what comes out is what went in, within 0.25 dB (the
// library's filter bank alone takes 0.58 dB below 200 Hz). Speex is not
// flat: its DC notch cuts 9 dB at 50 Hz, 2 dB at 100 Hz.
func TestWebRTCFlat(t *testing.T) {
	const n = audio.SampleRate
	silence := make([]float32, n)
	for _, hz := range []float64{50, 100, 165, 250, 400, 600, 1000, 2000, 3000, 5000, 6000} {
		tone := make([]float32, n)
		for i := range tone {
			tone[i] = float32(0.3 * math.Sin(2*math.Pi*hz*float64(i)/audio.SampleRate))
		}
		c := newCanceller(t, echo.WebRTC, echo.Options{Delay: pathDelay})
		out := make([]float32, n)
		for i := 0; i < n; i += 128 {
			j := min(i+128, n)
			c.Process(tone[i:j], silence[i:j], out[i:j])
		}
		settled := n / 2 // long past the library's delay and the shelf's start
		gain := measure.DBFS(measure.RMS(out[settled:])) - measure.DBFS(measure.RMS(tone[settled:]))
		if math.Abs(gain) > 0.25 {
			t.Errorf("a %.0f Hz tone comes out %+.2f dB, want within 0.25", hz, gain)
		}
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	for _, k := range echo.Kinds() {
		c := newCanceller(t, k, echo.Options{Delay: pathDelay})
		mic, ref, out := echotest.Noise(128, 0.1, 1), echotest.Noise(128, 0.1, 2), make([]float32, 128)
		if a := testing.AllocsPerRun(200, func() { c.Process(mic, ref, out) }); a != 0 {
			t.Errorf("%v: %v allocations per Process", k, a)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	if _, err := echo.New(echo.Kind(99), echo.Options{}); !errors.Is(err, echo.ErrKind) {
		t.Fatalf("New(99) = %v, want ErrKind", err)
	}
}

func TestCloseTwiceThenPassThrough(t *testing.T) {
	c := newCanceller(t, echo.Default, echo.Options{})
	c.Close()
	c.Close()
	mic, out := []float32{0.1, 0.2}, make([]float32, 2)
	c.Process(mic, make([]float32, 2), out)
	if out[0] != mic[0] || out[1] != mic[1] {
		t.Fatalf("closed canceller gave %v for %v", out, mic)
	}
}

// BenchmarkProcess10ms measures the CPU per 10 ms of audio, fed in 128-sample
// callbacks.
func BenchmarkProcess10ms(b *testing.B) {
	n := 10 * audio.SampleRate
	far := echotest.Singer(n, 220, 0.5, 1)
	mic := echotest.NewRoom(200*time.Millisecond, pathDelay, 3).Echo(far)
	out := make([]float32, 480)
	for _, tc := range []struct {
		kind  echo.Kind
		frame int
	}{{echo.Speex, 0}, {echo.Speex, 128}, {echo.WebRTC, 0}} {
		b.Run(fmt.Sprintf("%v/frame%d", tc.kind, tc.frame), func(b *testing.B) {
			c := newCanceller(b, tc.kind, echo.Options{Delay: pathDelay, Frame: tc.frame})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				for k := 0; k < 480; k += 96 { // 480 = 3×128 + 96: a mix of sizes
					m := 128
					if k == 384 {
						m = 96
					}
					c.Process(mic[i+k:i+k+m], far[i+k:i+k+m], out[k:k+m])
					if m == 96 {
						break
					}
				}
				i = (i + 480) % (n - 480)
			}
		})
	}
}
