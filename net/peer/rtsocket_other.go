//go:build !linux

package peer

import (
	"errors"
	"net"

	"github.com/duetapp/duet/audio/rt"
)

// realtimeSockets is Linux's (rtsocket_linux.go); elsewhere pion reads
// the sockets itself.
func realtimeSockets([]*net.UDPConn, *rt.Raiser, func([]byte)) ([]net.PacketConn, error) {
	return nil, errors.ErrUnsupported
}
