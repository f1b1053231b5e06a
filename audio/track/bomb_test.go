package track

import (
	"testing"

	"github.com/duetapp/duet/audio/track/tracktest"
)

// BenchmarkDecodeBomb decodes issue 12's WAV bomb; its B/op is what the
// attempt allocates (wav_bomb_peak_mb in duetlab abuse).
func BenchmarkDecodeBomb(b *testing.B) {
	bomb := tracktest.Bomb()
	b.ReportAllocs()
	for b.Loop() {
		Decode("bomb.wav", bomb)
	}
}
