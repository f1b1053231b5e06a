package server

import (
	"testing"

	"github.com/duetapp/duet/net/signal"
)

// TestRelayHangup: a side that could not take the offer (or the answer)
// tells the other at once, through the server, and why.
func TestRelayHangup(t *testing.T) {
	_, url := newTestServer(t, Config{})
	host, guest, _ := pair(t, url)
	for _, st := range []struct{ from, to *signal.Conn }{{guest, host}, {host, guest}} {
		m := signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "no codec in common")}
		if err := st.from.Send(testCtx(t), m); err != nil {
			t.Fatal(err)
		}
		got := recv(t, st.to, signal.TypeHangup)
		m.V = signal.Version
		if !equalMessages(got, m) {
			t.Errorf("relayed %+v, want %+v", got, m)
		}
	}
}
