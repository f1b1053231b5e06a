// Package track holds a duet's backing track: it decodes a song file (WAV,
// MP3, Ogg/Opus or FLAC) to Duet's format (mono float32 at 48 kHz), and
// plays it on the audio thread from a scheduled instant, at a rate its
// owner steers so that a guest's copy follows the host's.
//
// Decoders are well-kept libraries: go-audio/wav (through audio/wavfile),
// hajimehoshi/go-mp3, mewkiz/flac, and libopusfile through hraban/opus.
// Files at other rates are converted with libsamplerate at its best
// quality. The devices are mono today, so a stereo track is mixed down.
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
	"github.com/duetapp/duet/audio/wavfile"
)

// Limits on what Duet loads: a file of at most MaxFileSize bytes that
// decodes to at most MaxDuration of audio.
const (
	MaxFileSize = 256 << 20
	MaxDuration = 20 * 60 // seconds
)

// ErrFormat reports a file Duet cannot play.
var ErrFormat = errors.New("track: unsupported file")

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
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: larger than %d MB", ErrFormat, MaxFileSize>>20)
	}
	var (
		p    []float32
		rate int
		err  error
	)
	switch {
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		p, rate, err = wavfile.DecodeAnyRate(data)
	case len(data) >= 4 && string(data[:4]) == "fLaC":
		p, rate, err = decodeFLAC(data)
	case len(data) >= 4 && string(data[:4]) == "OggS":
		p, rate, err = decodeOpus(data)
	case isMP3(data):
		p, rate, err = decodeMP3(data)
	default:
		return nil, fmt.Errorf("%w: not a WAV, MP3, Ogg/Opus or FLAC file", ErrFormat)
	}
	if err != nil {
		if errors.Is(err, ErrFormat) || errors.Is(err, wavfile.ErrFormat) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: it holds no audio", ErrFormat)
	}
	if p, err = resample.Convert(p, rate, audio.SampleRate); err != nil {
		return nil, err
	}
	return &Track{Name: name, Samples: p, File: data, Digest: sha256.Sum256(data)}, nil
}

// isMP3 recognises an ID3v2 tag or an MPEG audio frame header.
func isMP3(data []byte) bool {
	if len(data) >= 3 && string(data[:3]) == "ID3" {
		return true
	}
	return len(data) >= 2 && data[0] == 0xff && data[1]&0xe0 == 0xe0
}

// tooLong reports a decode that passed MaxDuration.
func tooLong(samples, rate int) error {
	if samples > MaxDuration*rate {
		return fmt.Errorf("%w: longer than %d minutes", ErrFormat, MaxDuration/60)
	}
	return nil
}

func decodeMP3(data []byte) ([]float32, int, error) {
	d, err := mp3.NewDecoder(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	rate := d.SampleRate()
	if rate <= 0 {
		return nil, 0, fmt.Errorf("%w: bad MP3 sample rate", ErrFormat)
	}
	// go-mp3 always gives 16-bit little-endian stereo.
	var out []float32
	buf := make([]byte, 4*4096)
	for {
		n, err := io.ReadFull(d, buf)
		for i := 0; i+4 <= n; i += 4 {
			l := int16(binary.LittleEndian.Uint16(buf[i:]))
			r := int16(binary.LittleEndian.Uint16(buf[i+2:]))
			out = append(out, (float32(l)+float32(r))/(2*32768))
		}
		if err := tooLong(len(out), rate); err != nil {
			return nil, 0, err
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out, rate, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

func decodeFLAC(data []byte) ([]float32, int, error) {
	s, err := flac.New(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	rate, bits := int(s.Info.SampleRate), int(s.Info.BitsPerSample)
	if rate <= 0 || bits < 4 || bits > 32 {
		return nil, 0, fmt.Errorf("%w: bad FLAC stream info", ErrFormat)
	}
	scale := 1 / float32(int64(1)<<(bits-1))
	var out []float32
	for {
		f, err := s.ParseNext()
		if err == io.EOF {
			return out, rate, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if len(f.Subframes) == 0 {
			continue
		}
		n := len(f.Subframes[0].Samples)
		for i := range n {
			var sum int64
			for _, sf := range f.Subframes {
				if i < len(sf.Samples) {
					sum += int64(sf.Samples[i])
				}
			}
			out = append(out, float32(sum)*scale/float32(len(f.Subframes)))
		}
		if err := tooLong(len(out), rate); err != nil {
			return nil, 0, err
		}
	}
}

// decodeOpus decodes Ogg/Opus through libopusfile, which always gives
// 48 kHz. Its channel count is in the OpusHead packet.
func decodeOpus(data []byte) ([]float32, int, error) {
	ch, err := opusChannels(data)
	if err != nil {
		return nil, 0, err
	}
	s, err := opus.NewStream(bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	var out []float32
	buf := make([]float32, 5760*ch)
	for {
		n, err := s.ReadFloat32(buf)
		for i := range n {
			var sum float32
			for c := range ch {
				sum += buf[i*ch+c]
			}
			out = append(out, sum/float32(ch))
		}
		if err == io.EOF {
			return out, audio.SampleRate, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if err := tooLong(len(out), audio.SampleRate); err != nil {
			return nil, 0, err
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
