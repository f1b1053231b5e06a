package record

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/duetapp/duet/audio"
)

// wavWriter writes a mono 24-bit WAV file whose header is true after every
// flush, so a crash leaves a file any player opens, missing only what was
// not flushed yet. (go-audio/wav writes its sizes only on Close.)
type wavWriter struct {
	f    *os.File
	path string
	n    int64 // data bytes written
	buf  []byte
}

const wavHeader = 44

func createWAV(path string) (*wavWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	w := &wavWriter{f: f, path: path}
	h := make([]byte, wavHeader)
	copy(h[0:], "RIFF")
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], 1) // mono
	binary.LittleEndian.PutUint32(h[24:], audio.SampleRate)
	binary.LittleEndian.PutUint32(h[28:], audio.SampleRate*3)
	binary.LittleEndian.PutUint16(h[32:], 3)
	binary.LittleEndian.PutUint16(h[34:], 24)
	copy(h[36:], "data")
	if _, err := f.Write(h); err != nil {
		f.Close()
		return nil, err
	}
	if err := w.patch(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// write appends samples, clipped to [-1, 1].
func (w *wavWriter) write(p []float32) error {
	w.buf = w.buf[:0]
	for _, v := range p {
		v = max(-1, min(1, v))
		s := int32(v * 8388607)
		w.buf = append(w.buf, byte(s), byte(s>>8), byte(s>>16))
	}
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	w.n += int64(len(w.buf))
	return nil
}

// patch makes the header's sizes say what the file holds.
func (w *wavWriter) patch() error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(36+w.n))
	if _, err := w.f.WriteAt(b[:], 4); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(w.n))
	if _, err := w.f.WriteAt(b[:], 40); err != nil {
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

func (w *wavWriter) close() error {
	err := w.patch()
	if serr := w.f.Sync(); err == nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
