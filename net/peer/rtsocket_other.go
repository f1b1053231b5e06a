//go:build !linux

package peer

import (
	"errors"
	"log/slog"
	"net"

	"github.com/duetapp/duet/audio/rt"
)

// realtimeSockets is Linux's (rtsocket_linux.go); elsewhere pion reads
// the sockets itself.
func realtimeSockets([]*net.UDPConn, *rt.Raiser, func([]byte), *slog.Logger) ([]net.PacketConn, error) {
	return nil, errors.ErrUnsupported
}
