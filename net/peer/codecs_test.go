package peer

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/audio/codec"
)

// TestCodecsNegotiated connects two Duet peers: both offer and take every
// codec, best first, and a packet of each arrives with its kind.
func TestCodecsNegotiated(t *testing.T) {
	t.Parallel()
	host, guest, hostGot, _, _, _ := pair(t)
	for name, p := range map[string]*Peer{"host": host, "guest": guest} {
		for _, d := range []*webrtc.SessionDescription{p.pc.CurrentLocalDescription(), p.pc.CurrentRemoteDescription()} {
			for _, line := range []string{
				"m=audio 9 UDP/TLS/RTP/SAVPF 63 111 96 97 98", // RED and Opus first: see register
				"a=rtpmap:96 X-DUET-OPUS-CUSTOM/48000/1", "a=fmtp:96 frame=64",
				"a=rtpmap:97 L24/48000/1", "a=rtpmap:98 L16/48000/1",
				"a=rtpmap:111 opus/48000/2",
				"a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111",
			} {
				if !strings.Contains(d.SDP, line) {
					t.Errorf("%s: %s description lacks %q:\n%s", name, d.Type, line, d.SDP)
				}
			}
		}
		if got := accepted(p); !slices.Equal(got, DefaultCodecs()) {
			t.Errorf("%s: partner accepts %v, want %v", name, got, DefaultCodecs())
		}
		if !p.Stats().RED {
			t.Errorf("%s: Stats.RED is false", name)
		}
		tr := p.pc.GetTransceivers()
		if len(tr) != 1 {
			t.Fatalf("%s: %d transceivers", name, len(tr))
		}
		if got := tr[0].Sender().Track().(*voiceTrack); got != p.track {
			t.Errorf("%s: the sender's track is not the voice track", name)
		}
	}

	seq, ts := startVoice(t, guest, hostGot)
	send := func(k codec.Kind, payload []byte) {
		t.Helper()
		if err := guest.WriteVoice(k, seq, ts, payload); err != nil {
			t.Fatalf("%v: %v", k, err)
		}
		seq++
		ts += 128
	}
	// await waits for the packet numbered last, checking the ones on the
	// way against want (by sequence number); probes' stragglers are
	// skipped.
	await := func(first, last uint16, want map[uint16]received) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case r := <-hostGot:
				if int16(r.seq-first) < 0 {
					continue
				}
				w, ok := want[r.seq]
				if !ok {
					t.Errorf("packet %d arrived (%v, %d bytes): it should have been dropped", r.seq-first, r.kind, len(r.payload))
				} else if r.kind != w.kind || !bytes.Equal(r.payload, w.payload) {
					t.Errorf("packet %d arrived as %v %x, sent as %v %x", r.seq-first, r.kind, r.payload, w.kind, w.payload)
				}
				if r.seq == last {
					return
				}
			case <-deadline:
				t.Fatal("packets did not arrive within 10 s")
			}
		}
	}
	first := seq
	want := map[uint16]received{}
	for _, p := range []received{
		{kind: codec.OpusCustom, payload: []byte{21, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}},
		{kind: codec.L24, payload: []byte{1, 2, 3, 4, 5, 6}},
		{kind: codec.L16, payload: make([]byte, 2*codec.MaxPCMFrame)},
		{kind: codec.Opus, payload: []byte{0xf8, 0xff, 0xfe}},
	} {
		want[seq] = p
		send(p.kind, p.payload)
	}
	await(first, seq-1, want)

	// Bad input: PCM of a wrong length, and a payload type nobody
	// negotiated, are dropped and counted; what follows still plays.
	d0 := host.Stats().PacketsDiscarded
	first = seq
	send(codec.L16, []byte{1, 2, 3})
	send(codec.L24, []byte{1, 2, 3, 4})
	send(codec.L16, make([]byte, 2*codec.MaxPCMFrame+2))
	send(codec.L24, nil)
	h := rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: seq, Timestamp: ts}
	if _, err := guest.track.write(&h, []byte{1, 2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	seq++
	want = map[uint16]received{seq: {kind: codec.L16, payload: []byte{0, 1}}}
	send(codec.L16, []byte{0, 1})
	await(first, seq-1, want)
	if n := host.Stats().PacketsDiscarded - d0; n != 5 {
		t.Errorf("%d packets discarded, want the 5 bad ones", n)
	}
	if err := errors.Join(host.Close(), guest.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestOpusOnlyPartner: a Duet peer that takes only Opus gets only Opus;
// the other side may not send it anything else, and what it sends anyway
// is dropped.
func TestOpusOnlyPartner(t *testing.T) {
	t.Parallel()
	host, guest, hostGot, guestGot, _, _ := pair(t, func(c *Config) { c.Codecs = []codec.Kind{codec.Opus} })
	defer host.Close()
	defer guest.Close()
	for name, p := range map[string]*Peer{"host": host, "guest": guest} {
		if got := accepted(p); !slices.Equal(got, []codec.Kind{codec.Opus}) {
			t.Errorf("%s: partner accepts %v, want only Opus", name, got)
		}
		if !p.Stats().RED {
			t.Errorf("%s: no RED", name)
		}
		if p.Accepts(codec.OpusCustom) || !p.Accepts(codec.Opus) {
			t.Errorf("%s: Accepts says Custom %v, Opus %v", name, p.Accepts(codec.OpusCustom), p.Accepts(codec.Opus))
		}
	}
	if err := host.WriteVoice(codec.OpusCustom, 1, 1, []byte{2, 0x80, 1}); !errors.Is(err, ErrNotNegotiated) {
		t.Errorf("WriteVoice(Opus Custom) = %v, want ErrNotNegotiated", err)
	}
	startVoice(t, host, guestGot)
	seq, ts := startVoice(t, guest, hostGot)
	d0 := host.Stats().PacketsDiscarded
	// The guest writes Opus Custom's payload type anyway, straight onto
	// its track: the host never negotiated it with this guest.
	for range 3 {
		h := rtp.Header{Version: 2, PayloadType: customPayloadType, SequenceNumber: seq, Timestamp: ts}
		if _, err := guest.track.write(&h, []byte{2, 0x80, 1}); err != nil {
			t.Fatal(err)
		}
		seq++
		ts += 128
	}
	if err := guest.WriteVoice(codec.Opus, seq, ts, []byte{0xf8, 7}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-hostGot:
			if int16(r.seq-seq) < 0 {
				if r.kind != codec.Opus {
					t.Errorf("a %v packet arrived", r.kind)
				}
				continue
			}
			if n := host.Stats().PacketsDiscarded - d0; n != 3 {
				t.Errorf("%d packets discarded, want 3", n)
			}
			return
		case <-deadline:
			t.Fatal("the Opus packet did not arrive")
		}
	}
}

// browser is a plain pion peer with Chrome's audio codecs and fmtp lines
// (Opus at 111 with "minptime=10;useinbandfec=1", RED "111/111" at 63),
// on loopback: what a browser offers and answers.
type browser struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticRTP
	got       chan *rtp.Packet
	cands     chan webrtc.ICECandidateInit
	connected chan struct{}
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opus := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}
	m := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: opus, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: MimeTypeRED, ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111"}, PayloadType: 63},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	var s webrtc.SettingEngine
	s.SetIncludeLoopbackCandidate(true)
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(s)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{pc: pc, got: make(chan *rtp.Packet, 1000), cands: make(chan webrtc.ICECandidateInit, 100), connected: make(chan struct{})}
	if b.track, err = webrtc.NewTrackLocalStaticRTP(opus, "audio", "browser"); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			select {
			case b.got <- p:
			default:
			}
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			b.cands <- c.ToJSON()
		}
	})
	var once bool
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected && !once {
			once = true
			close(b.connected)
		}
	})
	t.Cleanup(func() { pc.Close() })
	return b
}

// TestBrowserPartner negotiates with a browser-like peer, as the offerer
// and as the answerer: Opus and RED, no error, voice both ways. With the
// Opus fmtp Duet used to offer ("minptime=2.5;useinbandfec=0") pion kept
// only the exactly matching RED and the voice track failed.
func TestBrowserPartner(t *testing.T) {
	t.Parallel()
	for _, duetOffers := range []bool{true, false} {
		name := map[bool]string{true: "duet offers", false: "browser offers"}[duetOffers]
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t)
			got := make(chan received, 1000)
			d, err := New(Config{
				Loopback:    true,
				OnPacket:    func(seq uint16, ts uint32, k codec.Kind, p []byte) { got <- received{seq, ts, bytes.Clone(p), k} },
				OnCandidate: func(c webrtc.ICECandidateInit) { b.pc.AddICECandidate(c) },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if duetOffers {
				offer, err := d.Offer()
				if err != nil {
					t.Fatal(err)
				}
				if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
					t.Fatal(err)
				}
				answer, err := b.pc.CreateAnswer(nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.pc.SetLocalDescription(answer); err != nil {
					t.Fatal(err)
				}
				if err := d.Accept(answer.SDP); err != nil {
					t.Fatal(err)
				}
			} else {
				offer, err := b.pc.CreateOffer(nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.pc.SetLocalDescription(offer); err != nil {
					t.Fatal(err)
				}
				answer, err := d.Answer(offer.SDP)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.After(10 * time.Second)
			for up, bup := d.Connected(), b.connected; up != nil || bup != nil; {
				select {
				case c := <-b.cands:
					if err := d.AddCandidate(c); err != nil {
						t.Fatal(err)
					}
				case <-up:
					up = nil
				case <-bup:
					bup = nil
				case <-deadline:
					t.Fatal("no connection within 10 s")
				}
			}
			if got := accepted(d); !slices.Equal(got, []codec.Kind{codec.Opus}) {
				t.Errorf("the browser accepts %v, want only Opus", got)
			}
			if !d.Stats().RED {
				t.Error("no RED with the browser")
			}
			if err := d.WriteVoice(codec.OpusCustom, 1, 1, []byte{2, 0x80, 1}); !errors.Is(err, ErrNotNegotiated) {
				t.Errorf("WriteVoice(Opus Custom) = %v, want ErrNotNegotiated", err)
			}
			// Duet → browser: Opus at 111.
			for seq := uint16(0); ; seq++ {
				if err := d.WriteVoice(codec.Opus, seq, uint32(seq)*240, []byte{0xf8, 0xff, 0xfe}); err != nil {
					t.Fatal(err)
				}
				select {
				case p := <-b.got:
					if p.PayloadType != 111 || !bytes.Equal(p.Payload, []byte{0xf8, 0xff, 0xfe}) {
						t.Fatalf("the browser got payload type %d, %x", p.PayloadType, p.Payload)
					}
				case <-time.After(5 * time.Millisecond):
					continue
				case <-deadline:
					t.Fatal("no packet reached the browser")
				}
				break
			}
			// Browser → Duet: Opus.
			for seq := uint16(0); ; seq++ {
				if err := b.track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960}, Payload: []byte{0xfc, 1}}); err != nil {
					t.Fatal(err)
				}
				select {
				case r := <-got:
					if r.kind != codec.Opus || !bytes.Equal(r.payload, []byte{0xfc, 1}) {
						t.Fatalf("Duet got %v %x from the browser", r.kind, r.payload)
					}
				case <-time.After(5 * time.Millisecond):
					continue
				case <-deadline:
					t.Fatal("no packet from the browser")
				}
				break
			}
		})
	}
}

// TestNegotiateChecksFormats: each negotiated codec is read through
// codec.ParseFormat, so a mode Duet does not take is never used.
func TestNegotiateChecksFormats(t *testing.T) {
	t.Parallel()
	param := func(mime string, clock uint32, ch uint16, fmtp string, pt uint8) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock, Channels: ch, SDPFmtpLine: fmtp}, PayloadType: webrtc.PayloadType(pt)}
	}
	for _, tc := range []struct {
		name   string
		codecs []webrtc.RTPCodecParameters
		want   map[codec.Kind]int16
		red    int16
	}{
		{"duet", []webrtc.RTPCodecParameters{
			param(codec.MimeOpusCustom, 48000, 1, "frame=64", 96), param(codec.MimeL24, 48000, 1, "", 97),
			param(codec.MimeL16, 48000, 1, "", 98), param(codec.MimeOpus, 48000, 2, "", 111), param(MimeTypeRED, 48000, 2, "111/111", 63),
		}, map[codec.Kind]int16{codec.OpusCustom: 96, codec.L24: 97, codec.L16: 98, codec.Opus: 111}, 63},
		{"custom frame 128 aborts libopus", []webrtc.RTPCodecParameters{
			param(codec.MimeOpusCustom, 48000, 1, "frame=128", 96), param(codec.MimeOpus, 48000, 2, "", 111),
		}, map[codec.Kind]int16{codec.Opus: 111}, -1},
		{"custom without a frame", []webrtc.RTPCodecParameters{param(codec.MimeOpusCustom, 48000, 1, "", 96)}, nil, -1},
		{"wrong rate and channels", []webrtc.RTPCodecParameters{
			param(codec.MimeL16, 44100, 1, "", 98), param(codec.MimeL24, 48000, 2, "", 97), param(codec.MimeOpus, 48000, 2, "", 111),
		}, map[codec.Kind]int16{codec.Opus: 111}, -1},
		{"red of something else", []webrtc.RTPCodecParameters{
			param(codec.MimeOpus, 48000, 2, "", 111), param(MimeTypeRED, 48000, 2, "96/96", 63),
		}, map[codec.Kind]int16{codec.Opus: 111}, -1},
		{"red without opus", []webrtc.RTPCodecParameters{param(MimeTypeRED, 48000, 2, "111/111", 63)}, nil, -1},
		{"first of a kind wins", []webrtc.RTPCodecParameters{
			param(codec.MimeL16, 48000, 1, "", 98), param(codec.MimeL16, 48000, 1, "", 99), param("audio/PCMU", 8000, 1, "", 0),
		}, map[codec.Kind]int16{codec.L16: 98}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := negotiate(tc.codecs)
			for _, k := range []codec.Kind{codec.Opus, codec.OpusCustom, codec.L16, codec.L24} {
				want, ok := tc.want[k]
				if !ok {
					want = -1
				}
				if p.pt[k] != want {
					t.Errorf("%v at %d, want %d", k, p.pt[k], want)
				}
				if want >= 0 && p.kind[want] != k {
					t.Errorf("payload type %d is %v, want %v", want, p.kind[want], k)
				}
			}
			if p.red != tc.red {
				t.Errorf("RED at %d, want %d", p.red, tc.red)
			}
			if p.any() != (len(tc.want) > 0) {
				t.Errorf("any() = %v", p.any())
			}
		})
	}
}

// TestInboundDropsBadPackets feeds the receive side directly.
func TestInboundDropsBadPackets(t *testing.T) {
	t.Parallel()
	var got []codec.Kind
	in := &inbound{
		pay: negotiate([]webrtc.RTPCodecParameters{
			{RTPCodecCapability: capability(codec.OpusCustom), PayloadType: 96},
			{RTPCodecCapability: capability(codec.L24), PayloadType: 97},
			{RTPCodecCapability: capability(codec.L16), PayloadType: 98},
			{RTPCodecCapability: capability(codec.Opus), PayloadType: 111},
			{RTPCodecCapability: redCapability(), PayloadType: 63},
		}),
		onPacket: func(_ uint16, _ uint32, k codec.Kind, _ []byte) { got = append(got, k) },
	}
	for i, tc := range []struct {
		pt      uint8
		n       int
		want    codec.Kind // 0: dropped
		wantErr error
	}{
		{96, 23, codec.OpusCustom, nil},
		{97, 3 * codec.MaxPCMFrame, codec.L24, nil},
		{97, 3*codec.MaxPCMFrame + 3, 0, errPCMLength},
		{97, 5, 0, errPCMLength},
		{98, 2, codec.L16, nil},
		{98, 0, 0, errPCMLength},
		{98, 7, 0, errPCMLength},
		{111, 3, codec.Opus, nil},
		{100, 4, 0, errPayloadType},
		{0, 4, 0, errPayloadType},
		{127, 4, 0, errPayloadType},
		{200, 4, 0, errPayloadType},
	} {
		got = got[:0]
		_, err := in.packet(tc.pt, uint16(i), uint32(i)*128, make([]byte, tc.n))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("payload type %d, %d bytes: error %v, want %v", tc.pt, tc.n, err, tc.wantErr)
		}
		if tc.want == 0 && len(got) > 0 || tc.want != 0 && !slices.Equal(got, []codec.Kind{tc.want}) {
			t.Errorf("payload type %d, %d bytes: passed on %v, want %v", tc.pt, tc.n, got, tc.want)
		}
	}
}

// FuzzInbound feeds the receive side any payload type and payload: it
// never panics, and what it passes on is of a negotiated codec, with PCM
// in whole samples.
func FuzzInbound(f *testing.F) {
	f.Add(uint8(98), []byte{1, 2})
	f.Add(uint8(97), []byte{1, 2, 3, 4})
	f.Add(uint8(63), []byte{0x80 | 111, 0, 5, 3, 111, 1, 2, 3, 4})
	f.Add(uint8(96), []byte{2, 0x80, 1})
	f.Fuzz(func(t *testing.T, pt uint8, payload []byte) {
		in := &inbound{
			pay: negotiate([]webrtc.RTPCodecParameters{
				{RTPCodecCapability: capability(codec.OpusCustom), PayloadType: 96},
				{RTPCodecCapability: capability(codec.L24), PayloadType: 97},
				{RTPCodecCapability: capability(codec.L16), PayloadType: 98},
				{RTPCodecCapability: capability(codec.Opus), PayloadType: 111},
				{RTPCodecCapability: redCapability(), PayloadType: 63},
			}),
			onPacket: func(_ uint16, _ uint32, k codec.Kind, p []byte) {
				switch k {
				case codec.Opus, codec.OpusCustom:
				case codec.L16, codec.L24:
					if !pcmLengthOK(k, len(p)) {
						t.Errorf("%v payload of %d bytes passed on", k, len(p))
					}
				default:
					t.Errorf("kind %v passed on", k)
				}
			},
			onRecovered: func(uint16, uint32, []byte) {},
		}
		in.packet(pt, 1, 1000, payload)
		in.packet(pt, 2, 1240, payload)
	})
}

// accepted returns the codecs the partner accepted for p's voice, in p's
// order of preference; nil before negotiation.
func accepted(p *Peer) []codec.Kind {
	var out []codec.Kind
	for _, k := range offered(p.cfg.Codecs) {
		if p.Accepts(k) {
			out = append(out, k)
		}
	}
	return out
}
