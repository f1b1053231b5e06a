package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store/redisstore"
	"github.com/duetapp/duet/net/signal/store/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// newRedisServer serves a Server on a Redis store under prefix (see
// newTestServer).
func newRedisServer(t *testing.T, prefix string, cfg Config) (*Server, string) {
	t.Helper()
	cfg.Store = redisstore.New(redis.NewClient(&redis.Options{Addr: redistest.Addr(t)}), prefix)
	return newTestServer(t, cfg)
}

// TestRedisTwoInstances: a host on one instance and a guest on another
// meet and exchange everything, through Redis.
func TestRedisTwoInstances(t *testing.T) {
	prefix := redistest.Prefix(t)
	a, urlA := newRedisServer(t, prefix, Config{})
	b, urlB := newRedisServer(t, prefix, Config{})
	host, guest := dial(t, urlA), dial(t, urlB)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatalf("Join on the other instance: %v", err)
	}
	recv(t, host, signal.TypePeerJoined)
	if a.Rooms() != 1 || b.Rooms() != 1 {
		t.Errorf("Rooms() = %d and %d, want 1 on both", a.Rooms(), b.Rooms())
	}
	if err := dial(t, urlA).Join(testCtx(t), code); !errors.Is(err, signal.ErrRoomFull) {
		t.Errorf("third singer: Join = %v, want ErrRoomFull", err)
	}
	exchange(t, host, guest)
	cand := signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", SDPMid: new("0")}}
	if err := guest.Send(testCtx(t), cand); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, host, signal.TypeCandidate); m.Candidate.Candidate != cand.Candidate.Candidate {
		t.Errorf("candidate %+v", m.Candidate)
	}
	if err := host.Send(testCtx(t), signal.Message{Type: signal.TypeBye}); err != nil {
		t.Fatal(err)
	}
	recv(t, guest, signal.TypePeerLeft)
	// The count is at most two seconds old.
	waitFor(t, "no room to be counted after the host left", func() bool { return b.Rooms() == 0 })
}

// TestRedisAbandonedRoom: a room with no guest lives in Redis only while
// its host is seen: its key expires Abandon after the host's last sign,
// and a join finds it expired once the host has not been seen that long.
func TestRedisAbandonedRoom(t *testing.T) {
	prefix := redistest.Prefix(t)
	clock := newFakeClock()
	s, url := newRedisServer(t, prefix, Config{Now: clock.Now, ResumeGrace: time.Minute, RoomTTL: time.Hour})
	host := dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr(t)})
	defer rdb.Close()
	abandon := s.grace + 15*time.Second // the server marks seats seen every 15 s
	ttl, err := rdb.PTTL(testCtx(t), prefix+"room:"+string(code)).Result()
	if err != nil || ttl <= 0 || ttl > abandon {
		t.Errorf("a lone host's room lives %v (%v) in Redis, want at most %v", ttl, err, abandon)
	}
	drop(t, host)
	waitFor(t, "the server to see the drop", func() bool { return s.Sockets() == 0 })
	clock.Advance(abandon + time.Second)
	if err := dial(t, url).Join(testCtx(t), code); !errors.Is(err, signal.ErrRoomExpired) {
		t.Errorf("join of an abandoned room: %v, want ErrRoomExpired", err)
	}
}

// TestRedisResumeAfterRestart: the host's instance restarts; the host
// resumes on the new one and signaling with the guest, on the other
// instance, goes on.
func TestRedisResumeAfterRestart(t *testing.T) {
	prefix := redistest.Prefix(t)
	a, urlA := newRedisServer(t, prefix, Config{})
	_, urlB := newRedisServer(t, prefix, Config{})
	host, guest := dial(t, urlA), dial(t, urlB)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerJoined)
	seat, _ := host.Seat()

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err = host.Recv(testCtx(t))
	if websocket.CloseStatus(err) != websocket.StatusGoingAway || !signal.Resumable(err) {
		t.Fatalf("host after shutdown: %v, want a resumable going away", err)
	}
	// The restarted instance (here on a new port) knows the room from Redis.
	_, urlA2 := newRedisServer(t, prefix, Config{})
	back, partner := reconnect(t, urlA2, seat)
	if !partner {
		t.Error("resumed without the guest")
	}
	exchange(t, back, guest)
	exchange(t, guest, back)
}

// TestRedisExpiryAndGrace: rules that span instances: a join of an expired
// room tells its host on the other instance, and a guest whose socket
// dropped is given up after the grace by the host's instance.
func TestRedisExpiryAndGrace(t *testing.T) {
	prefix := redistest.Prefix(t)
	clock := newFakeClock()
	cfg := Config{Now: clock.Now, RoomTTL: time.Hour, ResumeGrace: time.Minute}
	a, urlA := newRedisServer(t, prefix, cfg)
	b, urlB := newRedisServer(t, prefix, cfg)

	host, guest := dial(t, urlA), dial(t, urlB)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerJoined)
	drop(t, guest)
	waitFor(t, "B to see the drop", func() bool { return b.Sockets() == 0 })
	clock.Advance(2 * time.Minute)
	a.expireIdle()
	recv(t, host, signal.TypePeerLeft)
	if err := dial(t, urlB).Join(testCtx(t), code); err != nil {
		t.Fatalf("a new guest after the grace: %v", err)
	}
	recv(t, host, signal.TypePeerJoined)

	lonely := dial(t, urlA)
	code2, err := lonely.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := dial(t, urlB).Join(testCtx(t), code2); !errors.Is(err, signal.ErrRoomExpired) {
		t.Errorf("Join of an expired room = %v, want ErrRoomExpired", err)
	}
	recvError(t, lonely, signal.ErrRoomExpired)
	recvClosed(t, lonely, websocket.StatusNormalClosure)
}

// TestRedisHealth: /healthz fails when Redis does.
func TestRedisHealth(t *testing.T) {
	redistest.Addr(t)
	s := New(Config{Store: redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}), "x:")})
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := s.store.Health(ctx); err == nil {
		t.Error("Health of an unreachable Redis = nil")
	}
}

// TestRedisICE: across instances, the host gets its ICE servers from its
// own instance with peer-joined, and a guest's dropped on another instance
// are released there once the host's instance has given its seat up.
func TestRedisICE(t *testing.T) {
	prefix := redistest.Prefix(t)
	clock := newFakeClock()
	var la, lb fakeRelay
	cfg := Config{Now: clock.Now, RoomTTL: time.Hour, ResumeGrace: time.Minute}
	cfgA, cfgB := cfg, cfg
	cfgA.ICEServers, cfgA.ReleaseICE = la.servers, la.release
	cfgB.ICEServers, cfgB.ReleaseICE = lb.servers, lb.release
	a, urlA := newRedisServer(t, prefix, cfgA)
	b, urlB := newRedisServer(t, prefix, cfgB)

	host, guest := dial(t, urlA), dial(t, urlB)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerJoined)
	if n, _ := la.counts(); n != 1 || user(t, host) != "u0" {
		t.Fatalf("host's ICE servers %+v, %d issued by its instance", host.ICEServers(), n)
	}
	guestUser := user(t, guest)
	drop(t, guest)
	waitFor(t, "B to see the drop", func() bool { return b.Sockets() == 0 })
	b.expireIdle()
	if lb.isReleased(guestUser) {
		t.Fatal("released during the grace")
	}
	clock.Advance(2 * time.Minute)
	a.expireIdle()
	recv(t, host, signal.TypePeerLeft)
	b.expireIdle()
	if !lb.isReleased(guestUser) {
		t.Error("the dropped guest's ICE servers were not released after the grace")
	}
}
