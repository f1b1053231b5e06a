package codec

import (
	"errors"
	"testing"
	"time"
)

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"opus": Opus, "Custom": OpusCustom, " pcm ": L16, "l16": L16, "L24": L24} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "flac", "l8"} {
		if _, err := ParseKind(in); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseKind(%q) error %v, want ErrFormat", in, err)
		}
	}
	for _, k := range []Kind{Opus, OpusCustom, L16, L24} {
		if got, _ := ParseKind(k.String()); got != k {
			t.Errorf("ParseKind(%v.String()) = %v", k, got)
		}
	}
}

// TestFormatSDP: what a format writes into SDP parses back to it, and the
// figures the integration relies on hold.
func TestFormatSDP(t *testing.T) {
	for _, tc := range []struct {
		k         Kind
		mime      string
		channels  uint16
		fmtp      string
		lookahead time.Duration
		step      int
	}{
		{Opus, "audio/opus", 2, "", 2500 * time.Microsecond, 120},
		{OpusCustom, "audio/X-DUET-OPUS-CUSTOM", 1, "frame=64", 1333333, 64},
		{L16, "audio/L16", 1, "", 0, 1},
		{L24, "audio/L24", 1, "", 0, 1},
	} {
		f := FormatOf(tc.k)
		if f.MimeType() != tc.mime || f.Channels() != tc.channels || f.Fmtp() != tc.fmtp || f.ClockRate() != 48000 {
			t.Errorf("%v: %s/%d/%d fmtp %q; want %s/48000/%d fmtp %q",
				tc.k, f.MimeType(), f.ClockRate(), f.Channels(), f.Fmtp(), tc.mime, tc.channels, tc.fmtp)
		}
		if f.Lookahead() != tc.lookahead || f.ConcealStep() != tc.step {
			t.Errorf("%v: lookahead %v, conceal step %d; want %v, %d", tc.k, f.Lookahead(), f.ConcealStep(), tc.lookahead, tc.step)
		}
		got, err := ParseFormat(f.MimeType(), f.ClockRate(), f.Channels(), f.Fmtp())
		if err != nil || got != f {
			t.Errorf("%v: ParseFormat of its own SDP = %+v, %v", tc.k, got, err)
		}
	}
}

// TestParseFormat checks what a peer may send.
func TestParseFormat(t *testing.T) {
	custom := Format{Kind: OpusCustom, Frame: 64}
	for _, tc := range []struct {
		mime     string
		rate     uint32
		channels uint16
		fmtp     string
		want     Format
		err      error
	}{
		{"audio/x-duet-opus-custom", 48000, 0, "frame=64", custom, nil},
		{"AUDIO/X-DUET-OPUS-CUSTOM", 48000, 1, " Frame = 64 ; future=1", custom, nil},
		{"audio/l16", 48000, 0, "", Format{Kind: L16}, nil},
		{"audio/L24", 48000, 1, "whatever", Format{Kind: L24}, nil},
		{"audio/OPUS", 48000, 2, "minptime=10;useinbandfec=1", Format{Kind: Opus}, nil},

		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=128", Format{}, ErrCustomFrame},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=256", Format{}, ErrCustomFrame},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=120", Format{}, ErrCustomFrame},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=-64", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=+64", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=99999999999999999999", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "frame=64;frame=64", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 1, "", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 44100, 1, "frame=64", Format{}, ErrFormat},
		{"audio/X-DUET-OPUS-CUSTOM", 48000, 2, "frame=64", Format{}, ErrFormat},
		{"audio/L16", 44100, 1, "", Format{}, ErrFormat},
		{"audio/L16", 48000, 2, "", Format{}, ErrFormat},
		{"audio/opus", 48000, 1, "", Format{}, ErrFormat},
		{"audio/PCMU", 8000, 1, "", Format{}, ErrFormat},
		{"video/VP8", 90000, 0, "", Format{}, ErrFormat},
	} {
		got, err := ParseFormat(tc.mime, tc.rate, tc.channels, tc.fmtp)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err != nil && !errors.Is(err, ErrFormat)) {
			t.Errorf("ParseFormat(%q, %d, %d, %q) = %+v, %v; want %+v, %v",
				tc.mime, tc.rate, tc.channels, tc.fmtp, got, err, tc.want, tc.err)
		}
	}
}

// TestNew builds each codec's pair and sends a tone through it.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		f      Format
		packet int
	}{
		{FormatOf(Opus), 120},
		{FormatOf(OpusCustom), 128},
		{FormatOf(L16), 128},
		{FormatOf(L24), 64},
	} {
		t.Run(tc.f.Kind.String(), func(t *testing.T) {
			enc, dec, err := New(tc.f, EncoderOptions{Packet: tc.packet})
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			defer dec.Close()
			if enc.FrameSamples() != tc.packet {
				t.Errorf("FrameSamples() = %d, want %d", enc.FrameSamples(), tc.packet)
			}
			out, _ := codeAll(t, enc, dec, sine(4800, 440, 0))
			if len(out) != 4800/tc.packet*tc.packet {
				t.Errorf("%d samples out of 4800", len(out))
			}
		})
	}
	for _, tc := range []struct {
		name string
		f    Format
		o    EncoderOptions
		want error
	}{
		{"Opus at 64 samples", FormatOf(Opus), EncoderOptions{Packet: 64}, ErrFrame},
		{"Opus Custom without its frame", Format{Kind: OpusCustom}, EncoderOptions{Packet: 64}, ErrCustomFrame},
		{"Opus Custom at 128-sample frames", Format{Kind: OpusCustom, Frame: 128}, EncoderOptions{Packet: 128}, ErrCustomFrame},
		{"Opus Custom packet of 96", FormatOf(OpusCustom), EncoderOptions{Packet: 96}, ErrPacketFrames},
		{"L16 packet of 512", FormatOf(L16), EncoderOptions{Packet: 512}, ErrPacketFrames},
		{"unknown kind", Format{Kind: 9}, EncoderOptions{Packet: 64}, ErrFormat},
	} {
		enc, dec, err := New(tc.f, tc.o)
		if !errors.Is(err, tc.want) || enc != nil || dec != nil {
			t.Errorf("%s: New = %v, %v, %v; want nil, nil, %v", tc.name, enc, dec, err, tc.want)
		}
	}
}
