// Package app runs one singer's side of a duet: it meets the partner through
// the rendezvous server, connects the WebRTC peer, and wires the audio
// device to the codecs, the jitter buffer and the mixers.
//
// The voice goes in Opus Custom to another Duet, in PCM (L16) on a clean
// LAN, in Opus to anyone else or over a path that loses much (Config.Codec,
// adapter), the codec changing mid-song without a click (voice.go).
//
// The host creates a room and waits; each guest that joins gets an offer
// from the host. The host sends its guest a mix-minus (everything the host
// hears except the guest's own voice); each singer hears themself directly,
// at zero latency, at the monitor gain. When a guest leaves, the host keeps
// the room and waits for the next one; when the host leaves, the guest's
// session ends.
//
// A Session is made of owners, each keeping its state on one goroutine
// and publishing a snapshot for Stats, Track and the rest: the connection
// supervisor (supervisor.go; its rendezvous connection, rendezvous.go),
// the track controller (track.go), the clock follower (clockfollow.go)
// and the media pipeline (pipeline.go). Run starts them, carries their
// news to one another in order (news.go), owns every goroutine the
// session starts and stops them all before it returns; Play, Pause, Seek
// and Record work only while Run runs. Events are reported through
// Config.OnEvent, from Run's goroutine. app does not import Fyne: the UI and the command line
// both drive it through these plain types.
package app

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/duetapp/duet/audio"
	"github.com/duetapp/duet/audio/codec"
	"github.com/duetapp/duet/audio/track"
)

// DefaultJitterTarget is the playout delay the jitter buffer holds: one
// 5 ms frame, enough on a LAN or loopback.
const DefaultJitterTarget = 5 * time.Millisecond

// Auto, as Config.Codec, lets the session choose the codec it sends.
const Auto codec.Kind = 0

// ParseCodec reads a codec choice as --codec and the settings take it:
// "auto" (or empty), or a codec's name for codec.ParseKind ("custom",
// "pcm", "l16", "l24", "opus").
func ParseCodec(s string) (codec.Kind, error) {
	if t := strings.TrimSpace(s); t == "" || strings.EqualFold(t, "auto") {
		return Auto, nil
	}
	return codec.ParseKind(s)
}

// CodecName is ParseCodec's inverse: "auto" for Auto.
func CodecName(k codec.Kind) string {
	if k == Auto {
		return "auto"
	}
	return k.String()
}

// firstCodec is what a session sends until it knows better: the codec
// chosen, or for Auto Opus Custom (the partner permitting).
func firstCodec(k codec.Kind) codec.Kind {
	if k == Auto {
		return codec.OpusCustom
	}
	return k
}

// ErrConnectionLost reports that the peer-to-peer connection failed.
var ErrConnectionLost = errors.New("lost the connection to your partner")

// Config describes a session.
type Config struct {
	// Server is the rendezvous server's URL, e.g. http://127.0.0.1:3838.
	Server string
	// Device is the singer's audio device. The session starts it once the
	// partner is connected and closes it when the session ends.
	Device audio.Device
	// Reopen, if set, opens the audio device again after it was lost
	// (Device.Err not nil: unplugged, or the sound server went away); the
	// session keeps the duet going and calls it every second until it
	// succeeds. Without it a lost device ends the session.
	Reopen func() (audio.Device, error)
	// Frame is the Opus frame duration; 0 means codec.DefaultFrame.
	Frame time.Duration
	// Bitrate is the Opus bitrate in bits per second; 0 means
	// codec.DefaultBitrate. Opus Custom's is codec.DefaultCustomBitrate,
	// lowered with it when the path loses packets.
	Bitrate int
	// Codec is what to send (the partner permitting; else Opus): 0 for
	// Auto, which sends Opus Custom, or PCM on a fat clean path (see
	// adapter).
	Codec codec.Kind
	// JitterTarget is the partner voice's playout delay; 0 means
	// DefaultJitterTarget.
	JitterTarget time.Duration
	// JitterBias leans the partner's playout from tight (−1) to safe (+1);
	// SetJitterBias changes it while singing.
	JitterBias float64
	// Speakers: the singer uses loudspeakers, so an echo canceller cleans
	// the microphone of what they play (headphones need none, and add no
	// latency).
	Speakers bool
	// Monitor is the gain at which singers hear themselves directly
	// (1 = unity, 0 = off).
	Monitor float32
	// MaxBlock is the largest block the device will ask for, in samples;
	// 0 means 4096.
	MaxBlock int
	// DeviceRoundTrip is the device's measured output-to-input latency
	// (duet calibrate), 0 if unknown; it is part of the latency figures.
	DeviceRoundTrip time.Duration
	// Track is the host's backing track at the start (SetTrack changes
	// it); nil for none.
	Track *track.Track
	// StreamTrack (host) sends the track in the guest's mix instead of as
	// a file: for a guest that cannot take the file. The guest then hears
	// it a network delay late, and so does the host hear the guest.
	StreamTrack bool
	// AutoPlay (host) starts the track, after its count-in, as soon as the
	// guest can play along; with RecordDir, it records a take there too.
	AutoPlay  bool
	RecordDir string
	// CacheDir is where a guest keeps backing tracks it was sent; empty
	// means the user's cache folder.
	CacheDir string
	// Name is the singer's display name, told to the partner.
	Name string
	// NTPServer, if set, is asked once for this machine's clock offset
	// (net/ntpcheck), a cross-check shown in Stats; unreachable is fine.
	NTPServer string
	// OnArrival, if set, is told of every voice packet from the partner as
	// it arrives (not of frames recovered from redundancy): conn numbers
	// the session's peer connections from 1, at is the arrival on the
	// playout's clock. It runs on the packet reader's goroutine and must
	// not block: net/trace's Recorder keeps them for a trace file.
	OnArrival func(conn uint32, seq uint16, ts uint32, at time.Duration)
	// ICEServers are STUN/TURN URLs, on top of those the rendezvous server
	// hands out.
	ICEServers []string
	// RelayOnly sends media only through a TURN relay, which hides the
	// singers' addresses from each other.
	RelayOnly bool
	// Loopback restricts the connection to the loopback interface.
	Loopback bool
	// WrapConn, with Loopback, wraps the one UDP socket this singer's media
	// goes through: the lab impairs or watches the network there.
	WrapConn func(net.PacketConn) net.PacketConn
	Logger   *slog.Logger
	// OnEvent, if set, is told of every change of state, from Run's
	// goroutine; it must not block.
	OnEvent func(Event)
}

func (c *Config) fill() error {
	if c.Device == nil {
		return errors.New("app: no audio device")
	}
	if c.Frame == 0 {
		c.Frame = codec.DefaultFrame
	}
	if _, err := codec.FrameSamples(c.Frame); err != nil {
		return err
	}
	if c.Bitrate == 0 {
		c.Bitrate = codec.DefaultBitrate
	}
	if c.JitterTarget == 0 {
		c.JitterTarget = DefaultJitterTarget
	}
	if c.MaxBlock == 0 {
		c.MaxBlock = 4096
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		c.CacheDir = filepath.Join(dir, "duet", "tracks")
	}
	if c.OnEvent == nil {
		c.OnEvent = func(Event) {}
	}
	return nil
}

// State is where a session is.
type State int

// The states a session passes through.
const (
	StateWaiting      State = iota // host: the room is open, no guest yet
	StateConnecting                // partner found, connecting peer to peer
	StateConnected                 // singing: media flows both ways
	StatePartnerLeft               // host: the guest left; waiting for another
	StateDeviceLost                // the audio device stopped; the duet goes on
	StateReconnecting              // the connection to the partner dropped; coming back
	StateEnded                     // the session is over
)

func (s State) String() string {
	switch s {
	case StateWaiting:
		return "waiting"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StatePartnerLeft:
		return "partner left"
	case StateDeviceLost:
		return "device lost"
	case StateReconnecting:
		return "reconnecting"
	case StateEnded:
		return "ended"
	}
	return "unknown"
}

// Event is a change of state with a sentence for the singer.
type Event struct {
	State State
	Text  string
}
