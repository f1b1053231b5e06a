package red

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	older := []Block{
		{PT: 111, TS: 4294967040, Payload: []byte{1, 2, 3}}, // across wraparound
		{PT: 111, TS: 0, Payload: nil},                      // skipped
		{PT: 111, TS: 0, Payload: bytes.Repeat([]byte{4}, 1023)},
	}
	pkt, err := Encode(nil, 111, 240, []byte{9, 9}, older)
	if err != nil {
		t.Fatal(err)
	}
	// Two 4-byte headers, one 1-byte, the data.
	if want := 4 + 4 + 1 + 3 + 1023 + 2; len(pkt) != want {
		t.Fatalf("%d bytes, want %d", len(pkt), want)
	}
	// 496 ticks back (across wraparound), 3 bytes.
	if want := []byte{0x80 | 111, 496 >> 6, (496 & 63) << 2, 3}; !bytes.Equal(pkt[:4], want) {
		t.Errorf("first header % x, want % x", pkt[:4], want)
	}
	got, err := Decode(nil, pkt, 240)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{older[0], older[2], {PT: 111, TS: 240, Payload: []byte{9, 9}}}
	if len(got) != len(want) {
		t.Fatalf("%d blocks, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].PT != want[i].PT || got[i].TS != want[i].TS || !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Errorf("block %d: %d %d % .8x, want %d %d % .8x", i, got[i].PT, got[i].TS, got[i].Payload, want[i].PT, want[i].TS, want[i].Payload)
		}
	}
	// Nothing redundant: one header byte.
	if pkt, _ := Encode(nil, 111, 5, []byte{7}, nil); !bytes.Equal(pkt, []byte{111, 7}) {
		t.Errorf("primary only: % x", pkt)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		pt      uint8
		older   []Block
		wantErr error
	}{
		{"pt", 128, nil, ErrBlock},
		{"block pt", 111, []Block{{PT: 200, TS: 0, Payload: []byte{1}}}, ErrBlock},
		{"offset too big", 111, []Block{{TS: 100000 - 16384, Payload: []byte{1}}}, ErrBlock},
		{"in the future", 111, []Block{{TS: 100240, Payload: []byte{1}}}, ErrBlock},
		{"same timestamp", 111, []Block{{TS: 100000, Payload: []byte{1}}}, ErrBlock},
		{"too long", 111, []Block{{TS: 0 + 99000, Payload: make([]byte, 1024)}}, ErrBlock},
		{"too many", 111, make17(), ErrTooMany},
	} {
		if _, err := Encode(nil, tc.pt, 100000, []byte{1}, tc.older); !errors.Is(err, tc.wantErr) {
			t.Errorf("Encode %s: %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short header", []byte{0x80 | 111, 1}, ErrTruncated},
		{"no primary header", []byte{0x80 | 111, 0, 4, 1}, ErrTruncated},
		{"data missing", []byte{0x80 | 111, 0, 4, 5, 111, 1, 2}, ErrTruncated},
		{"too many", bytes.Repeat([]byte{0x80, 0, 4, 0}, 17), ErrTooMany},
	} {
		if _, err := Decode(nil, tc.in, 1000); !errors.Is(err, tc.want) {
			t.Errorf("Decode %s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func make17() []Block {
	var bs []Block
	for i := range 17 {
		bs = append(bs, Block{PT: 111, TS: uint32(100000 - 240*(17-i)), Payload: []byte{byte(i)}})
	}
	return bs
}

// FuzzDecode: Decode never panics, and what it accepts encodes back to the
// same blocks.
func FuzzDecode(f *testing.F) {
	pkt, _ := Encode(nil, 111, 960, []byte{1, 2}, []Block{{PT: 111, TS: 480, Payload: []byte{3}}, {PT: 111, TS: 720, Payload: []byte{4, 5}}})
	f.Add(pkt, uint32(960))
	f.Add([]byte{111}, uint32(0))
	f.Fuzz(func(t *testing.T, in []byte, ts uint32) {
		blocks, err := Decode(nil, in, ts)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrTooMany) {
				t.Fatalf("error %v wraps neither ErrTruncated nor ErrTooMany", err)
			}
			return
		}
		prim := blocks[len(blocks)-1]
		var older []Block
		for _, b := range blocks[:len(blocks)-1] {
			if len(b.Payload) > 0 && b.TS != ts {
				older = append(older, b)
			}
		}
		out, err := Encode(nil, prim.PT, ts, prim.Payload, older)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", blocks, err)
		}
		back, err := Decode(nil, out, ts)
		if err != nil || len(back) != len(older)+1 {
			t.Fatalf("decoding the re-encoding: %v, %d blocks", err, len(back))
		}
		for i, b := range older {
			if back[i].PT != b.PT || back[i].TS != b.TS || !bytes.Equal(back[i].Payload, b.Payload) {
				t.Fatalf("block %d changed", i)
			}
		}
	})
}
