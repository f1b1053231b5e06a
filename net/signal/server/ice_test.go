package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/duetapp/duet/net/signal"
)

// fakeRelay hands out ICE servers with a user name of their own and notes
// which are released.
type fakeRelay struct {
	mu       sync.Mutex
	issued   []string
	released []string
}

func (l *fakeRelay) servers(string) []signal.ICEServer {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := fmt.Sprintf("u%d", len(l.issued))
	l.issued = append(l.issued, u)
	return []signal.ICEServer{{URLs: []string{"turn:relay.example:3478"}, Username: u, Credential: "c"}}
}

func (l *fakeRelay) release(s []signal.ICEServer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range s {
		l.released = append(l.released, x.Username)
	}
}

func (l *fakeRelay) isReleased(u string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.released, u)
}

func (l *fakeRelay) counts() (issued, released int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.issued), len(l.released)
}

// user returns the one user name of c's ICE servers.
func user(t *testing.T, c *signal.Conn) string {
	t.Helper()
	s := c.ICEServers()
	if len(s) != 1 {
		t.Fatalf("ICE servers %+v, want one", s)
	}
	return s[0].Username
}

// TestICEServersOnlyWithPartner: a host gets its ICE servers (a relay's
// credentials) with peer-joined, not with created, and a guest with
// joined; each set is released when its seat is given up, or replaced for
// the next guest, and not while a dropped seat waits for a resume.
// (Issue 12: credentials came with a bare create and were never revoked.)
func TestICEServersOnlyWithPartner(t *testing.T) {
	var ledger fakeRelay
	clock := newFakeClock()
	s, url := newTestServer(t, Config{Now: clock.Now, ICEServers: ledger.servers, ReleaseICE: ledger.release})

	host := dial(t, url)
	code, err := host.Create(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := host.ICEServers(); len(got) != 0 {
		t.Fatalf("created came with ICE servers %+v; want them only once a partner joins", got)
	}
	if n, _ := ledger.counts(); n != 0 {
		t.Fatalf("%d credentials issued for a room with no guest", n)
	}

	guest := dial(t, url)
	if err := guest.Join(testCtx(t), code); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerJoined)
	hostUser, guestUser := user(t, host), user(t, guest)
	if hostUser == guestUser {
		t.Fatal("host and guest share one credential")
	}

	// The guest leaves: its credential goes.
	if err := guest.Close(); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerLeft)
	waitFor(t, "the guest's credential to be released", func() bool { return ledger.isReleased(guestUser) })

	// A second guest: the host gets a new credential, the first goes.
	guest2 := dial(t, url)
	if err := guest2.Join(testCtx(t), code); err != nil {
		t.Fatal(err)
	}
	recv(t, host, signal.TypePeerJoined)
	if u := user(t, host); u == hostUser {
		t.Fatal("the host kept its credential for a new guest")
	}
	waitFor(t, "the host's first credential to be released", func() bool { return ledger.isReleased(hostUser) })
	hostUser, guestUser = user(t, host), user(t, guest2)

	// The second guest's socket drops: nothing is released while its seat
	// waits for it; once the grace is over, its credential goes.
	drop(t, guest2)
	waitFor(t, "the server to see the drop", func() bool { return s.Sockets() == 1 })
	s.expireIdle()
	if ledger.isReleased(guestUser) {
		t.Fatal("a dropped seat's credential was released during the grace")
	}
	clock.Advance(2 * time.Minute)
	s.expireIdle()
	recv(t, host, signal.TypePeerLeft)
	waitFor(t, "the dropped guest's credential to be released after the grace", func() bool { return ledger.isReleased(guestUser) })

	// The host leaves: its credential goes, and every one issued is gone.
	if err := host.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the host's credential to be released", func() bool { return ledger.isReleased(hostUser) })
	if issued, released := ledger.counts(); issued != released {
		t.Errorf("%d credentials issued, %d released", issued, released)
	}
}

// TestICEServersOnResume: a seat resumed on the same server gets back the
// credential it had (its duet may still use it), and nothing is released.
func TestICEServersOnResume(t *testing.T) {
	var ledger fakeRelay
	_, url := newTestServer(t, Config{ICEServers: ledger.servers, ReleaseICE: ledger.release})
	host, _, _ := pair(t, url)
	want := user(t, host)
	seat, _ := host.Seat()
	drop(t, host)
	back, partner := reconnect(t, url, seat)
	if !partner {
		t.Fatal("resumed without a partner")
	}
	if got := user(t, back); got != want {
		t.Errorf("resumed with credential %s, want its own %s", got, want)
	}
	if _, released := ledger.counts(); released != 0 {
		t.Errorf("%d credentials released by a resume", released)
	}
}
