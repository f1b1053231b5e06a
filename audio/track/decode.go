// Package track holds a duet's backing track: it decodes a song file (WAV,
// MP3, Ogg/Opus or FLAC) to Duet's format (mono float32 at 48 kHz), and
// plays it on the audio thread from a scheduled instant, at a rate its
// owner steers so that a guest's copy follows the host's.
//
// Decoders are well-kept libraries: hajimehoshi/go-mp3, mewkiz/flac and
// libopusfile through hraban/opus; WAV's integer PCM is read here, straight
// from the file. Files at other rates are converted with libsamplerate at
// its best quality. The devices are mono today, so a stereo track is mixed
// down.
//
// A file comes from the partner too, so decoding is bounded by what it
// makes, not by what the file claims: each decoder hands its samples over a
// piece at a time to one output, at most MaxDuration of 48 kHz samples,
// sized once when the file's header says its length and refused from the
// header when that passes MaxDuration. Before a library sees a file, the
// header fields it would allocate by (FLAC metadata lengths, an MP3's ID3
// tag size) are checked against the file's size.
//
// A Track is immutable once made, so both the audio thread and the
// recorder read it without locks.
package track

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hajimehoshi/go-mp3"
	"github.com/mewkiz/flac"
	"gopkg.in/hraban/opus.v2"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/resample"
)

// Limits on what Duet loads: a file of at most MaxFileSize bytes at a
// sample rate from MinRate to MaxRate Hz that decodes to at most
// MaxDuration of audio.
const (
	MaxFileSize = 256 << 20
	MaxDuration = 20 * 60 // seconds
	MinRate     = 8000
	MaxRate     = 384000
)

var (
	// ErrFormat reports a file Duet cannot play.
	ErrFormat = errors.New("track: unsupported file")
	// ErrTooLong reports a file that plays longer than MaxDuration; it is
	// an ErrFormat too.
	ErrTooLong = fmt.Errorf("%w: longer than %d minutes", ErrFormat, MaxDuration/60)
)

// Track is a decoded backing track.
type Track struct {
	// Name is the file's base name, for display.
	Name string
	// Samples is the track, mono at 48 kHz.
	Samples []float32
	// File is the file as loaded: what the host sends its guest, who
	// decodes it to the same samples.
	File []byte
	// Digest is File's SHA-256: the track's identity on the wire.
	Digest [sha256.Size]byte
}

// Duration is how long the track plays.
func (t *Track) Duration() int { return len(t.Samples) }

// Load reads and decodes the file at path.
func Load(path string) (*Track, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("track: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("track: %w", err)
	}
	t, err := Decode(filepath.Base(path), data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return t, nil
}

// Decode decodes a whole song file held in data, recognising its format by
// its first bytes, not its name.
func Decode(name string, data []byte) (*Track, error) {
	return decode(name, data, MaxDuration*audio.SampleRate)
}

// decode is Decode making at most limit samples.
func decode(name string, data []byte, limit int) (*Track, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d MB", ErrFormat, MaxFileSize>>20)
	}
	var dec func([]byte, *output) error
	switch {
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		dec = decodeWAV
	case len(data) >= 4 && string(data[:4]) == "fLaC":
		dec = decodeFLAC
	case len(data) >= 4 && string(data[:4]) == "OggS":
		dec = decodeOpus
	case isMP3(data):
		dec = decodeMP3
	default:
		return nil, fmt.Errorf("%w: not a WAV, MP3, Ogg/Opus or FLAC file", ErrFormat)
	}
	out := output{limit: limit}
	defer out.close()
	err := safely(func() error { return dec(data, &out) })
	var p []float32
	if err == nil {
		p, err = out.finish()
	}
	if err != nil {
		if errors.Is(err, ErrFormat) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: it holds no audio", ErrFormat)
	}
	return &Track{Name: name, Samples: p, File: data, Digest: sha256.Sum256(data)}, nil
}

// safely runs a decoder, turning a panic into an error: the libraries
// index by what a file says and some trust it (go-mp3 v0.3.4 indexes past
// a table on a 33-byte MPEG-2 file), and a partner's file must not end
// the program.
func safely(dec func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the decoder failed on it (%v)", ErrFormat, r)
		}
	}()
	return dec()
}

// output takes a decoder's mono samples at the file's rate, a piece at a
// time, and keeps them at 48 kHz, at most limit of them.
type output struct {
	limit int
	conv  *resample.Converter
}

// start takes the file's rate and, when its header says it, its length in
// samples (0: unknown), refusing a length that would pass the limit
// before anything is decoded. sized says the length can be trusted: the
// output is then allocated once, for it.
func (o *output) start(rate int, samples int64, sized bool) error {
	if rate < MinRate || rate > MaxRate {
		return fmt.Errorf("%w: a sample rate of %d Hz; Duet plays files of %d to %d Hz", ErrFormat, rate, MinRate, MaxRate)
	}
	c, err := resample.NewConverter(rate, audio.SampleRate, o.limit)
	if err != nil {
		return err
	}
	o.conv = c
	switch {
	case samples <= 0:
	case !sized:
		if float64(samples)*audio.SampleRate/float64(rate) > float64(o.limit) {
			return ErrTooLong
		}
	case c.Reserve(samples) != nil:
		return ErrTooLong
	}
	return nil
}

// write takes the next piece.
func (o *output) write(p []float32) error {
	err := o.conv.Write(p)
	if errors.Is(err, resample.ErrTooLong) {
		return ErrTooLong
	}
	return err
}

func (o *output) finish() ([]float32, error) {
	if o.conv == nil {
		return nil, nil
	}
	return o.conv.Finish()
}

func (o *output) close() {
	if o.conv != nil {
		o.conv.Close()
	}
}

// piece is how many samples the WAV decoder hands over at a time.
const piece = 4096

// decodeWAV reads a WAV file's integer PCM from data a piece at a time.
// go-audio/wav (behind audio/wavfile) would first hold every sample as an
// int, 8 bytes each, whatever the file's width: 8 times the file for
// 8-bit audio.
func decodeWAV(data []byte, o *output) error {
	f, pcm, err := wavChunks(data)
	if err != nil {
		return err
	}
	width := f.bits / 8
	frame := f.channels * width
	if err := o.start(f.rate, int64(len(pcm)/frame), true); err != nil {
		return err
	}
	scale := 1 / float32(int64(1)<<(f.bits-1)) / float32(f.channels)
	buf := make([]float32, piece)
	for len(pcm) >= frame {
		n := min(piece, len(pcm)/frame)
		for i := range n {
			var sum int64
			for c := range f.channels {
				sum += pcmSample(pcm[i*frame+c*width:], width)
			}
			buf[i] = float32(sum) * scale
		}
		pcm = pcm[n*frame:]
		if err := o.write(buf[:n]); err != nil {
			return err
		}
	}
	return nil
}

// pcmSample reads one little-endian sample of width bytes from b; 8-bit
// WAV is unsigned.
func pcmSample(b []byte, width int) int64 {
	switch width {
	case 1:
		return int64(b[0]) - 128
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(b)))
	case 3:
		return int64(int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8)
	default:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
}

// wavFormat is what a WAV file's fmt chunk says.
type wavFormat struct {
	rate, channels, bits int
}

// WAVE_FORMAT_PCM and WAVE_FORMAT_EXTENSIBLE.
const (
	wavePCM        = 1
	waveExtensible = 0xfffe
)

// wavChunks walks a WAV file's RIFF chunks and returns its format and its
// audio. A chunk that claims more than the file holds is an error, except
// the data chunk, which is cut to what is there: a recording whose header
// was never finished, and its audio is good.
func wavChunks(data []byte) (wavFormat, []byte, error) {
	var (
		f       wavFormat
		fmtSeen bool
		pcm     []byte
	)
	for at := 12; at+8 <= len(data); {
		id := string(data[at : at+4])
		size := int64(binary.LittleEndian.Uint32(data[at+4:]))
		left := int64(len(data) - at - 8)
		if size > left {
			if id != "data" {
				return f, nil, fmt.Errorf("%w: its WAV %q chunk claims %d bytes but only %d are left (truncated or corrupt)", ErrFormat, id, size, left)
			}
			size = left
		}
		body := data[at+8 : at+8+int(size)]
		switch id {
		case "fmt ":
			var err error
			if f, err = wavFmt(body); err != nil {
				return f, nil, err
			}
			fmtSeen = true
		case "data":
			pcm = body
		}
		at += 8 + int(size) + int(size&1) // chunks are padded to even sizes
	}
	switch {
	case !fmtSeen:
		return f, nil, fmt.Errorf("%w: a WAV file without its format chunk", ErrFormat)
	case len(pcm) < f.channels*f.bits/8:
		return f, nil, fmt.Errorf("%w: a WAV file that holds no audio", ErrFormat)
	}
	return f, pcm, nil
}

// wavFmt reads a fmt chunk: integer PCM of 8, 16, 24 or 32 bits.
func wavFmt(b []byte) (wavFormat, error) {
	if len(b) < 16 {
		return wavFormat{}, fmt.Errorf("%w: a WAV format chunk of %d bytes", ErrFormat, len(b))
	}
	format := binary.LittleEndian.Uint16(b)
	if format == waveExtensible && len(b) >= 26 {
		format = binary.LittleEndian.Uint16(b[24:]) // the sub-format GUID starts with the format code
	}
	f := wavFormat{
		channels: int(binary.LittleEndian.Uint16(b[2:])),
		rate:     int(binary.LittleEndian.Uint32(b[4:])),
		bits:     int(binary.LittleEndian.Uint16(b[14:])),
	}
	switch {
	case format != wavePCM:
		return f, fmt.Errorf("%w: WAV sample format %d; convert it to integer PCM, e.g. sox in.wav -b 16 out.wav", ErrFormat, format)
	case f.channels == 0:
		return f, fmt.Errorf("%w: a WAV file of no channels", ErrFormat)
	case f.bits != 8 && f.bits != 16 && f.bits != 24 && f.bits != 32:
		return f, fmt.Errorf("%w: %d bits per WAV sample", ErrFormat, f.bits)
	}
	return f, nil
}

// isMP3 recognises an ID3v2 tag or an MPEG audio frame header.
func isMP3(data []byte) bool {
	if len(data) >= 3 && string(data[:3]) == "ID3" {
		return true
	}
	return len(data) >= 2 && data[0] == 0xff && data[1]&0xe0 == 0xe0
}

// onlyReader hides a reader's Seek: given a seeker, go-mp3 first walks
// every frame to count them and keeps each one's offset (8 bytes a frame,
// 89 MB for a file of tiny frames); the output's limit bounds the decode
// instead.
type onlyReader struct{ io.Reader }

func decodeMP3(data []byte, o *output) error {
	data, err := skipID3(data)
	if err != nil {
		return err
	}
	d, err := mp3.NewDecoder(onlyReader{bytes.NewReader(data)})
	if err != nil {
		return err
	}
	if err := o.start(d.SampleRate(), 0, false); err != nil {
		return err
	}
	// go-mp3 always gives 16-bit little-endian stereo; a frame at a time
	// (1152 samples, 576 in MPEG-2), so that a decode stops within a frame
	// of the limit.
	buf := make([]byte, 4*1152)
	mono := make([]float32, 1152)
	for {
		n, err := io.ReadFull(d, buf)
		for i := range n / 4 {
			l := int16(binary.LittleEndian.Uint16(buf[4*i:]))
			r := int16(binary.LittleEndian.Uint16(buf[4*i+2:]))
			mono[i] = (float32(l) + float32(r)) / (2 * 32768)
		}
		if werr := o.write(mono[:n/4]); werr != nil {
			return werr
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// skipID3 cuts the ID3v2 tags off the front of an MP3 file, checking their
// sizes: go-mp3 allocates whatever a tag's header claims, up to 256 MB for
// a 10-byte file.
func skipID3(data []byte) ([]byte, error) {
	for len(data) >= 10 && string(data[:3]) == "ID3" {
		size := 0 // a "synchsafe" integer: 7 bits a byte
		for _, b := range data[6:10] {
			if b >= 0x80 {
				return nil, fmt.Errorf("%w: a broken ID3 tag", ErrFormat)
			}
			size = size<<7 | int(b)
		}
		size += 10 // the header
		if data[5]&0x10 != 0 {
			size += 10 // a footer
		}
		if size > len(data) {
			return nil, fmt.Errorf("%w: its ID3 tag claims %d bytes but the file has %d", ErrFormat, size, len(data))
		}
		data = data[size:]
	}
	return data, nil
}

func decodeFLAC(data []byte, o *output) error {
	if err := checkFLAC(data); err != nil {
		return err
	}
	s, err := flac.New(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer s.Close()
	rate, bits := int(s.Info.SampleRate), int(s.Info.BitsPerSample)
	if bits < 4 || bits > 32 {
		return fmt.Errorf("%w: %d bits per FLAC sample", ErrFormat, bits)
	}
	// The header's length (0 when unknown) sizes the output only if the
	// file could hold that much (FLAC rarely packs music below a quarter
	// of its PCM): else a lying header would allocate the limit for a
	// small file.
	samples := int64(s.Info.NSamples)
	pcmBytes := samples * int64(s.Info.NChannels) * int64(bits) / 8
	if err := o.start(rate, samples, pcmBytes <= 4*int64(len(data))); err != nil {
		return err
	}
	scale := 1 / float32(int64(1)<<(bits-1))
	var mono []float32
	for {
		f, err := s.ParseNext()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(f.Subframes) == 0 {
			continue
		}
		n := len(f.Subframes[0].Samples)
		if cap(mono) < n {
			mono = make([]float32, n)
		}
		mono = mono[:n]
		for i := range n {
			var sum int64
			for _, sf := range f.Subframes {
				if i < len(sf.Samples) {
					sum += int64(sf.Samples[i])
				}
			}
			mono[i] = float32(sum) * scale / float32(len(f.Subframes))
		}
		if err := o.write(mono); err != nil {
			return err
		}
	}
}

// checkFLAC walks a FLAC file's metadata blocks before mewkiz/flac sees
// them, because it allocates what a block's header claims (a 16-byte file
// can ask for 20 MB of seek points): the first must be the stream info and
// none may claim more than the file holds.
func checkFLAC(data []byte) error {
	for at, first := 4, true; ; first = false {
		if at+4 > len(data) {
			return fmt.Errorf("%w: a FLAC file cut short in its header", ErrFormat)
		}
		last, kind := data[at]&0x80 != 0, data[at]&0x7f
		size := int(data[at+1])<<16 | int(data[at+2])<<8 | int(data[at+3])
		if first && (kind != 0 || size != 34) {
			return fmt.Errorf("%w: a FLAC file that does not start with its stream info", ErrFormat)
		}
		at += 4 + size
		if at > len(data) {
			return fmt.Errorf("%w: its FLAC metadata block of type %d claims %d bytes but only %d are left", ErrFormat, kind, size, len(data)-at+size)
		}
		if last {
			return nil
		}
	}
}

// decodeOpus decodes Ogg/Opus through libopusfile, which always gives
// 48 kHz. Its channel count is in the OpusHead packet.
func decodeOpus(data []byte, o *output) error {
	ch, err := opusChannels(data)
	if err != nil {
		return err
	}
	s, err := opus.NewStream(bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := o.start(audio.SampleRate, 0, false); err != nil {
		return err
	}
	buf := make([]float32, 5760*ch) // 120 ms, Opus's longest packet
	mono := make([]float32, 5760)
	for {
		n, err := s.ReadFloat32(buf)
		for i := range n {
			var sum float32
			for c := range ch {
				sum += buf[i*ch+c]
			}
			mono[i] = sum / float32(ch)
		}
		if werr := o.write(mono[:n]); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// opusChannels finds the channel count in the first page's OpusHead.
func opusChannels(data []byte) (int, error) {
	head := data[:min(len(data), 512)]
	i := bytes.Index(head, []byte("OpusHead"))
	if i < 0 || i+10 > len(head) {
		return 0, fmt.Errorf("%w: an Ogg file, but not Ogg/Opus", ErrFormat)
	}
	ch := int(head[i+9])
	if ch < 1 || ch > 8 {
		return 0, fmt.Errorf("%w: %d Opus channels", ErrFormat, ch)
	}
	return ch, nil
}
