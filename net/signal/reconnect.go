package signal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/coder/websocket"
)

// Backoff is how Reconnect waits between attempts: a random time up to a
// delay that starts at Min and doubles up to Max ("full jitter", so that
// the singers of a restarted server do not all come back at once).
type Backoff struct {
	Min, Max time.Duration // zero: 250 ms and 10 s
}

// Reconnect dials the rendezvous server at serverURL and resumes seat,
// trying again with backoff until it succeeds, ctx is done, or the server
// says the seat is gone (ErrRoomNotFound: the room expired or the partner
// gave the seat up, so a new room is needed). It returns the new
// connection and whether the other seat of the room is taken.
//
// Use it when Recv on a Conn fails with an error for which Resumable
// holds: the duet's media, which is peer to peer, goes on meanwhile, and
// the new Conn carries on with signaling where the old one stopped (a
// message sent to the partner while either socket was away is answered
// with ErrPeerAway, not delivered: send it again).
func Reconnect(ctx context.Context, serverURL string, seat Seat, b Backoff, opts ...DialOption) (*Conn, bool, error) {
	if b.Min <= 0 {
		b.Min = 250 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = max(10*time.Second, b.Min)
	}
	delay := b.Min
	for {
		c, partner, err := resumeOnce(ctx, serverURL, seat, opts)
		if err == nil {
			return c, partner, nil
		}
		var e *Error
		if errors.As(err, &e) && !errors.Is(e, ErrRateLimited) && !errors.Is(e, ErrInternal) {
			return nil, false, fmt.Errorf("signal: resume room %s: %w", seat.Room, err)
		}
		t := time.NewTimer(rand.N(delay) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, fmt.Errorf("signal: resume room %s: %w (last: %w)", seat.Room, ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, b.Max)
	}
}

// resumeTimeout bounds one attempt of Reconnect.
const resumeTimeout = 10 * time.Second

func resumeOnce(ctx context.Context, serverURL string, seat Seat, opts []DialOption) (*Conn, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	c, err := Dial(ctx, serverURL, opts...)
	if err != nil {
		return nil, false, err
	}
	partner, err := c.Resume(ctx, seat)
	if err != nil {
		c.Close()
		return nil, false, err
	}
	return c, partner, nil
}

// Resumable reports whether err, from Recv, means the socket was lost
// rather than ended on purpose, so that Reconnect is worth trying: the
// network failed, or the server shut down (1001, going away). It is false
// after Close, when the seat was resumed on another connection
// (StatusReplaced) and when the server hung up on a misbehaving client.
func Resumable(err error) bool {
	var e *Error
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &e) {
		return false
	}
	switch websocket.CloseStatus(err) {
	case -1, websocket.StatusGoingAway, websocket.StatusAbnormalClosure, websocket.StatusInternalError:
		return true
	}
	return false
}
