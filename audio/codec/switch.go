package codec

import "github.com/duetapp/duet/audio"

// SwitchFade is how long a Switch crossfades from the old codec into the
// new one, in samples (2.67 ms): long enough that two versions of a voice
// a few milliseconds apart blend without a step, short enough not to
// smear a note.
const SwitchFade = 128

// maxTail is the longest outgoing signal a Switch keeps: the longest
// look-ahead (Opus's 120 samples) and the fade.
const maxTail = MinConceal + SwitchFade

// A Switch decodes one voice whose codec may change from packet to packet,
// as a Duet sender's does when the path changes: one decoder of each kind,
// built up front, each packet decoded by its own kind's.
//
// A change of codec is click-free. The codecs' look-aheads differ (Opus
// 2.5 ms, Opus Custom 1.33 ms, PCM none), so the new decoder's output is
// the voice at another delay, and its first look-ahead's worth is what its
// encoder last held (silence, or a note from long ago) rather than the
// voice. So the Switch plays the old decoder's concealment, which
// continues the voice as it was, over the new codec's look-ahead, then
// crossfades from it into the new decoder's output over SwitchFade
// samples. The old decoder is left concealing; should its codec come back,
// its first look-ahead is hidden the same way.
//
// That leaves the voice at the new codec's delay: a steady note jumps by
// the difference of look-aheads (56 samples from Opus Custom to Opus, a
// phase step a listener hears on a held note). A live playout calls
// KeepDelay: the voice's delay then stays what it was and the packet that
// changes codec writes that many samples fewer or more than it holds; the
// playout's steering takes the difference up slowly (package jitter).
//
// Conceal takes any length although decoders conceal in steps (Opus 120
// samples, Opus Custom 64, ConcealStep): it conceals whole steps and keeps
// what was made beyond the length for the next Conceal; a packet decoded
// after such a concealment fades in from those kept samples, which would
// have followed what was played, over their length.
//
// Not safe for concurrent use; Decode and Conceal neither allocate nor
// block, errors included.
type Switch struct {
	decs [L24 + 1]FrameDecoder
	cur  Kind // the codec of the last packet decoded; 0 before the first

	keepDelay bool // see KeepDelay
	frame     int  // the last packet's own length, samples

	// The outgoing signal mixed into the start of what follows: tails[t]
	// from tailPos to tailLen, alone for its first hold samples, then
	// fading out over fade samples.
	tails            [2][maxTail]float32
	t                int
	tailPos, tailLen int
	hold, fade       int

	// Concealment made beyond what was asked, to play next.
	carry              [MinConceal]float32
	carryPos, carryLen int
}

// NewSwitch returns a Switch with a decoder of every kind.
func NewSwitch() (*Switch, error) {
	s := &Switch{}
	for _, k := range []Kind{Opus, OpusCustom, L16, L24} {
		d, err := FormatOf(k).NewDecoder()
		if err != nil {
			s.Close()
			return nil, err
		}
		s.decs[k] = d
	}
	return s, nil
}

// MaxDecoded is the most samples Decode writes: the longest Opus packet
// (20 ms) and, under KeepDelay, the longest look-ahead (Opus's 120
// samples, as in maxTail).
const MaxDecoded = 960 + MinConceal

// KeepDelay makes a change of codec keep the voice's delay (see Switch):
// Decode then writes up to MaxDecoded samples, the packet's own and the
// difference of the two codecs' look-aheads.
func (s *Switch) KeepDelay() { s.keepDelay = true }

// Kind returns the codec of the last packet decoded, 0 before the first.
func (s *Switch) Kind() Kind { return s.cur }

// Frame returns the length in samples of the last packet decoded: what
// Decode wrote, unless a change of codec under KeepDelay wrote more or
// fewer. A playout conceals a lost packet's time by it.
func (s *Switch) Frame() int { return s.frame }

// Decode decodes one packet of codec k into pcm (960 samples always
// suffice; MaxDecoded under KeepDelay) and returns the samples written. A
// packet its decoder rejects, or of an unknown kind (ErrFormat), changes
// nothing.
func (s *Switch) Decode(k Kind, packet []byte, pcm []float32) (int, error) {
	if int(k) >= len(s.decs) || s.decs[k] == nil {
		return 0, ErrFormat
	}
	n, err := s.decs[k].Decode(packet, pcm)
	if err != nil {
		return 0, err
	}
	s.frame = n
	if s.cur != 0 && (k != s.cur || s.carryPos < s.carryLen) {
		// The new decoder's output from skip on follows the old one's
		// from hold on.
		hold, skip := 0, 0
		if k != s.cur {
			hold = audio.Samples(FormatOf(k).Lookahead())
			skip = hold
			if old := audio.Samples(FormatOf(s.cur).Lookahead()); s.keepDelay && old+n-skip <= len(pcm) {
				hold = old
			}
		}
		s.handOver(k, hold)
		n = hold + copy(pcm[hold:], pcm[skip:n])
	}
	s.cur = k
	s.mix(pcm[:n])
	return n, nil
}

// handOver starts a fade from what would have played next into codec k's
// output: the concealment kept from the last Conceal, and on a change of
// codec the old decoder's concealment alone over hold samples, then the
// fade.
func (s *Switch) handOver(k Kind, hold int) {
	next := s.tails[1-s.t][:]
	m := copy(next, s.carry[s.carryPos:s.carryLen])
	s.carryPos, s.carryLen = 0, 0
	fade := m
	if k != s.cur {
		fade = SwitchFade
		if m < hold+fade {
			s.concealExactly(s.cur, next[m:hold+fade])
		}
		m = hold + fade
	}
	// A fade still under way goes on in the outgoing signal.
	s.mix(next[:m])
	s.t, s.tailPos, s.tailLen, s.hold, s.fade = 1-s.t, 0, m, hold, fade
}

// mix crossfades the outgoing signal into out, the signal that follows it.
func (s *Switch) mix(out []float32) {
	tail := &s.tails[s.t]
	for i := range out {
		j := s.tailPos
		if j >= s.tailLen {
			return
		}
		if j >= s.hold {
			w := float32(j-s.hold+1) / float32(s.fade+1)
			out[i] = tail[j] + (out[i]-tail[j])*w
		} else {
			out[i] = tail[j]
		}
		s.tailPos++
	}
}

// Conceal fills pcm, exactly the length of the missing audio, with the
// current codec's concealment (see Switch); silence before the first
// packet.
func (s *Switch) Conceal(pcm []float32) error {
	if s.cur == 0 {
		clear(pcm)
		return nil
	}
	n := copy(pcm, s.carry[s.carryPos:s.carryLen])
	s.carryPos += n
	rest := pcm[n:]
	var err error
	if len(rest) > 0 {
		d := s.decs[s.cur]
		step := FormatOf(s.cur).ConcealStep()
		whole := len(rest) - len(rest)%step
		if whole > 0 {
			err = d.Conceal(rest[:whole])
		}
		if whole < len(rest) {
			c := s.carry[:step]
			if e := d.Conceal(c); e != nil {
				clear(c)
				err = e
			}
			s.carryPos, s.carryLen = copy(rest[whole:], c), step
		}
	}
	s.mix(pcm)
	return err
}

// concealExactly fills out with codec k's concealment, in whole steps,
// dropping what the last step made beyond out; silence if it fails.
func (s *Switch) concealExactly(k Kind, out []float32) {
	d := s.decs[k]
	step := FormatOf(k).ConcealStep()
	whole := len(out) - len(out)%step
	if whole > 0 && d.Conceal(out[:whole]) != nil {
		clear(out[:whole])
	}
	if whole < len(out) {
		c := s.carry[:step] // free: handOver has taken the carry
		if d.Conceal(c) != nil {
			clear(c)
		}
		copy(out[whole:], c)
	}
}

// Close frees the decoders; safe to call twice.
func (s *Switch) Close() error {
	for _, d := range s.decs {
		if d != nil {
			d.Close()
		}
	}
	return nil
}
