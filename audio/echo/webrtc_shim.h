// A C face for WebRTC audio processing 0.3 (C++), so that cgo can call it.
#ifndef DUET_WEBRTC_SHIM_H
#define DUET_WEBRTC_SHIM_H

#ifdef __cplusplus
extern "C" {
#endif

// The frame the library works in: 10 ms at 48 kHz, mono.
#define DUET_APM_FRAME 480

typedef struct duet_apm duet_apm;

// duet_apm_new returns an echo canceller (NULL on failure) with noise
// suppression, AGC, the extended (128 ms) filter and delay-agnostic mode
// each switched on by a non-zero flag, and its residual echo suppression
// at level 0 (low), 1 (moderate) or 2 (high).
duet_apm *duet_apm_new(int ns, int agc, int extended, int delay_agnostic, int level);

// duet_apm_process gives one frame of what was played (ref) and of what
// the microphone heard (mic), and writes the microphone with the echo
// removed to out. delay_ms is the echo path delay. Returns the library's
// error code (0 = none).
int duet_apm_process(duet_apm *a, const float *ref, const float *mic, float *out, int delay_ms);

void duet_apm_free(duet_apm *a);

#ifdef __cplusplus
}
#endif

#endif
