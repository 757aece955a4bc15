package sms

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages *prometheus.CounterVec
	inbound  *prometheus.CounterVec
	receipts *prometheus.CounterVec
	// commitItems observes how many requests, inbound messages and receipts each shared
	// transaction carried.
	commitItems prometheus.Histogram
	// batchPhase observes the senders' work: claim (one claim statement), submit (one message,
	// until its carrier's answer) and record (one outcome commit of the answers gathered).
	batchPhase *prometheus.HistogramVec
	// batchSize observes the messages per claim.
	batchSize prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_messages_total",
			Help: "Outbound messages by event: queued, sent, delivered, failed, retried."}, []string{"event"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_inbound_total",
			Help: "Inbound messages by keyword class (none, optout, optin, help)."}, []string{"keyword"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_sms_receipts_total",
			Help: "Delivery receipts by result: matched, held (part not recorded yet), dropped."}, []string{"result"}),
		commitItems: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telgw_sms_commit_items",
			Help:    "Items (accepted requests, inbound messages, receipts) per shared SMS transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		batchPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "telgw_sms_batch_phase_seconds",
			Help:    "Time of each phase of the senders' work: claim (one claim), submit (one message, until its carrier answer), record (one outcome commit).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"phase"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telgw_sms_batch_messages",
			Help:    "Messages per batch a sender claimed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
	}
	if reg != nil {
		reg.MustRegister(m.messages, m.inbound, m.receipts, m.commitItems, m.batchPhase, m.batchSize)
	}
	return m
}
