package server

import (
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duetapp/duet/net/signal"
)

// fastBackoff keeps Reconnect's waits short in tests.
var fastBackoff = signal.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// exchange checks that an offer from a reaches b and an answer from b
// reaches a.
func exchange(t *testing.T, a, b *signal.Conn) {
	t.Helper()
	offer := signal.Message{Type: signal.TypeOffer, SDP: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
	if err := a.Send(testCtx(t), offer); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, b, signal.TypeOffer); m.SDP != offer.SDP {
		t.Fatalf("offer %q, want %q", m.SDP, offer.SDP)
	}
	if err := b.Send(testCtx(t), signal.Message{Type: signal.TypeAnswer, SDP: "v=0\r\nanswer"}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, a, signal.TypeAnswer); m.SDP != "v=0\r\nanswer" {
		t.Fatalf("answer %q", m.SDP)
	}
}

// reconnect resumes seat on a new connection, closed when the test ends.
func reconnect(t *testing.T, url string, seat signal.Seat) (*signal.Conn, bool) {
	t.Helper()
	c, partner, err := signal.Reconnect(testCtx(t), url, seat, fastBackoff)
	if err != nil {
		t.Fatalf("Reconnect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, partner
}

// TestResumeAfterDrop: a host's and then a guest's socket drops; each
// comes back with its token while the partner waits, and signaling goes on.
func TestResumeAfterDrop(t *testing.T) {
	s, url := newTestServer(t, Config{})
	host, guest, code := pair(t, url)
	parent := t
	for _, role := range []signal.Role{signal.Host, signal.Guest} {
		t.Run(role.String(), func(t *testing.T) {
			leaving, staying := host, guest
			if role == signal.Guest {
				leaving, staying = guest, host
			}
			seat, ok := leaving.Seat()
			if !ok || seat.Room != code || seat.Role != role || len(seat.Token) < 16 {
				t.Fatalf("Seat() = %+v, %v", seat, ok)
			}
			drop(t, leaving)
			if _, err := leaving.Recv(testCtx(t)); !signal.Resumable(err) {
				t.Errorf("Recv after a drop = %v, want a resumable error", err)
			}
			waitFor(t, "the server to see the drop", func() bool { return s.Sockets() == 1 })
			if err := staying.Send(testCtx(t), signal.Message{Type: signal.TypeOffer, SDP: "v=0"}); err != nil {
				t.Fatal(err)
			}
			recvError(t, staying, signal.ErrPeerAway)

			back, partner := reconnect(parent, url, seat)
			if !partner {
				t.Error("resumed without a partner")
			}
			if got, _ := back.Seat(); got != seat {
				t.Errorf("Seat() after resume = %+v, want %+v", got, seat)
			}
			exchange(t, back, staying)
			if role == signal.Host {
				host = back
			} else {
				guest = back
			}
		})
	}
	if got := s.Rooms(); got != 1 {
		t.Errorf("Rooms() = %d, want 1", got)
	}
}

// TestResumeRejected: a wrong token, a seat given up with bye, and a room
// of a restarted in-memory server cannot be resumed.
func TestResumeRejected(t *testing.T) {
	_, url := newTestServer(t, Config{})
	host, guest, code := pair(t, url)
	stranger := dial(t, url)
	if _, err := stranger.Resume(testCtx(t), signal.Seat{Room: code, Token: "AAAAAAAAAAAAAAAAAAAAAAAAAA"}); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Errorf("Resume with a wrong token = %v, want ErrRoomNotFound", err)
	}
	seat, _ := guest.Seat()
	if err := guest.Close(); err != nil { // says bye
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerLeft)
	if _, _, err := signal.Reconnect(testCtx(t), url, seat, fastBackoff); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Errorf("Reconnect after bye = %v, want ErrRoomNotFound", err)
	}
}

// TestResumeMemoryRestart: a restarted server in memory knows no rooms,
// so a resume says the seat is gone (with Redis it is not: see
// TestRedisResumeAfterRestart).
func TestResumeMemoryRestart(t *testing.T) {
	s, url := newTestServer(t, Config{})
	host := dial(t, url)
	if _, err := host.Create(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	seat, _ := host.Seat()
	s.Close()
	_, url2 := newTestServer(t, Config{})
	if _, _, err := signal.Reconnect(testCtx(t), url2, seat, fastBackoff); !errors.Is(err, signal.ErrRoomNotFound) {
		t.Errorf("Reconnect to a restarted server = %v, want ErrRoomNotFound", err)
	}
}

// TestResumeReplaces: resuming a seat whose old socket is still open
// closes the old one with StatusReplaced, which is not Resumable.
func TestResumeReplaces(t *testing.T) {
	_, url := newTestServer(t, Config{})
	host, guest, _ := pair(t, url)
	seat, _ := guest.Seat()
	back, _ := reconnect(t, url, seat)
	_, err := guest.Recv(testCtx(t))
	if got := websocket.CloseStatus(err); got != signal.StatusReplaced {
		t.Fatalf("old socket: Recv = %v, want close status %d", err, signal.StatusReplaced)
	}
	if signal.Resumable(err) {
		t.Error("Resumable(replaced) = true")
	}
	exchange(t, host, back)
}

// TestResumeRestart: when the server shuts down, clients see 1001, which
// is Resumable.
func TestResumeShutdown(t *testing.T) {
	s, url := newTestServer(t, Config{})
	host, _, _ := pair(t, url)
	s.Close()
	_, err := host.Recv(testCtx(t))
	if !signal.Resumable(err) {
		t.Errorf("Recv after shutdown = %v, want a resumable error", err)
	}
}
