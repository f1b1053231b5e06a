package signal

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus figures, in a registry of its own.
// They name no room, code or address: nothing secret reaches a scraper.
type metrics struct {
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

func newMetrics(s *Server) *metrics {
	m := &metrics{
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
	}
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duet_signal_refused_total", Help: "Sockets refused before the upgrade, by reason (server-full, address-full).",
	}, []string{"reason"})
	m.pingTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "duet_signal_ping_timeouts_total", Help: "Sockets dropped for answering no ping.",
	})
	m.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "duet_signal_rooms_evicted_total", Help: "Abandoned rooms (no socket in either seat) deleted to make room for a new one.",
	})
	m.reg.MustRegister(m.messages, m.rejections, m.relayed, m.refused, m.pingTimeouts, m.evicted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duet_signal_rooms", Help: "Open rooms."},
			func() float64 { return float64(s.Rooms()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "duet_signal_sockets", Help: "Open sockets."},
			func() float64 { return float64(s.sockets()) }),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
