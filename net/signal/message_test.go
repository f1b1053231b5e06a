package signal

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Message
		wantErr *Error // nil for success
		errText string // part of the error
	}{
		{name: "create", in: `{"v":1,"type":"create"}`, want: Message{V: 1, Type: TypeCreate}},
		{name: "created", in: `{"v":1,"type":"created","room":"K7QM-3XRT"}`, want: Message{V: 1, Type: TypeCreated, Room: "K7QM-3XRT"}},
		{name: "join", in: `{"v":1,"type":"join","room":"k7qm 3xrt"}`, want: Message{V: 1, Type: TypeJoin, Room: "k7qm 3xrt"}},
		{name: "joined", in: `{"v":1,"type":"joined","room":"K7QM-3XRT"}`, want: Message{V: 1, Type: TypeJoined, Room: "K7QM-3XRT"}},
		{name: "peer-joined", in: `{"v":1,"type":"peer-joined"}`, want: Message{V: 1, Type: TypePeerJoined}},
		{name: "offer", in: `{"v":1,"type":"offer","sdp":"v=0\r\n"}`, want: Message{V: 1, Type: TypeOffer, SDP: "v=0\r\n"}},
		{name: "answer", in: `{"v":1,"type":"answer","sdp":"v=0\r\n"}`, want: Message{V: 1, Type: TypeAnswer, SDP: "v=0\r\n"}},
		{
			name: "candidate",
			in:   `{"v":1,"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}`,
			want: Message{V: 1, Type: TypeCandidate, Candidate: &Candidate{
				Candidate:        "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
				SDPMid:           ptr("0"),
				SDPMLineIndex:    ptr(uint16(0)),
				UsernameFragment: ptr("abcd"),
			}},
		},
		{name: "end of candidates", in: `{"v":1,"type":"candidate","candidate":{"candidate":""}}`, want: Message{V: 1, Type: TypeCandidate, Candidate: &Candidate{}}},
		{name: "bye", in: `{"v":1,"type":"bye"}`, want: Message{V: 1, Type: TypeBye}},
		{name: "peer-left", in: `{"v":1,"type":"peer-left"}`, want: Message{V: 1, Type: TypePeerLeft}},
		{name: "error", in: `{"v":1,"type":"error","error":{"code":"room-full","message":"full"}}`, want: Message{V: 1, Type: TypeError, Error: &Error{Code: "room-full", Message: "full"}}},
		{name: "resume", in: `{"v":1,"type":"resume","room":"K7QM-3XRT","token":"abcdefghijklmnopqrstuv"}`, want: Message{V: 1, Type: TypeResume, Room: "K7QM-3XRT", Token: "abcdefghijklmnopqrstuv"}},
		{name: "resumed", in: `{"v":1,"type":"resumed","room":"K7QM-3XRT","role":"host","partner":true}`, want: Message{V: 1, Type: TypeResumed, Room: "K7QM-3XRT", Role: RoleHost, Partner: true}},
		{name: "resume without token", in: `{"v":1,"type":"resume","room":"K7QM-3XRT"}`, wantErr: ErrBadMessage, errText: "no valid token"},
		{name: "resume with long token", in: `{"v":1,"type":"resume","room":"K7QM-3XRT","token":"` + strings.Repeat("a", 65) + `"}`, wantErr: ErrBadMessage, errText: "at most 64"},
		{name: "resumed without role", in: `{"v":1,"type":"resumed","room":"K7QM-3XRT"}`, wantErr: ErrBadMessage, errText: "no valid role"},
		{name: "unknown fields", in: `{"v":1,"type":"create","future":[1,2]}`, want: Message{V: 1, Type: TypeCreate}},

		{name: "wrong version", in: `{"v":2,"type":"create"}`, wantErr: ErrVersion, errText: "version 2 and this side version 1"},
		{name: "no version", in: `{"type":"create"}`, wantErr: ErrVersion, errText: "no protocol version"},
		{name: "unknown type", in: `{"v":1,"type":"dance"}`, wantErr: ErrBadMessage, errText: `type "dance" is unknown`},
		{name: "no type", in: `{"v":1}`, wantErr: ErrBadMessage, errText: "no type"},
		{name: "offer without sdp", in: `{"v":1,"type":"offer"}`, wantErr: ErrBadMessage, errText: "offer message has no session description"},
		{name: "answer without sdp", in: `{"v":1,"type":"answer","sdp":""}`, wantErr: ErrBadMessage, errText: "no session description"},
		{name: "candidate without candidate", in: `{"v":1,"type":"candidate"}`, wantErr: ErrBadMessage, errText: "no candidate"},
		{name: "join without room", in: `{"v":1,"type":"join"}`, wantErr: ErrBadMessage, errText: `no valid room code: "" is not one`},
		{name: "join with bad room", in: `{"v":1,"type":"join","room":"K7QM-3XRU"}`, wantErr: ErrBadMessage, errText: `"K7QM-3XRU" is not one`},
		{name: "error without code", in: `{"v":1,"type":"error","error":{"message":"x"}}`, wantErr: ErrBadMessage, errText: "no error code"},
		{name: "bad JSON", in: `{"v":1,"type":`, wantErr: ErrBadMessage, errText: "not a valid JSON object"},
		{name: "not an object", in: `[1]`, wantErr: ErrBadMessage, errText: "not a valid JSON object"},
		{name: "trailing garbage", in: `{"v":1,"type":"create"}x`, wantErr: ErrBadMessage},
		{name: "wrong field type", in: `{"v":"1","type":"create"}`, wantErr: ErrBadMessage},
		{name: "empty", in: ``, wantErr: ErrBadMessage},
		{
			name:    "oversize",
			in:      `{"v":1,"type":"offer","sdp":"` + strings.Repeat("a", MaxMessageSize) + `"}`,
			wantErr: ErrTooLarge, errText: "more than the limit of 65536",
		},
		{
			name: "largest",
			in:   `{"v":1,"type":"offer","sdp":"` + strings.Repeat("a", MaxMessageSize-len(`{"v":1,"type":"offer","sdp":""}`)) + `"}`,
			want: Message{V: 1, Type: TypeOffer, SDP: strings.Repeat("a", MaxMessageSize-len(`{"v":1,"type":"offer","sdp":""}`))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Decode = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode = %+v, want error %s", got, tt.wantErr.Code)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Decode error %q, want code %s", err, tt.wantErr.Code)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("Decode error %q wraps no *Error", err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("Decode error %q, want it to contain %q", err, tt.errText)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	b, err := Encode(Message{Type: TypeJoined, Room: "K7QM-3XRT"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"v":1,"type":"joined","room":"K7QM-3XRT"}`; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
	if _, err := Encode(Message{Type: TypeOffer}); !errors.Is(err, ErrBadMessage) {
		t.Errorf("Encode(offer without sdp) error %v, want ErrBadMessage", err)
	}
	if _, err := Encode(Message{Type: TypeOffer, SDP: strings.Repeat("a", MaxMessageSize)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encode(huge offer) error %v, want ErrTooLarge", err)
	}
}

func TestErrorIs(t *testing.T) {
	err := error(Errorf(ErrRoomFull, "room K7QM-3XRT is full"))
	if !errors.Is(err, ErrRoomFull) {
		t.Error("errors.Is(room-full error, ErrRoomFull) = false")
	}
	if errors.Is(err, ErrRoomNotFound) {
		t.Error("errors.Is(room-full error, ErrRoomNotFound) = true")
	}
	if got, want := err.Error(), "room K7QM-3XRT is full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (&Error{Code: "x"}).Error(), "x"; got != want {
		t.Errorf("Error() without message = %q, want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"create"}`,
		`{"v":1,"type":"join","room":"k7qm 3xrt"}`,
		`{"v":1,"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}`,
		`{"v":1,"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 ::1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"v":1,"type":"error","error":{"code":"room-full","message":"full"}}`,
		`{"v":2,"type":"create"}`,
		`{"v":1,"type":"offer","sdp":"\u003c\ud800"}`,
		`[]`,
		`{"v":1,"type":"resume","room":"K7QM-3XRT","token":"AAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"v":1,"type":"resumed","room":"K7QM-3XRT","role":"guest","partner":true}`,
		`{"v":1,"type":"created","room":"K7QM-3XRT","token":"AAAAAAAAAAAAAAAAAAAAAA"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode error %v wraps no *Error", err)
			}
			return
		}
		b, err := Encode(m)
		if errors.Is(err, ErrTooLarge) {
			return // re-encoding may grow the message: "\u0041" stays short, invalid UTF-8 does not
		}
		if err != nil {
			t.Fatalf("Encode(%+v) of a decoded message: %v", m, err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)) = %v; encoded %s", m, err, b)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}
