package app

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
)

// The voice's codecs, both ways.
//
// Sending: the encoder goroutine keeps an encoder per codec and sends each
// packet in the codec the session chose (pipeline.want) if the partner
// accepted it, else in Opus. Opus goes in frames of Config.Frame; Opus
// Custom and PCM in packets of the device's block (a 128-sample block is
// one packet of two 64-sample Opus Custom frames), so a packet leaves as
// soon as its block is captured. A change to a block-sized codec waits
// for the capture ring to hold whole blocks (at most 15 blocks after
// Opus's frames), so its packets line up with the device's blocks again.
//
// Receiving: each packet goes into the jitter buffer with its codec in a
// first byte ahead of the payload (the app's own framing, never sent), and
// voiceDecoder decodes it with that codec's decoder through a
// codec.Switch, which crossfades at a change of codec.

// errNoCodec reports a jitter-buffer payload without its codec byte, or
// without a payload after it.
var errNoCodec = errors.New("app: voice packet without its codec")

// voiceDecoder is the playout's Decoder: payloads are a codec byte and the
// packet. It belongs to the audio thread; the codec and length of the last
// packet decoded are published together for Session.Latency (apart, a
// reader between the two stores saw the first packet's codec with no
// length: a codec stage of 0, once in CI).
type voiceDecoder struct {
	codecs *codec.Switch
	last   atomic.Uint64 // the last packet decoded: its codec.Kind << 32 | its length in samples; 0 before
}

func (d *voiceDecoder) Decode(p []byte, pcm []float32) (int, error) {
	if len(p) < 2 {
		return 0, errNoCodec
	}
	n, err := d.codecs.Decode(codec.Kind(p[0]), p[1:], pcm)
	if err != nil {
		return 0, err
	}
	if last := uint64(p[0])<<32 | uint64(uint32(d.codecs.Frame())); d.last.Load() != last {
		d.last.Store(last)
	}
	return n, nil
}

func (d *voiceDecoder) Conceal(pcm []float32) error { return d.codecs.Conceal(pcm) }

// Frame is the last packet's length (see codec.Switch.Frame).
func (d *voiceDecoder) Frame() int { return d.codecs.Frame() }

// received returns the codec and packet length, in samples, of the last
// packet decoded; ok is false before the first.
func (d *voiceDecoder) received() (k codec.Kind, samples int, ok bool) {
	last := d.last.Load()
	k = codec.Kind(last >> 32)
	return k, int(uint32(last)), k != 0
}

// packetSize returns the samples per packet of codec k on a device whose
// blocks are block samples: Opus its frame, Opus Custom the largest whole
// number of 64-sample frames (up to 15) that divides the block, PCM the
// largest packet (up to 256 samples) that divides it. A block Opus
// Custom's frames do not divide goes frame by frame.
func packetSize(k codec.Kind, block, opusFrame int) int {
	if block <= 0 {
		block = 2 * codec.CustomFrame // until the device's first block
	}
	switch k {
	case codec.OpusCustom:
		if block%codec.CustomFrame != 0 {
			return codec.CustomFrame
		}
		n := block / codec.CustomFrame
		for f := min(n, codec.MaxCustomFrames); f > 1; f-- {
			if n%f == 0 {
				return f * codec.CustomFrame
			}
		}
		return codec.CustomFrame
	case codec.L16, codec.L24:
		for s := min(block, codec.MaxPCMFrame); s > 1; s-- {
			if block%s == 0 {
				return s
			}
		}
		return 1
	}
	return opusFrame
}

// blockSized reports whether codec k's packets follow the device's blocks.
func blockSized(k codec.Kind) bool { return k != codec.Opus }

// minCustomBitrate is the least Opus Custom is sent at, in bits per
// second. Its 64-sample frames cannot go as low as Opus's: a sung voice
// through it measured 34 dB SNR at 132 kb/s, 25 dB at 80, 11 at 64 and 1
// at 48, where Opus in 5 ms frames still keeps 26 dB at 38 kb/s. Below
// it the adapter sends Opus (adapter.codec).
const minCustomBitrate = 80000

// bitrateFor returns the bitrate to encode codec k at, given the Opus
// bitrate the adapter chose (rate) out of the configured one (base): Opus
// that rate, Opus Custom its default scaled alike but no lower than
// minCustomBitrate, PCM its fixed rate.
func bitrateFor(k codec.Kind, rate, base int) int {
	switch k {
	case codec.Opus:
		return rate
	case codec.OpusCustom:
		r := int(int64(codec.DefaultCustomBitrate) * int64(rate) / int64(max(base, 1)))
		return min(max(r, minCustomBitrate), codec.MaxCustomBitrate)
	case codec.L16:
		return 16 * audio.SampleRate
	case codec.L24:
		return 24 * audio.SampleRate
	}
	return 0
}

// codecName names what is sent, for the singer: "Opus 5 ms", "Opus Custom
// 2.7 ms" (one 128-sample packet of two 64-sample frames), "L24".
func codecName(k codec.Kind, packet int) string {
	ms := func(n int) string { return fmt.Sprintf("%.2g ms", float64(n)*1000/audio.SampleRate) }
	switch k {
	case codec.Opus:
		return "Opus " + ms(packet)
	case codec.OpusCustom:
		return "Opus Custom " + ms(packet)
	case codec.L16:
		return "L16"
	case codec.L24:
		return "L24"
	}
	return ""
}

// encoders are the encoder goroutine's, one per codec, each built when
// first needed and again when its packet size changes (a new device).
type encoders struct {
	base   int // the configured Opus bitrate
	byKind [codec.L24 + 1]codec.FrameEncoder
}

// get returns codec k's encoder for packets of size samples at the
// adapter's Opus rate.
func (e *encoders) get(k codec.Kind, size, rate int) (codec.FrameEncoder, error) {
	enc := e.byKind[k]
	if enc != nil && enc.FrameSamples() != size {
		enc.Close()
		enc, e.byKind[k] = nil, nil
	}
	want := bitrateFor(k, rate, e.base)
	if enc == nil {
		var err error
		o := codec.EncoderOptions{Packet: size}
		if k == codec.Opus || k == codec.OpusCustom {
			o.Bitrate = want
		}
		if enc, err = codec.FormatOf(k).NewEncoder(o); err != nil {
			return nil, err
		}
		e.byKind[k] = enc
	}
	if k != codec.L16 && k != codec.L24 && enc.Bitrate() != want {
		// libopus refuses only a rate out of range, which bitrateFor
		// never gives; the old rate stays meanwhile.
		enc.SetBitrate(want)
	}
	return enc, nil
}

func (e *encoders) close() {
	for i, enc := range e.byKind {
		if enc != nil {
			enc.Close()
			e.byKind[i] = nil
		}
	}
}
