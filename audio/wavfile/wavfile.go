// Package wavfile reads and writes WAV files as Duet's float32 mono samples
// at 48 kHz, through github.com/go-audio/wav.
//
// Reading accepts integer PCM of 8, 16, 24 or 32 bits and any channel count
// (mixed down to mono); other rates and formats get an error that says what
// to do. Writing produces 16-bit PCM. A Writer belongs to one goroutine.
package wavfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	goaudio "github.com/go-audio/audio"
	"github.com/go-audio/wav"

	"github.com/duetapp/duet/audio"
)

// ErrFormat reports a WAV file Duet cannot use.
var ErrFormat = errors.New("unsupported WAV file")

// WAVE_FORMAT_PCM and WAVE_FORMAT_EXTENSIBLE.
const (
	formatPCM        = 1
	formatExtensible = 0xfffe
)

// ReadFile reads the whole file at path as mono samples.
func ReadFile(path string) ([]float32, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wavfile: %w", err)
	}
	p, err := Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("wavfile: %s: %w", path, err)
	}
	return p, nil
}

// Decode reads a whole WAV stream as mono samples.
func Decode(r io.ReadSeeker) ([]float32, error) {
	d := wav.NewDecoder(r)
	if !d.IsValidFile() {
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("%w: not a readable WAV file (%v)", ErrFormat, err)
		}
		return nil, fmt.Errorf("%w: not a WAV file, or it holds no audio", ErrFormat)
	}
	if d.WavAudioFormat != formatPCM && d.WavAudioFormat != formatExtensible {
		return nil, fmt.Errorf("%w: sample format %d; convert it to integer PCM, e.g. sox in.wav -b 16 out.wav", ErrFormat, d.WavAudioFormat)
	}
	if d.SampleRate != audio.SampleRate {
		return nil, fmt.Errorf("%w: %d Hz; Duet needs %d Hz, e.g. sox in.wav -r %d out.wav", ErrFormat, d.SampleRate, audio.SampleRate, audio.SampleRate)
	}
	var scale float32
	switch d.BitDepth {
	case 8, 16, 24, 32:
		scale = 1 / float32(int64(1)<<(d.BitDepth-1))
	default:
		return nil, fmt.Errorf("%w: %d bits per sample", ErrFormat, d.BitDepth)
	}
	buf, err := d.FullPCMBuffer()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	ch := int(d.NumChans)
	out := make([]float32, len(buf.Data)/ch)
	for i := range out {
		var sum int
		for c := range ch {
			v := buf.Data[i*ch+c]
			if d.BitDepth == 8 {
				v -= 128 // 8-bit WAV is unsigned
			}
			sum += v
		}
		out[i] = float32(sum) * scale / float32(ch)
	}
	return out, nil
}

// Writer writes mono 16-bit WAV. The header's lengths are final only after
// Close.
type Writer struct {
	f    *os.File
	enc  *wav.Encoder
	buf  goaudio.IntBuffer
	path string
}

// Create creates (or truncates) the WAV file at path.
func Create(path string) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wavfile: %w", err)
	}
	return &Writer{
		f:    f,
		path: path,
		enc:  wav.NewEncoder(f, audio.SampleRate, 16, 1, formatPCM),
		buf: goaudio.IntBuffer{
			Format:         &goaudio.Format{NumChannels: 1, SampleRate: audio.SampleRate},
			SourceBitDepth: 16,
		},
	}, nil
}

// Write appends samples, clipped to [-1, 1].
func (w *Writer) Write(p []float32) error {
	w.buf.Data = w.buf.Data[:0]
	for _, v := range p {
		v = max(-1, min(1, v))
		w.buf.Data = append(w.buf.Data, int(v*32767))
	}
	if err := w.enc.Write(&w.buf); err != nil {
		return fmt.Errorf("wavfile: write %s: %w", w.path, err)
	}
	return nil
}

// Close finishes the header and closes the file.
func (w *Writer) Close() error {
	err := w.enc.Close()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wavfile: close %s: %w", w.path, err)
	}
	return nil
}
