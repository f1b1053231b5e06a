package redisstore

import (
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store/redisstore/redistest"
)

// TestChannel: a seat's channel names its room and role, and only the
// channels of this store's prefix parse.
func TestChannel(t *testing.T) {
	s := New(nil, "duet:")
	for _, role := range []signal.Role{signal.Host, signal.Guest} {
		ch := s.channel(role, "K7QM3XRT")
		if r, code, ok := s.parseChannel(ch); !ok || r != role || code != "K7QM3XRT" {
			t.Errorf("parseChannel(%q) = %v, %q, %v", ch, r, code, ok)
		}
	}
	for _, ch := range []string{"other:seat:K7QM3XRT:h", "duet:seat:K7QM:h", "duet:seat:k7qm3xrt:h", "duet:seat:K7QM3XRT", "duet:room:K7QM3XRT"} {
		if _, _, ok := s.parseChannel(ch); ok {
			t.Errorf("parseChannel(%q) accepted", ch)
		}
	}
}

// scans returns how many SCAN commands Redis has run.
func scans(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_scan:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestRoomsCountSparingly: Rooms, which a server's /metrics and its room
// cap call often, does not SCAN Redis each time. (Issue 12: each request
// for /metrics scanned every room.)
func TestRoomsCountSparingly(t *testing.T) {
	s := New(redis.NewClient(&redis.Options{Addr: redistest.Addr(t)}), redistest.Prefix(t))
	defer s.Close()
	rdb := redistest.Client(t)
	before := scans(t, rdb)
	const calls = 20
	for range calls {
		if n, err := s.Rooms(t.Context()); n != 0 || err != nil {
			t.Fatalf("Rooms() = %d, %v; want 0", n, err)
		}
	}
	// One count, maybe two if two seconds went by, and a few of other
	// tests sharing this Redis.
	if n := scans(t, rdb) - before; n > 5 {
		t.Errorf("%d calls of Rooms ran %d SCANs", calls, n)
	}
}

// TestOpen: Open reaches a Redis by host:port or URL, and says which
// address it cannot reach.
func TestOpen(t *testing.T) {
	addr := redistest.Addr(t)
	for _, a := range []string{addr, "redis://" + addr + "/0"} {
		s, err := Open(t.Context(), a, redistest.Prefix(t))
		if err != nil {
			t.Fatalf("Open(%q): %v", a, err)
		}
		if err := s.Health(t.Context()); err != nil {
			t.Errorf("Health after Open(%q): %v", a, err)
		}
		s.Close()
	}
	if _, err := Open(t.Context(), "127.0.0.1:1", "x:"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open of a closed port: %v, want an error naming it", err)
	}
	if _, err := Open(t.Context(), "redis://[bad", "x:"); err == nil {
		t.Error("Open of a malformed URL succeeded")
	}
}
