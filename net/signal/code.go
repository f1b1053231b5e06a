package signal

import (
	"fmt"
	"io"
	"strings"
)

// Code is a room code: 8 symbols of Crockford's base32 (the digits and the
// capital letters without I, L, O and U), 40 random bits. A Code holds the
// normalized symbols without separator; String groups them for reading
// aloud. Only NewCode and ParseCode make valid Codes.
type Code string

// codeLen is the number of symbols in a Code; each carries 5 bits.
const codeLen = 8

// alphabet is Crockford's base32, indexed by 5-bit value.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewCode returns a code made of 5 bytes read from r, which should be
// crypto/rand.Reader (tests may pass a fixed reader).
func NewCode(r io.Reader) (Code, error) {
	var b [5]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("signal: new room code: %w", err)
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	var s [codeLen]byte
	for i := codeLen - 1; i >= 0; i-- {
		s[i] = alphabet[n&31]
		n >>= 5
	}
	return Code(s[:]), nil
}

// ParseCode parses a code as a singer reads it aloud or types it: in any
// case, with or without the dash and spaces. As in Crockford's base32, I
// and L are read as 1 and O as 0.
func ParseCode(s string) (Code, error) {
	var b strings.Builder
	b.Grow(codeLen)
	for _, r := range s {
		switch {
		case r == '-' || r == ' ':
			continue
		case 'a' <= r && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'I', 'L':
			r = '1'
		case 'O':
			r = '0'
		}
		if r > 'Z' || strings.IndexByte(alphabet, byte(r)) < 0 {
			return "", fmt.Errorf("signal: %s is %w: %q is not one of its symbols (0-9 and A-Z without U)", quote(s), ErrInvalidCode, r)
		}
		b.WriteRune(r)
	}
	if b.Len() != codeLen {
		return "", fmt.Errorf("signal: %s is %w: it has %d symbols, a room code has %d", quote(s), ErrInvalidCode, b.Len(), codeLen)
	}
	return Code(b.String()), nil
}

// String returns the code in two groups of four for reading aloud:
// K7QM-3XRT.
func (c Code) String() string {
	if len(c) != codeLen {
		return string(c)
	}
	return string(c[:4]) + "-" + string(c[4:])
}

// quote quotes s for an error message, shortened so that a hostile input
// cannot make the message large.
func quote(s string) string {
	const limit = 32
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
