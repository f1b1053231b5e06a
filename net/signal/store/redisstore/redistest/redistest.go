// Package redistest gives tests the Redis they run against: the one that
// DUET_REDIS names (.ci/run starts one on 127.0.0.1:6390 and sets it), or
// a skip when there is none, and a key prefix of the test's own.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Env names the Redis of the tests, host:port.
const Env = "DUET_REDIS"

// Addr returns the Redis of the tests, or skips t when Env is not set.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(Env)
	if addr == "" {
		t.Skip(Env + " is not set: no Redis to test the shared store against (CI starts one; " +
			"locally: redis-server --port 6390 & " + Env + "=127.0.0.1:6390)")
	}
	return addr
}

// Prefix returns a key prefix of t's own in the Redis of the tests (see
// Addr), whose keys are deleted when t ends.
func Prefix(t testing.TB) string {
	t.Helper()
	addr := Addr(t)
	prefix := "duettest:" + rand.Text()[:8] + ":"
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// Client returns a client of the Redis of the tests, closed when t ends.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr(t)})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}
