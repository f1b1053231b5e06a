package signal

import (
	"encoding/json"
	"fmt"
)

// Version is the protocol version this package speaks. Every message
// carries it; a message of another version is rejected with ErrVersion.
const Version = 1

// MaxMessageSize is the largest message, in bytes of JSON, that Decode and
// Encode accept and the server reads.
const MaxMessageSize = 64 << 10

// Type is the type of a Message.
type Type string

// Message types. The comments say who sends each and which fields it needs.
const (
	TypeCreate     Type = "create"      // host → server: make me a room
	TypeCreated    Type = "created"     // server → host: {room}
	TypeJoin       Type = "join"        // guest → server: {room}
	TypeJoined     Type = "joined"      // server → guest: {room}
	TypePeerJoined Type = "peer-joined" // server → host: a guest is in the room
	TypeOffer      Type = "offer"       // relayed, {sdp}
	TypeAnswer     Type = "answer"      // relayed, {sdp}
	TypeCandidate  Type = "candidate"   // relayed, {candidate}; trickle ICE
	TypeHangup     Type = "hangup"      // relayed, {error}: I give this connection up (ErrNegotiation)
	TypeBye        Type = "bye"         // client → server: I am leaving
	TypePeerLeft   Type = "peer-left"   // server → remaining participant
	TypeError      Type = "error"       // server → client, {error}
	TypeResume     Type = "resume"      // client → server: {room, token}; take my seat back
	TypeResumed    Type = "resumed"     // server → client: {room, role, partner}
)

// Roles of a participant, in a resumed message.
const (
	RoleHost  = "host"
	RoleGuest = "guest"
)

// Bounds of a resume token in a message, in bytes. The server's tokens are
// 26 characters (128 random bits in base32, from crypto/rand.Text).
const (
	minTokenLen = 16
	maxTokenLen = 64
)

// Message is one protocol message, one JSON object per WebSocket text
// message. Which fields are set depends on Type.
type Message struct {
	V         int        `json:"v"`
	Type      Type       `json:"type"`
	Room      string     `json:"room,omitempty"`
	SDP       string     `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`
	Error     *Error     `json:"error,omitempty"`
	// ICEServers come with joined, peer-joined and resumed (with a
	// partner): the STUN and TURN servers (with short-lived credentials)
	// the singer's connection may use. Older servers sent a host's with
	// created.
	ICEServers []ICEServer `json:"iceServers,omitempty"`
	// Token comes with created and joined, and goes with resume: the
	// secret that lets a participant whose socket dropped take its seat
	// back (see the package doc, Resume).
	Token string `json:"token,omitempty"`
	// Role and Partner come with resumed: which seat was taken back
	// (RoleHost or RoleGuest) and whether the other seat is taken.
	Role    string `json:"role,omitempty"`
	Partner bool   `json:"partner,omitempty"`
}

// ICEServer is one STUN or TURN server, as in WebRTC's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// maxICEServers bounds the servers one message may carry.
const maxICEServers = 8

// Candidate is a trickled ICE candidate. It mirrors pion's
// webrtc.ICECandidateInit field for field, so that package signal does not
// depend on pion. An empty Candidate string signals the end of candidates.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Decode parses and checks one message. It rejects messages larger than
// MaxMessageSize, invalid JSON, another Version, an unknown Type and
// messages that miss a field their type needs; unknown fields are ignored.
// The error wraps an *Error (ErrTooLarge, ErrBadMessage or ErrVersion)
// that the server sends back as it is.
func Decode(data []byte) (Message, error) {
	if len(data) > MaxMessageSize {
		return Message{}, fmt.Errorf("signal: decode: %w", Errorf(ErrTooLarge,
			"the message has %d bytes, more than the limit of %d", len(data), MaxMessageSize))
	}
	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return Message{}, fmt.Errorf("signal: decode: %w", Errorf(ErrBadMessage,
			"the message is not a valid JSON object: %v", err))
	}
	if err := m.check(); err != nil {
		return Message{}, fmt.Errorf("signal: decode: %w", err)
	}
	return m, nil
}

// Encode sets m.V to Version and returns m as JSON. It rejects a message
// that Decode would reject.
func Encode(m Message) ([]byte, error) {
	m.V = Version
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("signal: encode: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("signal: encode: %w", err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("signal: encode: %w", Errorf(ErrTooLarge,
			"the %s message has %d bytes, more than the limit of %d", m.Type, len(b), MaxMessageSize))
	}
	return b, nil
}

// check reports what makes m invalid, as an *Error.
func (m *Message) check() *Error {
	if m.V == 0 {
		return Errorf(ErrVersion, "the message has no protocol version (v): this side speaks version %d", Version)
	}
	if m.V != Version {
		return Errorf(ErrVersion,
			"the other side speaks signaling protocol version %d and this side version %d: update Duet on both ends",
			m.V, Version)
	}
	if len(m.ICEServers) > maxICEServers {
		return Errorf(ErrBadMessage, "the message lists %d ICE servers; at most %d are allowed", len(m.ICEServers), maxICEServers)
	}
	for _, s := range m.ICEServers {
		if len(s.URLs) == 0 || len(s.URLs) > maxICEServers {
			return Errorf(ErrBadMessage, "an ICE server has %d URLs; give 1 to %d", len(s.URLs), maxICEServers)
		}
	}
	if len(m.Token) > maxTokenLen {
		return Errorf(ErrBadMessage, "the resume token has %d bytes; at most %d are allowed", len(m.Token), maxTokenLen)
	}
	switch m.Type {
	case TypeCreate, TypePeerJoined, TypeBye, TypePeerLeft:
	case TypeJoin, TypeCreated, TypeJoined, TypeResume, TypeResumed:
		if _, err := ParseCode(m.Room); err != nil {
			return Errorf(ErrBadMessage, "the %s message has no valid room code: %s is not one", m.Type, quote(m.Room))
		}
		if m.Type == TypeResume && len(m.Token) < minTokenLen {
			return Errorf(ErrBadMessage, "the resume message has no valid token")
		}
		if m.Type == TypeResumed && m.Role != RoleHost && m.Role != RoleGuest {
			return Errorf(ErrBadMessage, "the resumed message has no valid role: %s is not one", quote(m.Role))
		}
	case TypeOffer, TypeAnswer:
		if m.SDP == "" {
			return Errorf(ErrBadMessage, "the %s message has no session description (sdp)", m.Type)
		}
	case TypeCandidate:
		if m.Candidate == nil {
			return Errorf(ErrBadMessage, "the candidate message has no candidate")
		}
	case TypeError, TypeHangup:
		if m.Error == nil || m.Error.Code == "" {
			return Errorf(ErrBadMessage, "the %s message has no error code", m.Type)
		}
	case "":
		return Errorf(ErrBadMessage, "the message has no type")
	default:
		return Errorf(ErrBadMessage, "the message type %s is unknown", quote(string(m.Type)))
	}
	return nil
}
