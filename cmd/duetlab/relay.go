package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/duetapp/duet/net/peer"
	"github.com/duetapp/duet/net/relay"
	"github.com/duetapp/duet/net/relay/relaytest"
	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// relayLab connects two singers' peers on loopback twice, through the
// rendezvous server as the app does (ICE servers handed out with created
// and joined, offer, answer and candidates relayed): once directly and once
// relay-only through the embedded TURN relay. It pings over the control
// data channel and reports the round trip of each, and what the relay
// adds. (lab.Run has no relay-only switch, so this uses net/peer
// directly; no audio is involved.) Then it floods the relay with one
// credential (turnAllocsPerCred): turn_allocs_per_cred is how many
// allocations it got before the relay refused.
func relayLab(ctx context.Context, w io.Writer) ([]string, error) {
	turn, err := relay.Listen(relay.Config{Listen: "127.0.0.1:0", PublicIP: net.IPv4(127, 0, 0, 1), AllowPrivate: true})
	if err != nil {
		return nil, err
	}
	defer turn.Close()
	srv, err := startLabServer(ctx, server.Config{ICEServers: func(string) []signal.ICEServer {
		c, err := turn.Credentials(relay.DefaultCredentialLife)
		if err != nil {
			return nil
		}
		return []signal.ICEServer{{URLs: c.URLs, Username: c.Username, Credential: c.Credential}}
	}, ReleaseICE: func(servers []signal.ICEServer) {
		for _, s := range servers {
			turn.Revoke(s.Username) // as duet serve does
		}
	}})
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tcandidate\tpings\tRTT p50 ms\tRTT p99 ms\t")
	var res [2]relayResult
	for i, relayOnly := range []bool{false, true} {
		r, err := relayRun(ctx, srv.url, relayOnly)
		if err != nil {
			return nil, fmt.Errorf("relay-only %v: %w", relayOnly, err)
		}
		res[i] = r
		name := "direct"
		if relayOnly {
			name = "relay-only (TURN)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t\n", name, r.candidate, len(r.rtt), ms(r.p(0.5)), ms(r.p(0.99)))
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	if !res[1].relayed {
		return nil, fmt.Errorf("the relay-only connection did not go through the relay (candidate %q)", res[1].candidate)
	}
	addedRTT := res[1].p(0.5) - res[0].p(0.5)
	fmt.Fprintf(w, "The relay adds %.3f ms to the round trip (p50), %.3f ms one way, on loopback: its own processing.\n", ms(addedRTT), ms(addedRTT)/2)

	const floodLimit = 1000
	allocs, code, err := turnAllocsPerCred(ctx, turn, floodLimit)
	if err != nil {
		return nil, err
	}
	refusal := fmt.Sprintf("refused with TURN error %d", code)
	if code == 0 {
		refusal = fmt.Sprintf("never refused (the flood stops at %d)", floodLimit)
	}
	fmt.Fprintf(w, "One credential opened %d allocations, %s.\n", allocs, refusal)
	return []string{fmt.Sprintf("relayed=%v added_ms=%.3f added_rtt_ms=%.3f direct_rtt_ms=%.3f relay_rtt_ms=%.3f turn_allocs_per_cred=%d",
		res[1].relayed, ms(addedRTT)/2, ms(addedRTT), ms(res[0].p(0.5)), ms(res[1].p(0.5)), allocs)}, nil
}

// turnAllocsPerCred is issue 12's TURN flood: with one credential from
// srv, it opens allocations on srv (each from a loopback socket of its
// own) until srv refuses one or limit are open, then releases them. It
// returns how many it held and the TURN error code of the refusal (0 if
// none: the flood reached limit).
func turnAllocsPerCred(ctx context.Context, srv *relay.Server, limit int) (allocs, code int, err error) {
	c, err := srv.Credentials(relay.DefaultCredentialLife)
	if err != nil {
		return 0, 0, err
	}
	var url string
	for _, u := range c.URLs {
		if strings.HasPrefix(u, "turn:") {
			url = u
		}
	}
	a, err := relaytest.Flood(ctx, url, c.Username, c.Credential, "127.0.0.1:0", limit)
	defer a.Close()
	if err != nil && relaytest.Code(err) == 0 {
		return a.Len(), 0, err
	}
	return a.Len(), relaytest.Code(err), nil
}

type relayResult struct {
	candidate string
	relayed   bool
	rtt       []time.Duration // sorted
}

func (r relayResult) p(q float64) time.Duration {
	if len(r.rtt) == 0 {
		return 0
	}
	return r.rtt[min(int(q*float64(len(r.rtt))), len(r.rtt)-1)]
}

// relayRun sets up a duet's connection through the rendezvous server and
// pings across it.
func relayRun(ctx context.Context, url string, relayOnly bool) (relayResult, error) {
	var res relayResult
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	hostSig, err := signal.Dial(ctx, url)
	if err != nil {
		return res, err
	}
	defer hostSig.Close()
	guestSig, err := signal.Dial(ctx, url)
	if err != nil {
		return res, err
	}
	defer guestSig.Close()
	code, err := hostSig.Create(ctx)
	if err != nil {
		return res, err
	}
	if err := guestSig.Join(ctx, code); err != nil {
		return res, err
	}
	// The host's ICE servers (the relay's credentials) come with
	// peer-joined, before it builds its peer.
	if m, err := hostSig.Recv(ctx); err != nil || m.Type != signal.TypePeerJoined {
		return res, fmt.Errorf("waiting for peer-joined: %+v, %v", m, err)
	}

	iceServers := func(c *signal.Conn) []webrtc.ICEServer {
		var out []webrtc.ICEServer
		for _, s := range c.ICEServers() {
			out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
		}
		return out
	}
	pongs := make(chan []byte, 16)
	var guest *peer.Peer
	newPeer := func(sig *signal.Conn, onControl func([]byte)) (*peer.Peer, error) {
		return peer.New(peer.Config{
			Loopback: true, RelayOnly: relayOnly, ICEServers: iceServers(sig),
			OnCandidate: func(c webrtc.ICECandidateInit) {
				sig.Send(ctx, signal.Message{Type: signal.TypeCandidate, Candidate: &signal.Candidate{
					Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
				}})
			},
			OnControl: onControl,
		})
	}
	host, err := newPeer(hostSig, func(b []byte) {
		select {
		case pongs <- bytes.Clone(b):
		default:
		}
	})
	if err != nil {
		return res, err
	}
	defer host.Close()
	guest, err = newPeer(guestSig, func(b []byte) { guest.SendControl(b) }) // echo
	if err != nil {
		return res, err
	}
	defer guest.Close()

	// Signaling, each side in its own goroutine, until both connect.
	relayCandidates := func(sig *signal.Conn, p *peer.Peer, offerer bool) error {
		if offerer {
			offer, err := p.Offer()
			if err != nil {
				return err
			}
			if err := sig.Send(ctx, signal.Message{Type: signal.TypeOffer, SDP: offer}); err != nil {
				return err
			}
		}
		for {
			m, err := sig.Recv(ctx)
			if err != nil {
				return nil // closed at the end
			}
			switch m.Type {
			case signal.TypeOffer:
				answer, err := p.Answer(m.SDP)
				if err != nil {
					return err
				}
				sig.Send(ctx, signal.Message{Type: signal.TypeAnswer, SDP: answer})
			case signal.TypeAnswer:
				if err := p.Accept(m.SDP); err != nil {
					return err
				}
			case signal.TypeCandidate:
				c := m.Candidate
				p.AddCandidate(webrtc.ICECandidateInit{Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment})
			}
		}
	}
	errs := make(chan error, 2)
	go func() { errs <- relayCandidates(hostSig, host, true) }()
	go func() { errs <- relayCandidates(guestSig, guest, false) }()
	defer func() {
		hostSig.Close()
		guestSig.Close()
		<-errs
		<-errs
	}()
	for _, p := range []*peer.Peer{host, guest} {
		select {
		case <-p.Connected():
		case err := <-errs:
			errs <- nil
			return res, fmt.Errorf("signaling: %w", err)
		case <-ctx.Done():
			return res, fmt.Errorf("no connection: %w", ctx.Err())
		}
	}
	st := host.Stats()
	res.candidate, res.relayed = st.Candidate, st.Relayed

	// Ping until the data channel carries the first, then 300 pings 5 ms apart.
	ping := func(n uint64) ([]byte, time.Time) {
		b := binary.BigEndian.AppendUint64([]byte("ping"), n)
		return b, time.Now()
	}
	for n := uint64(0); ; n++ {
		b, _ := ping(n)
		host.SendControl(b)
		select {
		case <-pongs:
		case <-time.After(50 * time.Millisecond):
			continue
		case <-ctx.Done():
			return res, fmt.Errorf("no echo on the control channel: %w", ctx.Err())
		}
		break
	}
	for n := uint64(1 << 32); n < 1<<32+300; n++ {
		b, sent := ping(n)
		if err := host.SendControl(b); err != nil {
			return res, err
		}
		for got := false; !got; {
			select {
			case pong := <-pongs:
				got = bytes.Equal(pong, b) // an earlier echo may come late
			case <-time.After(2 * time.Second):
				return res, fmt.Errorf("ping %d lost", n)
			}
		}
		res.rtt = append(res.rtt, time.Since(sent))
		time.Sleep(5 * time.Millisecond) // pacing, not waiting for an event
	}
	slices.Sort(res.rtt)
	return res, nil
}
