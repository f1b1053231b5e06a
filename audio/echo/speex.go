package echo

/*
#cgo pkg-config: speexdsp
#include <stdlib.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

// duet_speex holds speexdsp's canceller, its optional preprocessor and the
// 16-bit buffers its API takes.
typedef struct {
	SpeexEchoState *echo;
	SpeexPreprocessState *pre;
	int n;
	spx_int16_t *mic, *ref, *out;
} duet_speex;

static void duet_speex_free(duet_speex *s) {
	if (s == NULL) {
		return;
	}
	if (s->pre != NULL) {
		speex_preprocess_state_destroy(s->pre);
	}
	if (s->echo != NULL) {
		speex_echo_state_destroy(s->echo);
	}
	free(s->mic);
	free(s->ref);
	free(s->out);
	free(s);
}

static duet_speex *duet_speex_new(int frame, int tail, int rate, int denoise, int agc, int residual) {
	duet_speex *s = calloc(1, sizeof *s);
	if (s == NULL) {
		return NULL;
	}
	s->n = frame;
	s->mic = calloc(frame, sizeof(spx_int16_t));
	s->ref = calloc(frame, sizeof(spx_int16_t));
	s->out = calloc(frame, sizeof(spx_int16_t));
	s->echo = speex_echo_state_init(frame, tail);
	if (s->mic == NULL || s->ref == NULL || s->out == NULL || s->echo == NULL) {
		duet_speex_free(s);
		return NULL;
	}
	speex_echo_ctl(s->echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
	if (denoise || agc || residual) {
		s->pre = speex_preprocess_state_init(frame, rate);
		if (s->pre == NULL) {
			duet_speex_free(s);
			return NULL;
		}
		int off = 0, on = 1, least = -1;
		// The preprocessor suppresses residual echo only with its noise
		// suppression on: without denoise, it is turned down to 1 dB.
		speex_preprocess_ctl(s->pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
		if (!denoise) {
			speex_preprocess_ctl(s->pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &least);
		}
		speex_preprocess_ctl(s->pre, SPEEX_PREPROCESS_SET_AGC, &agc);
		speex_preprocess_ctl(s->pre, SPEEX_PREPROCESS_SET_DEREVERB, &off);
		if (residual) {
			speex_preprocess_ctl(s->pre, SPEEX_PREPROCESS_SET_ECHO_STATE, s->echo);
		}
	}
	return s;
}

static spx_int16_t duet_s16(float v) {
	v *= 32768.0f;
	if (v >= 32767.0f) {
		return 32767;
	}
	if (v <= -32768.0f) {
		return -32768;
	}
	return (spx_int16_t)(v + (v < 0 ? -0.5f : 0.5f));
}

// duet_speex_process cancels one frame, converting to and from the 16-bit
// samples speexdsp's API takes.
static void duet_speex_process(duet_speex *s, const float *mic, const float *ref, float *out) {
	for (int i = 0; i < s->n; i++) {
		s->mic[i] = duet_s16(mic[i]);
		s->ref[i] = duet_s16(ref[i]);
	}
	speex_echo_cancellation(s->echo, s->mic, s->ref, s->out);
	if (s->pre != NULL) {
		speex_preprocess_run(s->pre, s->out);
	}
	for (int i = 0; i < s->n; i++) {
		out[i] = s->out[i] / 32768.0f;
	}
}
*/
import "C"

import (
	"fmt"

	"github.com/duetapp/duet/audio"
)

// speex is speexdsp's multidelay-block-frequency canceller.
type speex struct {
	st  *C.duet_speex
	pre bool // the preprocessor runs, a frame behind
	n   int
}

func newSpeex(frame, tail int, o Options) (*speex, error) {
	st := C.duet_speex_new(C.int(frame), C.int(tail), C.int(audio.SampleRate),
		cbool(o.NoiseSuppression), cbool(o.AGC), cbool(o.SuppressResidual))
	if st == nil {
		return nil, fmt.Errorf("echo: speexdsp: cannot make a canceller of frame %d, tail %d", frame, tail)
	}
	return &speex{st: st, n: frame, pre: o.NoiseSuppression || o.AGC || o.SuppressResidual}, nil
}

func (s *speex) process(mic, ref, out []float32, _ int) bool {
	C.duet_speex_process(s.st, (*C.float)(&mic[0]), (*C.float)(&ref[0]), (*C.float)(&out[0]))
	return true
}

// delay is nothing for the canceller itself, a frame for the preprocessor
// (its overlapping windows; measured by TestLibraryDelay).
func (s *speex) delay() int {
	if s.pre {
		return s.n
	}
	return 0
}

func (s *speex) close() {
	C.duet_speex_free(s.st)
	s.st = nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
