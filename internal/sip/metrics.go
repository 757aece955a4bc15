package sip

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	calls      *prometheus.CounterVec // direction, disposition
	active     *prometheus.GaugeVec   // direction
	setup      *prometheus.HistogramVec
	dropped    *prometheus.CounterVec // reason
	trunkUp    *prometheus.GaugeVec
	attempt    *prometheus.CounterVec // trunk, code class
	registered *prometheus.GaugeVec
	malformed  *prometheus.CounterVec // transport, action
	// dialogMismatch counts in-dialog requests that named a call but not its dialog (method,
	// reason: tags or source), answered 481.
	dialogMismatch *prometheus.CounterVec
	connClosed     *prometheus.CounterVec // transport, reason
	// refer counts REFERs received in calls' dialogs by result (refer.go).
	refer *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_calls_total",
			Help: "Calls ended, by direction and disposition (answered, busy, no-answer, cancelled, rejected, unauthorized, failed)."}, []string{"direction", "disposition"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telgw_sip_calls_active", Help: "Calls in progress."}, []string{"direction"}),
		setup: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "telgw_sip_call_setup_seconds",
			Help:    "Time from the caller's INVITE to the first ringing or answer relayed back.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_requests_dropped_total",
			Help: "Requests dropped without a response (rate limit, unknown source in drop mode)."}, []string{"reason"}),
		trunkUp:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telgw_sip_trunk_up", Help: "Trunk OPTIONS health (1 up, 0 down)."}, []string{"trunk"}),
		registered: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "telgw_sip_trunk_registered", Help: "Trunk REGISTER binding held (1) or not (0)."}, []string{"trunk"}),
		attempt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_trunk_attempts_total",
			Help: "Outbound INVITE attempts per trunk by result class (2xx, 4xx, 5xx, 6xx, timeout, capacity)."}, []string{"trunk", "result"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_malformed_messages_total",
			Help: "Messages the SIP parser refuses, by transport and action: responded (a 400, 416 or 505 was sent) or dropped (a response, not SIP, or nothing to answer with)."}, []string{"transport", "action"}),
		connClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_connections_closed_total",
			Help: "TCP, TLS and WebSocket connections telgw closed, by transport and reason: limit (too many from one address, on accept), no_request (nothing complete, or on a WebSocket nothing authenticated, in time), incomplete (a message not finished in time), idle."}, []string{"transport", "reason"}),
	}
	m.dialogMismatch = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_dialog_mismatch_total",
		Help: "In-dialog requests (BYE, re-INVITE, INFO, ACK) with a call's Call-ID that did not match its dialog, by method and reason: tags (RFC 3261 §12.2.2) or source (not the leg's transport and address); answered 481, the call untouched."},
		[]string{"method", "reason"})
	m.refer = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sip_refer_total",
		Help: "REFERs (blind transfers, RFC 3515) received in calls' dialogs, by result: transferred, failed (202, then the target was not reached), no-dialog (481), forbidden (403, the transfer policy), bad-request, unsupported (501: attended transfer, app calls), pending (491)."},
		[]string{"result"})
	if reg != nil {
		if err := reg.Register(m.refer); err != nil {
			return nil, fmt.Errorf("sip: register metrics: %w", err)
		}
		if err := reg.Register(m.dialogMismatch); err != nil {
			return nil, fmt.Errorf("sip: register metrics: %w", err)
		}
		for _, c := range []prometheus.Collector{m.calls, m.active, m.setup, m.dropped, m.trunkUp, m.attempt, m.registered, m.malformed, m.connClosed} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("sip: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
