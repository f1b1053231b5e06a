package app

import (
	"strings"
	"unicode"

	"github.com/duetapp/duet/audio/track"
)

// control is a message on the peer's control channel; which fields mean
// something depends on Type. The connection supervisor handles hello and
// bye; the track controller the track's messages (track.go).
type control struct {
	Type   string          `json:"type"`
	Text   string          `json:"text,omitempty"`
	Name   string          `json:"name,omitempty"`
	Size   int64           `json:"size,omitempty"`
	Digest string          `json:"digest,omitempty"`
	Offset int64           `json:"offset,omitempty"`
	Sched  *track.Schedule `json:"sched,omitempty"`
	Snap   *track.Snapshot `json:"snap,omitempty"`
	TS     uint32          `json:"ts,omitempty"`
	Pos    float64         `json:"pos,omitempty"`
}

const (
	controlBye   = "bye"
	controlHello = "hello" // my display name (Name)
)

// maxName bounds a partner's display name, in runes.
const maxName = 40

// cleanName keeps a display name printable and short.
func cleanName(n string) string { return cleanText(n, maxName) }

// cleanText keeps a partner's text printable and at most max runes.
func cleanText(n string, max int) string {
	var b strings.Builder
	count := 0
	for _, r := range n {
		if count == max {
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			count++
		}
	}
	return strings.TrimSpace(b.String())
}
