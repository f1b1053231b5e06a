//go:build !nowebrtcapm

package echo

// Default is the canceller Duet uses (see the package doc for why).
const Default = WebRTC
