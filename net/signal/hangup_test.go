package signal

import (
	"errors"
	"testing"
)

// TestHangupNeedsError: a hangup says why.
func TestHangupNeedsError(t *testing.T) {
	if _, err := Decode([]byte(`{"v":1,"type":"hangup"}`)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("a hangup without error: %v, want ErrBadMessage", err)
	}
	m, err := Decode([]byte(`{"v":1,"type":"hangup","error":{"code":"negotiation-failed","message":"no codec in common"}}`))
	if err != nil || !errors.Is(m.Error, ErrNegotiation) || m.Error.Message != "no codec in common" {
		t.Errorf("Decode = %+v, %v", m, err)
	}
}
