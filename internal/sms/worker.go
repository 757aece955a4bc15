package sms

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
)

// SendArgs is the River job an earlier version queued per POST /sms. Messages are now sent
// by their carrier's sender (sender.go) straight from the queue; the kind stays registered so
// that jobs left by an upgrade complete, waking the senders, whose queue holds their messages.
type SendArgs struct {
	// MessageIDs are the messages to send.
	MessageIDs []string `json:"messageIds"`
	// Attempt counts earlier transient failures of these messages.
	Attempt int `json:"attempt,omitempty"`
	// KeywordReply marked telgw's answer to STOP, START or HELP (now Message.KeywordReply).
	KeywordReply bool `json:"keywordReply,omitempty"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "telgw.sms.send" }

// ReportTimeoutArgs is the River job that fails sent messages whose receipts did not arrive
// within their report timeout (the 2026-01-23 deliveryReportTimeoutInSeconds).
type ReportTimeoutArgs struct {
	// MessageIDs are the messages waited for.
	MessageIDs []string `json:"messageIds"`
}

// Kind implements river.JobArgs.
func (ReportTimeoutArgs) Kind() string { return "telgw.sms.report_timeout" }

// Register adds the SMS workers to workers.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &sendWorker{s: s})
	river.AddWorker(workers, &timeoutWorker{s: s})
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

// Work wakes every sender: the job's messages are in the queue they claim from.
func (w *sendWorker) Work(context.Context, *river.Job[SendArgs]) error {
	for _, sd := range w.s.senders {
		sd.poke()
	}
	return nil
}

// outcome is what happened to one submitted message.
type outcome struct {
	m       Message
	res     SubmitResult
	err     error  // nil: sent
	details string // set: fail permanently with these details
}

// optedOutDetails is the status details (and delivery report text) of a message not sent
// because its recipient opted out of the sender (STOP or /sms/optouts:add).
const optedOutDetails = "The recipient has opted out of messages from this number."

var errOptedOut = errors.New("recipient opted out")

// submit sends one message through c and classifies the result.
func (s *Service) submit(ctx context.Context, m Message, c Carrier) outcome {
	now := s.cfg.Now()
	if now.After(m.CreatedAt.Add(s.validity(m))) {
		return outcome{m: m, err: errExpired, details: "The validity period ended before the carrier accepted the message."}
	}
	res, err := c.Submit(ctx, Outbound{MessageID: m.ID, From: m.From, To: m.To, Text: m.Text,
		DeliveryReport: m.DeliveryReport, Validity: s.validity(m) - now.Sub(m.CreatedAt)})
	switch {
	case err == nil:
		return outcome{m: m, res: res}
	case IsTemporary(err):
		s.log.Warn("sms submit failed; will retry", "message_id", m.ID, "carrier", m.Carrier, "attempt", m.Attempts+1, "err", err)
		return outcome{m: m, err: err}
	default:
		s.log.Warn("sms submit refused", "message_id", m.ID, "carrier", m.Carrier, "err", err)
		return outcome{m: m, err: err, details: "The carrier refused the message: " + err.Error()}
	}
}

var (
	errExpired   = errors.New("validity period ended")
	errNoCarrier = errors.New("no such carrier")
)

func (s *Service) validity(m Message) time.Duration {
	if m.Validity > 0 {
		return m.Validity
	}
	return s.cfg.DefaultValidity
}

// fail ends a message as failed with a delivery report, unless it already ended.
func (s *Service) fail(ctx context.Context, id, details string) error {
	return s.cfg.Store.SMSTx(ctx, func(tx Tx) error { return s.failTx(ctx, tx, id, details, s.cfg.Now().UTC()) })
}

func (s *Service) failTx(ctx context.Context, tx Tx, id, details string, at time.Time) error {
	m, err := tx.MessageGetForUpdate(ctx, id)
	if err != nil {
		return err
	}
	if m.Status.Final() {
		return nil
	}
	m.Status, m.StatusDetails, m.DoneAt, m.UpdatedAt = StatusFailed, details, at, at
	s.metrics.messages.WithLabelValues("failed").Inc()
	if m.Segments > 0 {
		m.SegmentsFailed = m.Segments - m.SegmentsSucceeded
	}
	if err := tx.MessageUpdate(ctx, m); err != nil {
		return err
	}
	return s.reportTx(ctx, tx, m, at)
}

// reportTx publishes Microsoft.Communication.SMSDeliveryReportReceived for a final message
// that asked for reports.
func (s *Service) reportTx(ctx context.Context, tx Tx, m Message, at time.Time) error {
	if !m.DeliveryReport || s.cfg.Events == nil {
		return nil
	}
	status := "Delivered"
	if m.Status != StatusDelivered {
		status = "Failed"
	}
	details := m.StatusDetails
	if details == "" {
		details = "No error."
	}
	ev, err := events.New(m.ID+"-report", s.cfg.Topic, "/phonenumber/"+trimPlus(m.From), events.TypeSMSDeliveryReportReceived, at,
		events.SMSDeliveryReportData{MessageID: m.ID, From: m.From, To: m.To, DeliveryStatus: status, DeliveryStatusDetails: details,
			DeliveryAttempts:  []events.SMSDeliveryAttempt{{Timestamp: at, SegmentsSucceeded: m.SegmentsSucceeded, SegmentsFailed: m.SegmentsFailed}},
			ReceivedTimestamp: at, Tag: m.Tag}, m.From, m.To)
	if err != nil {
		return err
	}
	return s.cfg.Events.PublishTx(ctx, tx, ev)
}

func trimPlus(s string) string {
	if len(s) > 0 && s[0] == '+' {
		return s[1:]
	}
	return s
}

type timeoutWorker struct {
	river.WorkerDefaults[ReportTimeoutArgs]
	s *Service
}

// Work fails the messages still waiting for their receipts.
func (w *timeoutWorker) Work(ctx context.Context, job *river.Job[ReportTimeoutArgs]) error {
	msgs, err := w.s.cfg.Store.MessagesGet(ctx, job.Args.MessageIDs)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Status.Final() {
			continue
		}
		if err := w.s.fail(ctx, m.ID, "No delivery report arrived from the carrier within the report timeout."); err != nil {
			return err
		}
	}
	return nil
}
