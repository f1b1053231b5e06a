package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/signal"
)

// The connection supervisor's side of the rendezvous server: its messages
// (the offer, the answer, ICE candidates, a partner joining or leaving),
// taking the seat back when the server goes away, and the guest's joining
// the room afresh when the peer connection fails. All on run's goroutine.

// read reads signaling messages from sig for run, until sig ends or ctx
// is done.
func (c *supervisor) read(ctx context.Context, sig *signal.Conn) {
	c.readers.Go(func() {
		for {
			m, err := sig.Recv(ctx)
			if err != nil {
				select {
				case c.signalEnds <- signalEnd{sig, err}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case c.messages <- m:
			case <-ctx.Done():
				return
			}
		}
	})
}

// setSignal makes sig the rendezvous connection and reads it.
func (c *supervisor) setSignal(ctx context.Context, sig *signal.Conn) {
	c.signaling = sig
	c.update(func(st *connState) { st.signaling = sig })
	c.read(ctx, sig)
}

// signalLost handles the end of a rendezvous connection: the seat is
// taken back on a new one, or the duet goes on without the server.
func (c *supervisor) signalLost(ctx context.Context, ce signalEnd) error {
	err := ce.err
	if ctx.Err() != nil || ce.conn != c.signaling || c.rejoined != nil {
		return nil // ending, or a connection replaced or being replaced
	}
	if seat, ok := c.signaling.Seat(); ok && signal.Resumable(err) {
		// Media is peer to peer: the duet goes on while the seat at the
		// rendezvous server is taken back.
		c.log.Warn("lost the rendezvous server; reconnecting", "err", err)
		c.post(info("Lost the rendezvous server; reconnecting to it. Your duet goes on meanwhile."))
		c.resumed = make(chan resumeResult, 1)
		out := c.resumed
		c.readers.Go(func() {
			sig, partner, err := signal.Reconnect(ctx, c.cfg.Server, seat, signal.Backoff{})
			out <- resumeResult{sig, partner, err}
		})
		return nil
	}
	if c.peer == nil {
		return fmt.Errorf("rendezvous server: %w", err)
	}
	c.log.Warn("lost the rendezvous server; the duet goes on", "err", err)
	c.serverLost = err
	return nil
}

// resumeDone takes the outcome of a reconnect to the rendezvous server.
func (c *supervisor) resumeDone(ctx context.Context, r resumeResult) error {
	c.resumed = nil
	if c.rejoined != nil {
		// The guest is joining the room afresh: that connection takes
		// over; this one would hold the seat against it.
		if r.conn != nil {
			r.conn.Close()
		}
		return nil
	}
	if r.err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if c.peer == nil {
			return fmt.Errorf("rendezvous server: %w", r.err)
		}
		c.log.Warn("could not get back to the rendezvous server; the duet goes on", "err", r.err)
		c.serverLost = r.err
		return nil
	}
	old := c.signaling
	c.setSignal(ctx, r.conn)
	old.Close()
	c.post(info("Back in touch with the rendezvous server."))
	if c.host && r.partner && c.peer == nil {
		// A guest joined while we were away.
		_, err := c.handle(ctx, signal.Message{Type: signal.TypePeerJoined})
		return err
	}
	return nil
}

// rejoinDone takes the outcome of the guest's joining the room again.
func (c *supervisor) rejoinDone(ctx context.Context, r resumeResult) error {
	c.rejoined = nil
	if r.err != nil {
		return fmt.Errorf("%w, and could not get back into the room: %w", ErrConnectionLost, r.err)
	}
	c.setSignal(ctx, r.conn)
	c.log.Info("back in the room; waiting for the host's offer")
	return nil
}

// rejoin joins the room code on server again on a new signaling
// connection (guest), trying for a minute with backoff.
func rejoin(ctx context.Context, server string, code signal.Code) (*signal.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	delay := 250 * time.Millisecond
	for {
		c, err := signal.Dial(ctx, server)
		if err == nil {
			if err = c.Join(ctx, code); err == nil {
				return c, nil
			}
			c.Close()
			if errors.Is(err, signal.ErrRoomNotFound) {
				return nil, err // the host has gone
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// handle acts on one signaling message; done reports that the session is
// over.
func (c *supervisor) handle(ctx context.Context, m signal.Message) (done bool, err error) {
	switch m.Type {
	case signal.TypePeerJoined:
		if c.host {
			c.guestJoined(ctx)
		}
	case signal.TypeOffer:
		if c.host {
			return false, nil
		}
		p, err := c.newPeer(ctx)
		if err != nil {
			return false, err
		}
		answer, err := p.Answer(m.SDP)
		if err != nil {
			c.hangUp(ctx, err)
			return false, err
		}
		return false, c.signaling.Send(ctx, signal.Message{Type: signal.TypeAnswer, SDP: answer})
	case signal.TypeAnswer:
		if c.peer != nil && c.host {
			if err := c.peer.Accept(m.SDP); err != nil {
				c.hangUp(ctx, err)
				c.guestFailed(err)
			}
		}
	case signal.TypeHangup:
		err := fmt.Errorf("your partner could not set up the connection: %s", cleanText(m.Error.Message, maxPartnerText))
		if c.host {
			c.guestFailed(err)
			return false, nil
		}
		return true, err
	case signal.TypeCandidate:
		if c.peer != nil && m.Candidate != nil {
			if err := c.peer.AddCandidate(webrtc.ICECandidateInit(*m.Candidate)); err != nil {
				c.log.Warn("bad ICE candidate from partner", "err", err)
			}
		}
	case signal.TypePeerLeft:
		return c.peerLeft(), nil
	case signal.TypeError:
		if errors.Is(m.Error, signal.ErrRoomExpired) {
			return true, m.Error
		}
		c.log.Warn("rendezvous server reported an error", "err", m.Error)
	}
	return false, nil
}

// hangUp tells the partner, through the rendezvous server, that this side
// could not take its offer or answer, so that it need not wait for a
// connection that will not come.
func (c *supervisor) hangUp(ctx context.Context, err error) {
	m := signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "%v", err)}
	if err := c.signaling.Send(ctx, m); err != nil {
		c.log.Debug("could not tell the partner", "err", err)
	}
}

// guestJoined offers a new guest a connection (host).
func (c *supervisor) guestJoined(ctx context.Context) {
	p, err := c.newPeer(ctx)
	if err == nil {
		var offer string
		if offer, err = p.Offer(); err == nil {
			c.post(event(StateConnecting, "A guest joined; connecting."))
			err = c.signaling.Send(ctx, signal.Message{Type: signal.TypeOffer, SDP: offer})
		}
	}
	if err != nil {
		c.guestFailed(err)
	}
}

// peerLeft handles the partner's rendezvous socket closing. If media
// still flows between us, that was only their signaling (a network blip,
// a proxy's timeout): the duet goes on, and their bye or a failed
// connection says when it is really over.
func (c *supervisor) peerLeft() (done bool) {
	if c.peer != nil && isUp(c.peer) {
		c.log.Info("partner lost the rendezvous server; media still flows")
		return false
	}
	if !c.host {
		c.post(event(StateEnded, "The host left the duet."))
		return true
	}
	if c.peer != nil {
		c.dropPeer()
		c.post(event(StatePartnerLeft, "Your guest left; the room stays open for them."))
	}
	return false
}

// isUp reports whether p has connected and not ended.
func isUp(p *peer.Peer) bool {
	select {
	case <-p.Ended():
		return false
	case <-p.Connected():
		return true
	default:
		return false
	}
}

// guestFailed drops a guest whose connection could not be set up (an
// incompatible client, a garbled answer); the room stays open.
func (c *supervisor) guestFailed(err error) {
	c.log.Warn("could not connect to the guest", "err", err)
	c.dropPeer()
	c.post(event(StatePartnerLeft, "Could not connect to your guest ("+err.Error()+"); the room stays open for them."))
}
