package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/signal"
)

// rendezvous is the connection supervisor's rendezvous connection: it
// reads the server's messages for run, takes the seat back when the
// server goes away, and has the guest join the room afresh when the peer
// connection fails. It belongs to the supervisor's run goroutine; the
// goroutines it starts (the reader, a reconnect, a rejoin) only hand
// results to run through its channels.
type rendezvous struct {
	server  string
	code    signal.Code
	log     *slog.Logger
	post    func(news)         // to Run; never blocks
	publish func(*signal.Conn) // the supervisor publishes the current connection

	conn     *signal.Conn
	lost     error             // the server went away mid-duet
	resumed  chan resumeResult // while reconnecting to the server
	rejoined chan resumeResult // guest: while joining the room again
	readers  sync.WaitGroup    // the reader, reconnects and rejoins
	messages chan signal.Message
	ends     chan signalEnd
}

func newRendezvous(server string, code signal.Code, sig *signal.Conn, post func(news), publish func(*signal.Conn), log *slog.Logger) *rendezvous {
	return &rendezvous{
		server: server, code: code, log: log, post: post, publish: publish, conn: sig,
		messages: make(chan signal.Message),
		ends:     make(chan signalEnd, 1),
	}
}

// read reads signaling messages from sig for run, until sig ends or ctx
// is done.
func (r *rendezvous) read(ctx context.Context, sig *signal.Conn) {
	r.readers.Go(func() {
		for {
			m, err := sig.Recv(ctx)
			if err != nil {
				select {
				case r.ends <- signalEnd{sig, err}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case r.messages <- m:
			case <-ctx.Done():
				return
			}
		}
	})
}

// set makes sig the rendezvous connection and reads it.
func (r *rendezvous) set(ctx context.Context, sig *signal.Conn) {
	r.conn = sig
	r.publish(sig)
	r.read(ctx, sig)
}

// ended handles the end of a rendezvous connection: the seat is taken
// back on a new one, or the duet goes on without the server (if there is
// a partner: inDuet).
func (r *rendezvous) ended(ctx context.Context, ce signalEnd, inDuet bool) error {
	err := ce.err
	if ctx.Err() != nil || ce.conn != r.conn || r.rejoined != nil {
		return nil // ending, or a connection replaced or being replaced
	}
	if seat, ok := r.conn.Seat(); ok && signal.Resumable(err) {
		// Media is peer to peer: the duet goes on while the seat at the
		// rendezvous server is taken back.
		r.log.Warn("lost the rendezvous server; reconnecting", "err", err)
		r.post(info("Lost the rendezvous server; reconnecting to it. Your duet goes on meanwhile."))
		r.resumed = make(chan resumeResult, 1)
		out := r.resumed
		r.readers.Go(func() {
			sig, partner, err := signal.Reconnect(ctx, r.server, seat, signal.Backoff{})
			out <- resumeResult{sig, partner, err}
		})
		return nil
	}
	if !inDuet {
		return fmt.Errorf("rendezvous server: %w", err)
	}
	r.log.Warn("lost the rendezvous server; the duet goes on", "err", err)
	r.lost = err
	return nil
}

// resumeDone takes the outcome of a reconnect to the rendezvous server;
// partner reports that a partner waits in the room.
func (r *rendezvous) resumeDone(ctx context.Context, res resumeResult, inDuet bool) (partner bool, err error) {
	r.resumed = nil
	if r.rejoined != nil {
		// The guest is joining the room afresh: that connection takes
		// over; this one would hold the seat against it.
		if res.conn != nil {
			res.conn.Close()
		}
		return false, nil
	}
	if res.err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		if !inDuet {
			return false, fmt.Errorf("rendezvous server: %w", res.err)
		}
		r.log.Warn("could not get back to the rendezvous server; the duet goes on", "err", res.err)
		r.lost = res.err
		return false, nil
	}
	old := r.conn
	r.set(ctx, res.conn)
	old.Close()
	r.post(info("Back in touch with the rendezvous server."))
	return res.partner, nil
}

// rejoin has the guest leave the room and join it afresh.
func (r *rendezvous) rejoin(ctx context.Context) {
	r.conn.Close()
	r.rejoined = make(chan resumeResult, 1)
	out := r.rejoined
	r.readers.Go(func() {
		sig, err := joinAgain(ctx, r.server, r.code)
		out <- resumeResult{conn: sig, err: err}
	})
}

// rejoinDone takes the outcome of the guest's joining the room again.
func (r *rendezvous) rejoinDone(ctx context.Context, res resumeResult) error {
	r.rejoined = nil
	if res.err != nil {
		return fmt.Errorf("%w, and could not get back into the room: %w", ErrConnectionLost, res.err)
	}
	r.set(ctx, res.conn)
	r.log.Info("back in the room; waiting for the host's offer")
	return nil
}

// joinAgain joins the room code on server again on a new signaling
// connection (guest), trying for a minute with backoff.
func joinAgain(ctx context.Context, server string, code signal.Code) (*signal.Conn, error) {
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

// hangUp tells the partner, through the rendezvous server, that this side
// could not take its offer or answer, so that it need not wait for a
// connection that will not come.
func (r *rendezvous) hangUp(ctx context.Context, err error) {
	m := signal.Message{Type: signal.TypeHangup, Error: signal.Errorf(signal.ErrNegotiation, "%v", err)}
	if err := r.conn.Send(ctx, m); err != nil {
		r.log.Debug("could not tell the partner", "err", err)
	}
}

// close leaves the room and waits for the goroutines; run's end.
func (r *rendezvous) close() error {
	err := r.conn.Close()
	r.readers.Wait()
	for _, late := range []chan resumeResult{r.resumed, r.rejoined} {
		select {
		case res := <-late: // a connection made as run ended
			if res.conn != nil {
				res.conn.Close()
			}
		default:
		}
	}
	return err
}

// The supervisor's handling of the server's messages.

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
			c.rv.hangUp(ctx, err)
			return false, err
		}
		return false, c.rv.conn.Send(ctx, signal.Message{Type: signal.TypeAnswer, SDP: answer})
	case signal.TypeAnswer:
		if c.peer != nil && c.host {
			if err := c.peer.Accept(m.SDP); err != nil {
				c.rv.hangUp(ctx, err)
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

// guestJoined offers a new guest a connection (host).
func (c *supervisor) guestJoined(ctx context.Context) {
	p, err := c.newPeer(ctx)
	if err == nil {
		var offer string
		if offer, err = p.Offer(); err == nil {
			c.post(event(StateConnecting, "A guest joined; connecting."))
			err = c.rv.conn.Send(ctx, signal.Message{Type: signal.TypeOffer, SDP: offer})
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
