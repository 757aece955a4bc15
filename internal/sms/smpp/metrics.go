package smpp

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the SMPP links' Prometheus metrics, shared by every carrier of a node.
type Metrics struct {
	submits  *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bound    *prometheus.GaugeVec
	delivers *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		submits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_smpp_submits_total",
			Help: "submit_sm PDUs by carrier and outcome (ok, temporary, permanent)."}, []string{"carrier", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "telgw_smpp_submit_seconds",
			Help:    "Time from submit_sm to its response (window wait and rate limit included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5}}, []string{"carrier"}),
		bound: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telgw_smpp_bound_links",
			Help: "SMPP links currently bound, by carrier."}, []string{"carrier"}),
		delivers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_smpp_deliver_sm_total",
			Help: "deliver_sm PDUs by carrier and kind (receipt, inbound, malformed, refused)."}, []string{"carrier", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.submits, m.latency, m.bound, m.delivers)
	}
	return m
}
