package sms

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages *prometheus.CounterVec
	inbound  *prometheus.CounterVec
	receipts *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_messages_total",
			Help: "Outbound messages by event: queued, sent, delivered, failed, retried."}, []string{"event"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_inbound_total",
			Help: "Inbound messages by keyword class (none, optout, optin, help)."}, []string{"keyword"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_receipts_total",
			Help: "Delivery receipts by result: matched, held (part not recorded yet), dropped."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.inbound, m.receipts)
	}
	return m
}
