package peer

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ErrNoFingerprint reports a session description without a DTLS
// certificate fingerprint.
var ErrNoFingerprint = errors.New("peer: no DTLS fingerprint in the session description")

// SafetyCode returns a six-digit code derived from both sides' DTLS
// certificate fingerprints. The two singers see the same code only if each
// talks to the other's certificate: if anyone in the middle (even the
// rendezvous server, which relays the fingerprints) swapped in their own,
// the codes differ. Read aloud, it proves the duet is private. Valid once
// both descriptions are set.
func (p *Peer) SafetyCode() (string, error) {
	local, remote := p.pc.CurrentLocalDescription(), p.pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return "", errors.New("peer: not negotiated yet")
	}
	a, err := fingerprint(local.SDP)
	if err != nil {
		return "", err
	}
	b, err := fingerprint(remote.SDP)
	if err != nil {
		return "", err
	}
	return safetyCode(a, b), nil
}

// fingerprint returns the first a=fingerprint value of an SDP, normalised.
func fingerprint(sdp string) (string, error) {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "a=fingerprint:"); ok {
			return strings.ToUpper(strings.TrimSpace(v)), nil
		}
	}
	return "", ErrNoFingerprint
}

// safetyCode hashes the two fingerprints in a fixed order, so both sides
// get the same six digits.
func safetyCode(a, b string) string {
	if a > b {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte("duet safety code\n" + a + "\n" + b))
	n := binary.BigEndian.Uint32(sum[:4]) % 1_000_000
	return fmt.Sprintf("%03d %03d", n/1000, n%1000)
}
