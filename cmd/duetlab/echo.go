package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/duetapp/duet/audio"
	aec "github.com/duetapp/duet/audio/echo"
	"github.com/duetapp/duet/audio/echo/echotest"
)

// echo runs each echo canceller over echotest's scene (a synthetic
// singer played through a mildly clipping loudspeaker into a 200 ms
// reverberant room, 12 ms of device delay, told to the canceller; the
// near-end singer joins at 6 s; the room changes at 10 s), fed in
// 128-sample callbacks, and reports ERLE after 2 s, the near-end singer's
// attenuation in double talk, the time to get back to 20 dB after the room
// changes, the time per 10 ms of audio and the latency added.
func echo(ctx context.Context, w io.Writer) ([]string, error) {
	const block = 128
	const delay = 12 * time.Millisecond
	scene := echotest.NewScene(delay)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "canceller\tERLE dB\tdouble talk dB\treconverge ms\tERLE after change dB\tµs per 10 ms\tadded latency ms\t")
	off := scene.Measure(scene.Run(echotest.Off{}, block))
	fmt.Fprintf(tw, "off\t%.1f\t%.1f\t\t%.1f\t\t0\t\n", off.ERLE, off.DoubleTalk, off.After)

	var kv []string
	for _, tc := range []struct {
		name string
		kind aec.Kind
		opts aec.Options
	}{
		{aec.Default.String(), aec.Default, aec.Options{}},
		{"speex", aec.Speex, aec.Options{}},
		{"speex_f128", aec.Speex, aec.Options{Frame: block}},
	} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tc.opts.Delay = delay
		c, err := aec.New(tc.kind, tc.opts)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		out := scene.Run(c, block)
		per10ms := time.Since(start) / time.Duration(audio.Samples(echotest.SceneLength)/(audio.SampleRate/100))
		lat := c.Latency()
		c.Close()
		r := scene.Measure(out)
		reconv := "never"
		if r.Reconverge >= 0 {
			reconv = fmt.Sprint(r.Reconverge.Milliseconds())
		}
		us := float64(per10ms) / float64(time.Microsecond)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%.1f\t%.0f\t%.1f\t\n", tc.name, r.ERLE, r.DoubleTalk, reconv, r.After, us, ms(lat))
		prefix := tc.name + "_"
		if len(kv) == 0 {
			kv = append(kv, "canceller="+tc.name)
			prefix = ""
		}
		kv = append(kv, fmt.Sprintf("%serle_db=%.1f %sdoubletalk_db=%.1f %sreconverge_ms=%s %scpu_us=%.0f %slatency_ms=%.1f",
			prefix, r.ERLE, prefix, r.DoubleTalk, prefix, reconv, prefix, us, prefix, ms(lat)))
	}
	return kv, tw.Flush()
}
