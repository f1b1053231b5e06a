//go:build !nowebrtcapm

// See webrtc_shim.h.
#include "webrtc_shim.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>

struct duet_apm {
	webrtc::AudioProcessing *apm;
	webrtc::StreamConfig mono;
	float rev[DUET_APM_FRAME]; // ProcessReverseStream's output, unused
};

extern "C" duet_apm *duet_apm_new(int ns, int agc, int extended, int delay_agnostic, int level) {
	webrtc::Config cfg;
	// The experimental AGC is on unless switched off here; it would move a
	// microphone volume we do not have.
	cfg.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
	cfg.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(extended != 0));
	cfg.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(delay_agnostic != 0));
	webrtc::AudioProcessing *apm = webrtc::AudioProcessing::Create(cfg);
	if (apm == nullptr) {
		return nullptr;
	}
	webrtc::ProcessingConfig pc = {{
		webrtc::StreamConfig(48000, 1), webrtc::StreamConfig(48000, 1),
		webrtc::StreamConfig(48000, 1), webrtc::StreamConfig(48000, 1),
	}};
	bool ok = apm->Initialize(pc) == 0 &&
		apm->echo_cancellation()->enable_drift_compensation(false) == 0 &&
		apm->echo_cancellation()->set_suppression_level(
			static_cast<webrtc::EchoCancellation::SuppressionLevel>(level)) == 0 &&
		apm->echo_cancellation()->Enable(true) == 0;
	if (ok && ns) {
		ok = apm->noise_suppression()->set_level(webrtc::NoiseSuppression::kModerate) == 0 &&
			apm->noise_suppression()->Enable(true) == 0;
	}
	if (ok && agc) {
		ok = apm->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital) == 0 &&
			apm->gain_control()->Enable(true) == 0;
	}
	if (!ok) {
		delete apm;
		return nullptr;
	}
	return new duet_apm{apm, webrtc::StreamConfig(48000, 1), {}};
}

extern "C" int duet_apm_process(duet_apm *a, const float *ref, const float *mic, float *out, int delay_ms) {
	const webrtc::StreamConfig &mono = a->mono;
	const float *rsrc[1] = {ref};
	float *rdst[1] = {a->rev};
	int e = a->apm->ProcessReverseStream(rsrc, mono, mono, rdst);
	if (e != 0) {
		return e;
	}
	// The delay must be set before every ProcessStream.
	a->apm->set_stream_delay_ms(delay_ms);
	const float *src[1] = {mic};
	float *dst[1] = {out};
	return a->apm->ProcessStream(src, mono, mono, dst);
}

extern "C" void duet_apm_free(duet_apm *a) {
	if (a != nullptr) {
		delete a->apm;
		delete a;
	}
}
