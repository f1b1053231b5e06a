package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/pion/ice/v4"

	"github.com/duetapp/duet/net/pionlog"
)

// sockets opens the UDP sockets ICE offers as host candidates and returns
// them as one mux, so that Duet, not pion, reads them: on a real-time
// thread that shows each datagram to fast first (fast.on is then set), or
// through cfg.WrapConn. With Loopback that is one socket on 127.0.0.1;
// otherwise one on each address of each interface that is up (IPv4, and
// IPv6 but link-local; an address that will not take a socket, such as an
// IPv6 one still being checked, is left out and logged). A nil mux, with no error, leaves the sockets to
// pion: relay only (no host candidates), no address, or a system without
// the real-time reader. Server-reflexive candidates keep sockets of pion's
// own; media through them, or through a relay, goes pion's way.
func sockets(cfg Config, log *slog.Logger, fast *fastVoice) (ice.UDPMux, error) {
	if cfg.RelayOnly && !cfg.Loopback {
		return nil, nil
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	if !cfg.Loopback {
		var err error
		if ips, err = hostAddresses(); err != nil || len(ips) == 0 {
			return nil, err
		}
	}
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var lastErr error
	for _, ip := range ips {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			log.Debug("no host candidate on this address", "ip", ip, "err", err)
			lastErr = err
			continue
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("peer: no socket on any of %v: %w", ips, lastErr)
	}
	var under []net.PacketConn
	if cfg.WrapConn != nil && cfg.Loopback {
		under = []net.PacketConn{cfg.WrapConn(conns[0])}
	} else {
		var err error
		if under, err = realtimeSockets(conns, cfg.Realtime, fast.datagram, log); err != nil {
			closeAll()
			if errors.Is(err, errors.ErrUnsupported) {
				return nil, nil
			}
			return nil, fmt.Errorf("peer: real-time socket reader: %w", err)
		}
		fast.on = true
	}
	logger := pionlog.Factory{Log: log}.NewLogger("mux")
	muxes := make([]ice.UDPMux, len(under))
	for i, c := range under {
		muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: c, Logger: logger})
	}
	if len(muxes) == 1 {
		return muxes[0], nil
	}
	return ice.NewMultiUDPMuxDefault(muxes...), nil
}

// hostAddresses are the addresses of the interfaces that are up, but
// loopback: IPv4 (link-local too: two laptops on a cable), and IPv6 but
// link-local (which needs a zone, and pion leaves out too).
func hostAddresses() ([]net.IP, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("peer: interfaces: %w", err)
	}
	var ips []net.IP
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.IsLoopback() || n.IP.IsMulticast() || n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
				continue
			}
			ips = append(ips, n.IP)
		}
	}
	return ips, nil
}
