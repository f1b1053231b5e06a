//go:build !nowebrtcapm

package echo

/*
#cgo pkg-config: webrtc-audio-processing
#cgo CXXFLAGS: -std=c++14
#include "webrtc_shim.h"
*/
import "C"

import (
	"errors"
	"time"

	"github.com/duetapp/duet/audio"
)

// webrtcFrame is WebRTC audio processing's frame: 10 ms.
const webrtcFrame = C.DUET_APM_FRAME

// apm is WebRTC audio processing 0.3's echo canceller (the desktop AEC)
// through the C shim in webrtc_shim.cc.
type apm struct {
	st *C.duet_apm
	ns bool
	eq *shelf // undoes the filter bank's low-frequency loss
}

func newWebRTC(o Options) (*apm, error) {
	level := C.int(0) // low: the least harm to the near-end voice
	if o.SuppressResidual {
		level = 2
	}
	st := C.duet_apm_new(cbool(o.NoiseSuppression), cbool(o.AGC), 1, cbool(o.EstimateDelay), level)
	if st == nil {
		return nil, errors.New("echo: webrtc audio processing: cannot make a canceller")
	}
	return &apm{st: st, ns: o.NoiseSuppression, eq: newShelf(bankShelfHz, bankShelfDB, bankShelfSlope, audio.SampleRate)}, nil
}

func (a *apm) process(mic, ref, out []float32, delay int) bool {
	ms := int(audio.Duration(delay) / time.Millisecond)
	if C.duet_apm_process(a.st, (*C.float)(&ref[0]), (*C.float)(&mic[0]), (*C.float)(&out[0]), C.int(ms)) != 0 {
		return false
	}
	a.eq.run(out)
	return true
}

// delay is 8 ms (the three-band filter bank and the AEC's 64-sample
// blocks), 6 ms more with noise suppression; measured by TestLibraryDelay.
func (a *apm) delay() int {
	if a.ns {
		return 384 + 288
	}
	return 384
}

func (a *apm) close() {
	C.duet_apm_free(a.st)
	a.st = nil
}
