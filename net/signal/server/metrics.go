package server

import "github.com/duetapp/duet/net/signal"

// Metrics counts what a Server does, for figures such as Prometheus's
// (prommetrics, on duet-server's /metrics). The server calls its methods
// from many goroutines at once: they must be safe for concurrent use and
// must not block. They name no room, code or address, so nothing secret
// reaches a scraper.
type Metrics interface {
	// Message counts a valid message received, by type.
	Message(t signal.Type)
	// Rejected counts an error reply sent, by its code (rate-limited,
	// room-full, …).
	Rejected(code string)
	// Relayed counts the bytes of an offer, answer or candidate relayed
	// between partners.
	Relayed(bytes int)
	// Refused counts a socket refused before the upgrade, by reason
	// (server-full, address-full).
	Refused(reason string)
	// PingTimeout counts a socket dropped for answering no ping.
	PingTimeout()
	// Evicted counts an abandoned room (no socket in either seat) deleted
	// to make room for a new one.
	Evicted()
}

// noMetrics counts nothing: a Server's Metrics when Config has none.
type noMetrics struct{}

func (noMetrics) Message(signal.Type) {}
func (noMetrics) Rejected(string)     {}
func (noMetrics) Relayed(int)         {}
func (noMetrics) Refused(string)      {}
func (noMetrics) PingTimeout()        {}
func (noMetrics) Evicted()            {}
