// Package wavfile reads and writes WAV files as Duet's float32 mono samples
// at 48 kHz, through github.com/go-audio/wav.
//
// Reading accepts integer PCM of 8, 16, 24 or 32 bits and any channel count
// (mixed down to mono); other rates and formats get an error that says what
// to do. Writing produces 16-bit PCM. A Writer belongs to one goroutine.
package wavfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
	p, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("wavfile: %s: %w", path, err)
	}
	return p, nil
}

// Decode reads a whole WAV file held in data as mono samples.
func Decode(data []byte) ([]float32, error) {
	p, rate, err := DecodeAnyRate(data)
	if err != nil {
		return nil, err
	}
	if rate != audio.SampleRate {
		return nil, fmt.Errorf("%w: %d Hz; Duet needs %d Hz, e.g. sox in.wav -r %d out.wav", ErrFormat, rate, audio.SampleRate, audio.SampleRate)
	}
	return p, nil
}

// DecodeAnyRate reads a whole WAV file held in data as mono samples at the
// file's own sample rate, which it returns.
func DecodeAnyRate(data []byte) (samples []float32, rate int, err error) {
	data, err = checkChunks(data)
	if err != nil {
		return nil, 0, err
	}
	d := wav.NewDecoder(bytes.NewReader(data))
	if !d.IsValidFile() {
		if err := d.Err(); err != nil {
			return nil, 0, fmt.Errorf("%w: not a readable WAV file (%v)", ErrFormat, err)
		}
		return nil, 0, fmt.Errorf("%w: not a WAV file, or it holds no audio", ErrFormat)
	}
	if d.WavAudioFormat != formatPCM && d.WavAudioFormat != formatExtensible {
		return nil, 0, fmt.Errorf("%w: sample format %d; convert it to integer PCM, e.g. sox in.wav -b 16 out.wav", ErrFormat, d.WavAudioFormat)
	}
	if d.SampleRate == 0 || d.SampleRate > 384000 {
		return nil, 0, fmt.Errorf("%w: %d Hz", ErrFormat, d.SampleRate)
	}
	var scale float32
	switch d.BitDepth {
	case 8, 16, 24, 32:
		scale = 1 / float32(int64(1)<<(d.BitDepth-1))
	default:
		return nil, 0, fmt.Errorf("%w: %d bits per sample", ErrFormat, d.BitDepth)
	}
	buf, err := d.FullPCMBuffer()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrFormat, err)
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
	return out, int(d.SampleRate), nil
}

// checkChunks walks the RIFF chunks before go-audio/wav sees them, because
// it trusts their sizes and allocates whatever a header claims (a 44-byte
// file can ask for gigabytes). A chunk that claims more than the file holds
// is an error, except the data chunk, which is cut to what is there, and
// what follows the data chunk, which is taken as more of it: both are a
// recording whose header was not finished (a crash between writing audio
// and patching the sizes), and its audio is good. The result is data
// itself or a corrected copy.
func checkChunks(data []byte) ([]byte, error) {
	if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: not a WAV file (no RIFF/WAVE header)", ErrFormat)
	}
	fixed := data
	fix := func(at int, v uint32) {
		if &fixed[0] == &data[0] {
			fixed = bytes.Clone(data)
		}
		binary.LittleEndian.PutUint32(fixed[at:], v)
	}
	if binary.LittleEndian.Uint32(data[4:]) != uint32(len(data)-8) {
		fix(4, uint32(len(data)-8))
	}
	dataAt := -1 // where the data chunk's header is, once seen
	for at := 12; at+8 <= len(data); {
		id := string(data[at : at+4])
		size := int64(binary.LittleEndian.Uint32(data[at+4:]))
		left := int64(len(data) - at - 8)
		if size > left && dataAt >= 0 {
			// Audio written after the header was last patched.
			fix(dataAt+4, uint32(len(data)-dataAt-8))
			break
		}
		if id == "data" {
			dataAt = at
		}
		if size > left {
			if id != "data" {
				return nil, fmt.Errorf("%w: its %q chunk claims %d bytes but only %d are left (truncated or corrupt)", ErrFormat, id, size, left)
			}
			fix(at+4, uint32(left))
			size = left
		}
		at += 8 + int(size) + int(size&1) // chunks are padded to even sizes
	}
	return fixed, nil
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

// WriteFile writes p as a whole WAV file at path.
func WriteFile(path string, p []float32) error {
	w, err := Create(path)
	if err != nil {
		return err
	}
	if err := w.Write(p); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
