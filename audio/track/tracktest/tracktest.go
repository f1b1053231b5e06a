// Package tracktest makes song files for tests and the lab: WAV files of
// any rate, sample width and channel count, including the ones
// track.Decode must refuse, and a measure of what a call allocates.
//
// Its functions keep no state; Alloc reads process-wide counters, so it
// measures only when nothing else allocates meanwhile.
package tracktest

import (
	"encoding/binary"
	"runtime"
)

// WAV returns a PCM WAV file of p (samples in [-1, 1]) at rate Hz, with
// bits (8, 16, 24 or 32) per sample, the same samples in each of channels.
func WAV(rate, bits, channels int, p []float32) []byte {
	width := bits / 8
	size := len(p) * channels * width
	b := make([]byte, 44, 44+size+size&1)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+size+size&1))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*channels*width))
	binary.LittleEndian.PutUint16(b[32:], uint16(channels*width))
	binary.LittleEndian.PutUint16(b[34:], uint16(bits))
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(size))
	var s [4]byte
	for _, v := range p {
		v = max(-1, min(1, v))
		// Full scale of a signed sample of this width; 8-bit WAV is
		// unsigned around 128.
		x := int32(float64(v) * float64(int64(1)<<(bits-1)-1))
		if bits == 8 {
			x += 128
		}
		binary.LittleEndian.PutUint32(s[:], uint32(x))
		for range channels {
			b = append(b, s[:width]...)
		}
	}
	if size&1 == 1 {
		b = append(b, 0) // chunks are padded to even sizes
	}
	return b
}

// Bomb is the WAV of issue 12: 262,144 bytes of 8-bit mono silence at
// 200 Hz, 21.8 minutes that would make 252 MB of 48 kHz samples.
func Bomb() []byte {
	return WAV(BombRate, 8, 1, make([]float32, BombSamples))
}

// The bomb's rate and length.
const (
	BombRate    = 200
	BombSamples = 262144
)

// Alloc returns how many bytes f allocated on the Go heap (the rise of
// runtime.MemStats.TotalAlloc): an upper bound on how far it raised the
// heap's peak. Memory allocated in C (libsamplerate, libopusfile) is not
// counted.
func Alloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
