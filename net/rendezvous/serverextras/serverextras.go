// Package serverextras gives the rendezvous service (net/rendezvous) what
// only a server binary links: rooms shared through Redis (redisstore) and
// Prometheus figures (prommetrics). cmd/duet-server uses it; the desktop
// app's "duet serve" does not, so that it links neither.
package serverextras

import (
	"context"

	"github.com/duetapp/duet/net/rendezvous"
	"github.com/duetapp/duet/net/signal/server/prommetrics"
	"github.com/duetapp/duet/net/signal/store"
	"github.com/duetapp/duet/net/signal/store/redisstore"
)

// New returns the extras of one service: a Redis opener for -redis and
// fresh Prometheus counters for /metrics.
func New() rendezvous.Extras {
	return rendezvous.Extras{OpenRedis: openRedis, Metrics: prommetrics.New()}
}

func openRedis(ctx context.Context, addr, prefix string) (store.Store, error) {
	s, err := redisstore.Open(ctx, addr, prefix)
	if err != nil {
		return nil, err // not a nil *Store in a non-nil Store
	}
	return s, nil
}
