package store_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/store"
	"github.com/duetapp/duet/net/signal/store/redisstore"
	"github.com/duetapp/duet/net/signal/store/redisstore/redistest"
)

// TestTickAfterAway: a seat whose socket drops just after the server
// listed the seats it holds for Tick (Away at the tick's time) stays
// away, so its room can make room; one ticked after it dropped is held
// again (it resumed on this server), and its room is kept.
func TestTickAfterAway(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"memory": func(*testing.T) store.Store { return store.NewMemory() },
		"redis": func(t *testing.T) store.Store {
			return redisstore.New(redis.NewClient(&redis.Options{Addr: redistest.Addr(t)}), redistest.Prefix(t))
		},
	}
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) {
			st := stores[name](t)
			defer st.Close()
			st.Bind(store.Config{TTL: time.Hour, Grace: time.Minute, Abandon: 75 * time.Second, Rooms: 1, RoomsPerAddress: 3},
				func(signal.Role, signal.Code, []byte) bool { return false })
			ctx := t.Context()
			t0 := time.Date(2025, 6, 1, 20, 0, 0, 0, time.UTC)
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			create := func(s int, owner string) (signal.Seat, bool, error) {
				t.Helper()
				code, err := signal.NewCode(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				seat := signal.Seat{Room: code, Role: signal.Host, Token: rand.Text()}
				ok, evicted, err := st.Create(ctx, code, seat.Token, owner, at(s))
				if err == nil && !ok {
					t.Fatal("a random code was taken")
				}
				return seat, evicted, err
			}
			a, _, err := create(0, "192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Away(ctx, a, at(1)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Tick(ctx, []signal.Seat{a}, at(1)); err != nil {
				t.Fatal(err)
			}
			b, evicted, err := create(2, "192.0.2.2")
			if err != nil || !evicted {
				t.Fatalf("a create in place of a room whose host dropped as it was ticked: evicted %v, %v", evicted, err)
			}
			if err := st.Away(ctx, b, at(3)); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Tick(ctx, []signal.Seat{b}, at(4)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := create(5, "192.0.2.3"); !errors.Is(err, signal.ErrServerFull) {
				t.Errorf("a create when the one room's host is back: %v, want ErrServerFull", err)
			}
		})
	}
}
