package signal

import (
	"errors"
	"testing"

	"github.com/coder/websocket"
)

func TestResumable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{ErrClosed, false},
		{ErrRoomFull, false},
		{websocket.CloseError{Code: websocket.StatusGoingAway}, true},
		{websocket.CloseError{Code: websocket.StatusNormalClosure}, false},
		{websocket.CloseError{Code: StatusReplaced}, false},
		{websocket.CloseError{Code: websocket.StatusPolicyViolation}, false},
		{errors.New("connection reset by peer"), true},
	} {
		if got := Resumable(tt.err); got != tt.want {
			t.Errorf("Resumable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
