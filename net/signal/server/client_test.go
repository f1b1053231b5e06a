package server

import (
	"context"
	"errors"
	"testing"

	"github.com/duetapp/duet/net/signal"
)

// TestConnClose: a client's Recv given up on leaves its connection
// usable, and Close is idempotent and ends Send and Recv.
func TestConnClose(t *testing.T) {
	_, url := newTestServer(t, Config{})
	c, err := signal.Dial(testCtx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	// A Recv given up on leaves the connection usable.
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := c.Create(testCtx(t)); err != nil {
		t.Fatalf("Create after a cancelled Recv: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Recv(testCtx(t)); !errors.Is(err, signal.ErrClosed) {
		t.Errorf("Recv after Close = %v, want signal.ErrClosed", err)
	}
	if err := c.Send(testCtx(t), signal.Message{Type: signal.TypeCreate}); !errors.Is(err, signal.ErrClosed) {
		t.Errorf("Send after Close = %v, want signal.ErrClosed", err)
	}
}
