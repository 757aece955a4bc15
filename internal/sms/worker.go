package sms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/sms/receipt"
)

// SendArgs is the River job that submits messages to their carriers: all the messages of one
// POST /sms, or those of an earlier job that failed transiently.
type SendArgs struct {
	// MessageIDs are the messages to send.
	MessageIDs []string `json:"messageIds"`
	// Attempt counts earlier transient failures of these messages (for backoff).
	Attempt int `json:"attempt,omitempty"`
	// KeywordReply marks telgw's answer to STOP, START or HELP. It is sent whatever the
	// recipient's opt-out: the STOP confirmation goes, by design, to a recipient who has just
	// opted out, and HELP is answered to opted-out recipients too (CTIA Messaging Principles
	// and Best Practices).
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

func sendOpts() *river.InsertOpts { return &river.InsertOpts{MaxAttempts: 25} }

// Register adds the SMS workers to workers.
func (s *Service) Register(workers *river.Workers) {
	river.AddWorker(workers, &sendWorker{s: s})
	river.AddWorker(workers, &timeoutWorker{s: s})
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	s *Service
}

// Timeout bounds one job: every message's window wait, rate limit and responses.
func (w *sendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return 25 * time.Second }

// outcome is what happened to one message of a send job.
type outcome struct {
	m       Message
	res     SubmitResult
	err     error  // nil: sent
	details string // set: fail permanently with these details
}

// submitConcurrency bounds parallel submissions of one job; the carrier's windows bound what
// is actually in flight.
const submitConcurrency = 64

// recordBatch caps how many outcomes are committed together.
const recordBatch = 64

// Work submits the job's queued messages in parallel and records outcomes as they come, in
// small transactions: sent messages with their parts, permanent refusals, expiries and
// missing carriers as failed (with a delivery report), and transient failures (throttling,
// queue full, timeouts, no bind) in one new job scheduled after a doubling backoff.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	s := w.s
	msgs, err := s.cfg.Store.MessagesGet(ctx, job.Args.MessageIDs)
	if err != nil {
		return err
	}
	if !job.Args.KeywordReply {
		if msgs, err = s.dropOptedOut(ctx, msgs, job.Args.Attempt); err != nil {
			return err
		}
	}
	out := make(chan outcome)
	work := make(chan Message)
	go func() {
		defer close(work)
		for _, m := range msgs {
			if m.Status != StatusQueued {
				continue // already sent: a rescued job after a crash
			}
			select {
			case work <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range min(submitConcurrency, len(msgs)) {
		wg.Go(func() {
			for m := range work {
				// The token is returned once the outcome is committed (or known unsent).
				select {
				case s.inflight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				out <- s.submit(ctx, m, job.Args.Attempt)
			}
		})
	}
	go func() { wg.Wait(); close(out) }()

	var batch []outcome
	var retry []string
	var recErr error
	release := func(n int) {
		for range n {
			<-s.inflight
		}
	}
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := s.record(ctx, batch, job.Args.Attempt); err != nil && recErr == nil {
			recErr = err
		}
		release(len(batch))
		batch = batch[:0]
	}
	// Record as soon as an outcome arrives, together with whatever else is already waiting:
	// what a crash can lose (and later resend) is only what arrived during one commit.
	add := func(o outcome) {
		if o.err != nil && o.details == "" {
			retry = append(retry, o.m.ID)
			release(1)
			return
		}
		batch = append(batch, o)
	}
	for o := range out {
		add(o)
	drain:
		for len(batch) < recordBatch {
			select {
			case o2, ok := <-out:
				if !ok {
					break drain
				}
				add(o2)
			default:
				break drain
			}
		}
		flush()
	}
	flush()
	if recErr != nil {
		// The carrier has these messages; retrying would send them twice. The log keeps
		// them queued and their receipts wait as orphans.
		s.log.Error("recording sent messages failed", "err", recErr)
		return river.JobCancel(recErr)
	}
	if len(retry) > 0 {
		s.metrics.messages.WithLabelValues("retried").Add(float64(len(retry)))
		return s.retryLater(ctx, SendArgs{MessageIDs: retry, Attempt: job.Args.Attempt + 1, KeywordReply: job.Args.KeywordReply})
	}
	return ctx.Err()
}

// optedOutDetails is the status details (and delivery report text) of a message not sent
// because its recipient opted out of the sender (STOP or /sms/optouts:add).
const optedOutDetails = "The recipient has opted out of messages from this number."

var errOptedOut = errors.New("recipient opted out")

// dropOptedOut checks opt-outs again just before submitting (Send checked them when it
// accepted the messages, but a STOP may have arrived while they waited for the carrier;
// keyword replies skip it, see SendArgs.KeywordReply): the
// queued messages whose recipients opted out since are failed as Send fails them, with a
// delivery report, and left out of the returned ones.
func (s *Service) dropOptedOut(ctx context.Context, msgs []Message, attempt int) ([]Message, error) {
	byFrom := map[string][]string{}
	for _, m := range msgs {
		if m.Status == StatusQueued {
			byFrom[m.From] = append(byFrom[m.From], m.To)
		}
	}
	out := map[string]map[string]bool{}
	for from, tos := range byFrom {
		res, err := s.cfg.Store.OptOutCheck(ctx, from, tos)
		if err != nil {
			return nil, fmt.Errorf("check opt-outs: %w", err)
		}
		out[from] = res
	}
	var keep []Message
	var refused []outcome
	for _, m := range msgs {
		if m.Status == StatusQueued && out[m.From][m.To] {
			refused = append(refused, outcome{m: m, err: errOptedOut, details: optedOutDetails})
			continue
		}
		keep = append(keep, m)
	}
	if len(refused) == 0 {
		return msgs, nil
	}
	s.log.Info("sms not sent: recipient opted out after it was queued", "messages", len(refused))
	if err := s.record(ctx, refused, attempt); err != nil {
		return nil, err
	}
	return keep, nil
}

// submit sends one message and classifies the result.
func (s *Service) submit(ctx context.Context, m Message, attempt int) outcome {
	now := s.cfg.Now()
	if now.After(m.CreatedAt.Add(s.validity(m))) {
		return outcome{m: m, err: errExpired, details: "The validity period ended before the carrier accepted the message."}
	}
	c := s.carriers[m.Carrier]
	if c == nil {
		return outcome{m: m, err: errNoCarrier, details: fmt.Sprintf("No SMS carrier %q is configured.", m.Carrier)}
	}
	res, err := c.Submit(ctx, Outbound{MessageID: m.ID, From: m.From, To: m.To, Text: m.Text,
		DeliveryReport: m.DeliveryReport, Validity: s.validity(m) - now.Sub(m.CreatedAt)})
	switch {
	case err == nil:
		return outcome{m: m, res: res}
	case IsTemporary(err):
		s.log.Warn("sms submit failed; will retry", "message_id", m.ID, "carrier", m.Carrier, "attempt", attempt+1, "err", err)
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

// record commits a batch of outcomes in one transaction.
func (s *Service) record(ctx context.Context, batch []outcome, attempt int) error {
	var keys []string
	carrier := ""
	err := s.cfg.Store.SMSTx(ctx, func(tx Tx) error {
		keys = keys[:0]
		at := s.cfg.Now().UTC()
		var parts []Part
		var waiting []string
		var deadline time.Time
		bySegments := map[int][]string{}
		sent := map[string]outcome{}
		for _, o := range batch {
			if o.err != nil {
				if err := s.failTx(ctx, tx, o.m.ID, o.details, at); err != nil {
					return err
				}
				continue
			}
			bySegments[o.res.Segments] = append(bySegments[o.res.Segments], o.m.ID)
			sent[o.m.ID] = o
		}
		for segs, ids := range bySegments {
			moved, err := tx.MessagesMarkSent(ctx, ids, segs, attempt+1, at)
			if err != nil {
				return err
			}
			for _, id := range moved {
				o := sent[id]
				s.metrics.messages.WithLabelValues("sent").Inc()
				for i, cid := range o.res.CarrierIDs {
					k := receipt.Key(cid)
					keys = append(keys, k)
					carrier = o.m.Carrier
					parts = append(parts, Part{MessageID: o.m.ID, Seq: i + 1, Carrier: o.m.Carrier, Key: k})
				}
				if o.m.DeliveryReport {
					waiting = append(waiting, o.m.ID)
					if d := o.m.CreatedAt.Add(s.validity(o.m)); d.After(deadline) {
						deadline = d
					}
				}
			}
		}
		if err := tx.PartsAdd(ctx, parts); err != nil {
			return err
		}
		if len(waiting) > 0 {
			return tx.InsertJob(ctx, ReportTimeoutArgs{MessageIDs: waiting}, &river.InsertOpts{ScheduledAt: deadline})
		}
		return nil
	})
	if err == nil && carrier != "" {
		s.retryOrphans(ctx, carrier, keys)
	}
	return err
}

// retryLater enqueues transiently failed messages (args, Attempt counted up) again after a
// doubling backoff (1s up to MaxBackoff); they keep trying until their validity period ends.
func (s *Service) retryLater(ctx context.Context, args SendArgs) error {
	backoff := min(time.Second<<min(args.Attempt-1, 20), s.cfg.MaxBackoff)
	return s.cfg.Store.SMSTx(ctx, func(tx Tx) error {
		return tx.InsertJob(ctx, args, &river.InsertOpts{MaxAttempts: 25, ScheduledAt: time.Now().Add(backoff)})
	})
}

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
