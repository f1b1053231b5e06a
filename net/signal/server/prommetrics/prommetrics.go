// Package prommetrics gives a rendezvous server (net/signal/server) its
// Prometheus figures: counters fed through server.Metrics and the gauges of
// open rooms and sockets, served by Handler. Only duet-server links it, so
// the desktop app's "duet serve" carries no Prometheus.
//
// The figures name no room, code or address: nothing secret reaches a
// scraper. A Metrics is safe for concurrent use.
package prommetrics

import (
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/duetapp/duet/net/signal"
	"github.com/duetapp/duet/net/signal/server"
)

// Metrics are a server's counters, in a registry of their own; it is a
// server.Metrics.
type Metrics struct {
	reg        *prometheus.Registry
	messages   *prometheus.CounterVec // by type
	rejections *prometheus.CounterVec // error replies, by code
	relayed    prometheus.Counter     // bytes relayed between partners
	refused    *prometheus.CounterVec // sockets refused before the upgrade, by reason
	// pingTimeouts counts sockets dropped for not answering a ping.
	pingTimeouts prometheus.Counter
	// evicted counts abandoned rooms deleted for a new one.
	evicted prometheus.Counter
}

// New returns counters at zero, for one server (Config.Metrics).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duet_signal_messages_total", Help: "Messages received, by type.",
		}, []string{"type"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duet_signal_rejections_total", Help: "Error replies sent, by error code (rate-limited, room-full, …).",
		}, []string{"code"}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duet_signal_relayed_bytes_total", Help: "Bytes of offers, answers and candidates relayed between partners.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duet_signal_refused_total", Help: "Sockets refused before the upgrade, by reason (server-full, address-full).",
		}, []string{"reason"}),
		pingTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duet_signal_ping_timeouts_total", Help: "Sockets dropped for answering no ping.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "duet_signal_rooms_evicted_total", Help: "Abandoned rooms (no socket in either seat) deleted to make room for a new one.",
		}),
	}
	m.reg.MustRegister(m.messages, m.rejections, m.relayed, m.refused, m.pingTimeouts, m.evicted)
	return m
}

// Message counts a message received, by type.
func (m *Metrics) Message(t signal.Type) { m.messages.WithLabelValues(string(t)).Inc() }

// Rejected counts an error reply, by code.
func (m *Metrics) Rejected(code string) { m.rejections.WithLabelValues(code).Inc() }

// Relayed counts relayed bytes.
func (m *Metrics) Relayed(bytes int) { m.relayed.Add(float64(bytes)) }

// Refused counts a socket refused before the upgrade, by reason.
func (m *Metrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// PingTimeout counts a socket dropped for answering no ping.
func (m *Metrics) PingTimeout() { m.pingTimeouts.Inc() }

// Evicted counts an abandoned room deleted for a new one.
func (m *Metrics) Evicted() { m.evicted.Inc() }

// Handler returns the handler of the figures, whatever the path: m's
// counters and srv's gauges (duet_signal_rooms, duet_signal_sockets, read
// at each scrape), srv being the server m counts for. With a token it
// asks for it as a bearer token (Authorization: Bearer TOKEN), and
// answers 401 without it.
func (m *Metrics) Handler(srv *server.Server, token string) http.Handler {
	gauges := prometheus.NewRegistry()
	gauges.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duet_signal_rooms", Help: "Open rooms."},
			func() float64 { return float64(srv.Rooms()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duet_signal_sockets", Help: "Open sockets."},
			func() float64 { return float64(srv.Sockets()) }),
	)
	h := promhttp.HandlerFor(prometheus.Gatherers{m.reg, gauges}, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="duet metrics"`)
			http.Error(w, "the metrics need a bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

var _ server.Metrics = (*Metrics)(nil)
