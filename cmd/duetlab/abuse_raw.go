package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// rawWS is the attacker's WebSocket client: a handshake written by hand and
// frames built in place, with no goroutine and no buffers beyond one
// bufio.Reader, so that the lab can hold tens of thousands of sockets and
// open a hundred thousand while the server, not the client, sets the pace.
// It is not safe for concurrent use.
type rawWS struct {
	conn *net.TCPConn
	r    *bufio.Reader
}

// rawHandshake is the upgrade request; the key is any 16 bytes in base64.
const rawHandshake = "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: ZHVldCBsYWIgYWJ1c2UhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// errRefused is a handshake the server answered with another status than
// 101 Switching Protocols.
var errRefused = errors.New("upgrade refused")

// dialRaw opens a WebSocket to the server at addr (host:port) from the
// loopback address from, every step bounded by timeout. A refused upgrade
// returns the HTTP status with an error wrapping errRefused.
func dialRaw(ctx context.Context, addr string, from netip.Addr, timeout time.Duration) (*rawWS, int, error) {
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	conn := c.(*net.TCPConn)
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, rawHandshake, addr); err != nil {
		conn.Close()
		return nil, 0, err
	}
	r := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, resp.StatusCode, fmt.Errorf("%w: %s", errRefused, resp.Status)
	}
	return &rawWS{conn: conn, r: r}, resp.StatusCode, nil
}

// WebSocket opcodes (RFC 6455, 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
)

// wsFrame returns one final frame of op with payload, masked with key as
// a client must (RFC 6455, 5.3).
func wsFrame(op byte, payload []byte, key [4]byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// maxRawFrame bounds what readFrame accepts: the server's messages are
// small, and a lab must not allocate what a broken length says.
const maxRawFrame = 1 << 20

// readFrame reads one frame (unmasking it if masked) and returns its
// opcode and payload. Fragmented messages are not joined: the server sends
// each message whole.
func readFrame(r io.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > maxRawFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// rawKey masks the attacker's frames; the server only unmasks them.
var rawKey = [4]byte{0x5a, 0x17, 0xc3, 0x88}

// send writes frames, already built, in one write.
func (w *rawWS) send(frames []byte, timeout time.Duration) error {
	w.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := w.conn.Write(frames)
	return err
}

// recvCode reads frames until a text message and returns the error code it
// carries ("" for a message that is not an error, and its type in typ).
// Pings are skipped unanswered; a close frame is an error.
func (w *rawWS) recvCode(timeout time.Duration) (typ, code string, err error) {
	w.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		op, p, err := readFrame(w.r)
		if err != nil {
			return "", "", err
		}
		switch op {
		case opText:
			var m struct {
				Type  string `json:"type"`
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(p, &m); err != nil {
				return "", "", fmt.Errorf("reply %q: %w", p, err)
			}
			if m.Error != nil {
				return m.Type, m.Error.Code, nil
			}
			return m.Type, "", nil
		case opClose:
			return "", "", fmt.Errorf("closed by the server: %q", p)
		}
	}
}

// abort drops the socket without a close handshake, with a reset (linger
// 0), as a crashed client or an attacker would, and leaves no TIME_WAIT
// on the lab's side.
func (w *rawWS) abort() {
	w.conn.SetLinger(0)
	w.conn.Close()
}

// loopbackAddr returns the i-th address of block b of the loopback network
// 127.0.0.0/8, which Linux routes to this machine whole: each attack and
// the honest users draw from blocks of their own, so that to the server
// they are distinct addresses. A block has 65,024 addresses (x.y.1–254);
// an index past that runs on into block b+1.
func loopbackAddr(b, i int) netip.Addr {
	const perBlock = 256 * 254
	n := b*perBlock + i
	return netip.AddrFrom4([4]byte{127, byte(n / perBlock), byte(n % perBlock / 254), byte(n%254 + 1)})
}
