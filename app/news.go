package app

import "sync"

// The owners tell Run what the singer should hear of and what the other
// owners must know (a connection came up or closed) through a mailbox of
// news; Run acts on it in order, on its own goroutine, so Config.OnEvent
// is called from Run's goroutine only.

// newsKind says what a news is.
type newsKind int

const (
	newsEvent newsKind = iota // emit State and Text
	newsInfo                  // tell the singer Text; the state stays
	newsUp                    // a connection came up: Connected, with Text
	newsDown                  // the connection closed
)

// news is an owner's word to Run.
type news struct {
	kind  newsKind
	state State
	text  string
	conn  uint32 // newsUp, newsDown: the connection's number
}

func event(state State, text string) news { return news{kind: newsEvent, state: state, text: text} }
func info(text string) news               { return news{kind: newsInfo, text: text} }

// mailbox is a queue whose senders never block: the owners post to Run
// through one, so an owner that Run waits on can never be waiting on Run.
// Any goroutine may post; one goroutine takes. It grows without bound,
// which is fine for what goes through it (a few messages per connection
// and per user action).
type mailbox[T any] struct {
	mu    sync.Mutex // guards items only; held for an append or a swap
	items []T
	ready chan struct{}
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{ready: make(chan struct{}, 1)} }

// post adds v to the queue.
func (m *mailbox[T]) post(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default: // the taker is already due to look
	}
}

// wait is ready when something may have been posted since the last take.
func (m *mailbox[T]) wait() <-chan struct{} { return m.ready }

// take returns everything posted so far, oldest first.
func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}
