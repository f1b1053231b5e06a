//go:build nowebrtcapm

package echo

import "errors"

// Built with the nowebrtcapm tag (the Windows build: WebRTC audio processing
// is not cross-built for mingw), Duet has Speex alone.

// Default is the canceller Duet uses: Speex, the only one built in.
const Default = Speex

// webrtcFrame keeps New's WebRTC case compiling; New never gets that far.
const webrtcFrame = 480

// errNoWebRTC says why New(WebRTC, …) fails in this build.
var errNoWebRTC = errors.New("echo: WebRTC audio processing is not in this build (tag nowebrtcapm); use Speex")

func newWebRTC(Options) (engine, error) { return nil, errNoWebRTC }
