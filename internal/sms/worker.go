package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms/receipt"
)

// SendArgs is the River job that submits one message to its carrier.
type SendArgs struct {
	// MessageID is the message to send.
	MessageID string `json:"messageId"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "telgw.sms.send" }

// ReportTimeoutArgs is the River job that fails a sent message whose receipt did not arrive
// within its report timeout (the 2026-01-23 deliveryReportTimeoutInSeconds).
type ReportTimeoutArgs struct {
	// MessageID is the message waited for.
	MessageID string `json:"messageId"`
}

// Kind implements river.JobArgs.
func (ReportTimeoutArgs) Kind() string { return "telgw.sms.report_timeout" }

// sendOpts lets a send retry until its validity period ends (checked in Work), not until a
// fixed attempt count.
func sendOpts() *river.InsertOpts { return &river.InsertOpts{MaxAttempts: 100000} }

// Register adds the SMS workers to workers.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &sendWorker{s: s})
	river.AddWorker(workers, &timeoutWorker{s: s})
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

// NextRetry doubles from 1s up to MaxBackoff: throttling and rebinds clear in seconds.
func (w *sendWorker) NextRetry(job *river.Job[SendArgs]) time.Time {
	return time.Now().Add(min(time.Second<<min(job.Attempt-1, 20), w.s.cfg.MaxBackoff))
}

// Timeout bounds one submission (window wait, rate limit, every part's response).
func (w *sendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return 25 * time.Second }

// Work submits the message. Temporary carrier errors return an error so River retries with
// backoff; permanent ones, an expired validity or a missing carrier end the message as failed
// with a delivery report.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	s := w.s
	m, err := s.cfg.Store.MessageGet(ctx, job.Args.MessageID)
	if errors.Is(err, problem.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Status != StatusQueued {
		return nil // already sent: a duplicate job or a retry after the row was updated
	}
	now := s.cfg.Now()
	if now.After(m.CreatedAt.Add(s.validity(m))) {
		return s.fail(ctx, m.ID, "The validity period ended before the carrier accepted the message.")
	}
	c := s.carriers[m.Carrier]
	if c == nil {
		return s.fail(ctx, m.ID, fmt.Sprintf("No SMS carrier %q is configured.", m.Carrier))
	}
	res, err := c.Submit(ctx, Outbound{MessageID: m.ID, From: m.From, To: m.To, Text: m.Text,
		DeliveryReport: m.DeliveryReport, Validity: s.validity(m) - now.Sub(m.CreatedAt)})
	if err != nil {
		if IsTemporary(err) {
			s.log.Warn("sms submit failed; retrying", "message_id", m.ID, "carrier", m.Carrier, "attempt", job.Attempt, "err", err)
			return err
		}
		s.log.Warn("sms submit refused", "message_id", m.ID, "carrier", m.Carrier, "err", err)
		return s.fail(ctx, m.ID, "The carrier refused the message: "+err.Error())
	}
	keys := make([]string, 0, len(res.CarrierIDs))
	err = s.cfg.Store.SMSTx(ctx, func(tx Tx) error {
		cur, err := tx.MessageGetForUpdate(ctx, m.ID)
		if err != nil {
			return err
		}
		at := s.cfg.Now().UTC()
		if cur.Status == StatusQueued {
			cur.Status, cur.SentAt = StatusSent, at
		}
		cur.Segments, cur.Attempts, cur.UpdatedAt = res.Segments, job.Attempt, at
		if err := tx.MessageUpdate(ctx, cur); err != nil {
			return err
		}
		parts := make([]Part, len(res.CarrierIDs))
		for i, id := range res.CarrierIDs {
			k := receipt.Key(id)
			keys = append(keys, k)
			parts[i] = Part{MessageID: m.ID, Seq: i + 1, Carrier: m.Carrier, Key: k}
		}
		if err := tx.PartsAdd(ctx, parts); err != nil {
			return err
		}
		if cur.DeliveryReport {
			deadline := cur.CreatedAt.Add(s.validity(cur))
			return s.cfg.Jobs.InsertTx(ctx, tx.Raw(), ReportTimeoutArgs{MessageID: m.ID}, &river.InsertOpts{ScheduledAt: deadline})
		}
		return nil
	})
	if err != nil {
		// The carrier has the message; retrying would send it twice. Log and stop: receipts
		// for it will be orphans, and the log shows it queued.
		s.log.Error("recording sent message failed", "message_id", m.ID, "err", err)
		return river.JobCancel(err)
	}
	s.retryOrphans(ctx, m.Carrier, keys)
	return nil
}

func (s *Service) validity(m Message) time.Duration {
	if m.Validity > 0 {
		return m.Validity
	}
	return s.cfg.DefaultValidity
}

// fail ends a message as failed with a delivery report, unless it already ended.
func (s *Service) fail(ctx context.Context, id, details string) error {
	return s.cfg.Store.SMSTx(ctx, func(tx Tx) error {
		m, err := tx.MessageGetForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if m.Status.Final() {
			return nil
		}
		at := s.cfg.Now().UTC()
		m.Status, m.StatusDetails, m.DoneAt, m.UpdatedAt = StatusFailed, details, at, at
		if m.Segments > 0 {
			m.SegmentsFailed = m.Segments - m.SegmentsSucceeded
		}
		if err := tx.MessageUpdate(ctx, m); err != nil {
			return err
		}
		return s.reportTx(ctx, tx, m, at)
	})
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
	return s.cfg.Events.PublishTx(ctx, tx.Raw(), ev)
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

// Work fails a message still waiting for its receipt.
func (w *timeoutWorker) Work(ctx context.Context, job *river.Job[ReportTimeoutArgs]) error {
	m, err := w.s.cfg.Store.MessageGet(ctx, job.Args.MessageID)
	if err != nil || m.Status.Final() {
		return nil
	}
	return w.s.fail(ctx, m.ID, "No delivery report arrived from the carrier within the report timeout.")
}
