//go:build !linux

package peer

import (
	"errors"
	"net"

	"github.com/duetapp/duet/audio/rt"
)

// realtimeSocket is Linux's (rtsocket_linux.go); elsewhere pion reads the
// socket itself.
func realtimeSocket(*net.UDPConn, *rt.Raiser, func([]byte)) (net.PacketConn, error) {
	return nil, errors.ErrUnsupported
}
