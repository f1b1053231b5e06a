package signal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func TestParseCode(t *testing.T) {
	tests := []struct {
		in      string
		want    Code
		wantErr string // part of the error, "" for none
	}{
		{in: "K7QM-3XRT", want: "K7QM3XRT"},
		{in: "k7qm-3xrt", want: "K7QM3XRT"},
		{in: "K7QM3XRT", want: "K7QM3XRT"},
		{in: "k7qm 3xrt", want: "K7QM3XRT"},
		{in: " K7 QM - 3X RT ", want: "K7QM3XRT"},
		{in: "IL0O-iloo", want: "11001100"},
		{in: "0000-0000", want: "00000000"},
		{in: "ZZZZ-ZZZZ", want: "ZZZZZZZZ"},
		{in: "K7QM-3XR", wantErr: `"K7QM-3XR" is not a room code: it has 7 symbols, a room code has 8`},
		{in: "K7QM-3XRTA", wantErr: "it has 9 symbols"},
		{in: "", wantErr: `"" is not a room code: it has 0 symbols`},
		{in: "K7QM-3XRU", wantErr: `"K7QM-3XRU" is not a room code: 'U' is not one of its symbols`},
		{in: "K7QM_3XRT", wantErr: `'_' is not one of its symbols`},
		{in: "K7QM-3XRÉ", wantErr: `'É' is not one of its symbols`},
		{in: "K7QM\t3XRT", wantErr: `'\t' is not one of its symbols`},
		{in: strings.Repeat("A", 1000), wantErr: `"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"… is not a room code`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCode(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseCode(%q) = %q, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseCode(%q) error %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidCode) {
					t.Errorf("ParseCode(%q) error %v is not ErrInvalidCode", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseCode(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNewCode(t *testing.T) {
	tests := []struct {
		in   []byte
		want Code
	}{
		{[]byte{0, 0, 0, 0, 0}, "00000000"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff}, "ZZZZZZZZ"},
		// 0x0123456789 = 00000 00100 10001 10100 01010 11001 11100 01001
		{[]byte{0x01, 0x23, 0x45, 0x67, 0x89}, "04HMASW9"},
		{[]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab}, "04HMASW9"}, // reads only 5 bytes
	}
	for _, tt := range tests {
		got, err := NewCode(bytes.NewReader(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("NewCode(% x) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := NewCode(bytes.NewReader([]byte{1, 2, 3, 4})); err == nil {
		t.Error("NewCode with 4 bytes of randomness succeeded")
	}
}

func TestCodeString(t *testing.T) {
	if got, want := Code("K7QM3XRT").String(), "K7QM-3XRT"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := Code("").String(), ""; got != want {
		t.Errorf("zero String() = %q, want %q", got, want)
	}
}

func TestNewCodeRoundTrip(t *testing.T) {
	seen := make(map[Code]bool)
	for range 1000 {
		c, err := NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		seen[c] = true
		for _, s := range []string{c.String(), string(c), strings.ToLower(c.String())} {
			if got, err := ParseCode(s); err != nil || got != c {
				t.Fatalf("ParseCode(%q) = %q, %v, want %q", s, got, err, c)
			}
		}
	}
	if len(seen) < 999 { // 40 bits: a collision among 1000 has odds of 5e-7
		t.Errorf("only %d distinct codes in 1000", len(seen))
	}
}
