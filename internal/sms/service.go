package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms/gsm"
)

// Config configures the Service.
type Config struct {
	// Store persists messages and opt-outs (required).
	Store Store
	// Events publishes SMSReceived and SMSDeliveryReportReceived (required).
	Events Events
	// Numbers checks sender ownership and routes inbound messages. Nil accepts every number
	// and routes all outbound messages through the first carrier.
	Numbers Numbers
	// Carriers in configured order; the first is the default.
	Carriers []Carrier
	// Topic is the events' topic (the ACS resource id). Default "/telgw".
	Topic string
	// MaxMessageLength caps message characters. Default 2048 (the ACS limit).
	MaxMessageLength int
	// DefaultValidity bounds retries and the wait for receipts when the request gives none.
	// Default 48h.
	DefaultValidity time.Duration
	// MaxBackoff caps the wait between submit retries, which doubles from 1s. Default 30s.
	MaxBackoff time.Duration
	// InFlight caps messages submitted to carriers whose outcome is not yet committed on this
	// node: after a kill -9 these are the only ones sent twice. Default: the carriers' total
	// window (Windowed), or 10 when none has one.
	InFlight int
	// Node names this node among those sharing the store (cluster.nodeName, default the
	// hostname). The senders lease the messages they claim to "<Node>#<random>", so that the
	// node, started again after a kill -9, ends the leases its earlier process left at once
	// (the names of live nodes must differ). Default: the hostname.
	Node string
	// CommitParallel is how many shared transactions of inbound messages and receipts may
	// commit at once (see committer). Default 1; the app sets 2 on PostgreSQL, where
	// concurrent commits share their WAL flushes. Above 1, accepted requests are stored by a
	// committer of their own, one statement at a time (Service.accepts).
	CommitParallel int
	// OptOutReply, OptInReply and HelpReply answer the keywords; defaults are short
	// CTIA-style confirmations.
	OptOutReply, OptInReply, HelpReply string
	// Limits, when set, admits each request's messages (limits.go). Default: none.
	Limits SendLimiter
	// Logger receives message events. Default discards.
	Logger *slog.Logger
	// Registerer receives the SMS metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Service is the SMS domain: sending, the send worker, receipts, inbound, opt-outs.
type Service struct {
	cfg      Config
	log      *slog.Logger
	carriers map[string]Carrier

	omu     sync.Mutex
	orphans map[string]orphan // receipts that arrived before their submit was recorded

	inflight chan struct{} // one token per submitted message whose outcome is not committed
	owner    string        // the senders' lease owner: Config.Node + "#" + a random id
	senders  map[string]*sender
	commit   *committer
	// accepts stores accepted requests' messages (committer.accept). On PostgreSQL a
	// committer of its own that runs one MessagesAccept at a time: while it runs, the next
	// requests gather into one larger statement, where two at once split them into twice the
	// statements and commits (measured at 1 recipient per request: PostgreSQL CPU 181-200 µs
	// per sent message against 221-229). On SQLite it is commit, whose one loop serialises
	// them with the other writers.
	accepts *committer
	// outcomes commits the senders' outcomes that need a transaction (failures, retries,
	// delivery-report waits; all sent and none waiting is Store.MessagesSentAlone): a
	// committer of its own, so that a message's token, held until its outcome commits, does
	// not wait behind a large transaction of accepted requests.
	outcomes *committer
	// recordAlone lets senders record outcomes that need no transaction with
	// Store.MessagesSentAlone (PostgreSQL, where one statement saves the BEGIN and COMMIT
	// round trips); on SQLite, whose writers queue anyway, the recorders' outcomes share the
	// outcomes committer's one transaction.
	recordAlone bool

	smu         sync.Mutex
	numbersSeen map[string]numberEntry // numberInfo's memory
	metrics     *metrics
}

// New builds a Service.
func New(cfg Config) *Service {
	if cfg.Topic == "" {
		cfg.Topic = "/telgw"
	}
	if cfg.MaxMessageLength <= 0 {
		cfg.MaxMessageLength = 2048
	}
	if cfg.DefaultValidity <= 0 {
		cfg.DefaultValidity = 48 * time.Hour
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = totalWindow(cfg.Carriers)
	}
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	if cfg.CommitParallel <= 0 {
		cfg.CommitParallel = 1
	}
	if cfg.OptOutReply == "" {
		cfg.OptOutReply = "You have been unsubscribed and will receive no further messages. Reply START to resubscribe."
	}
	if cfg.OptInReply == "" {
		cfg.OptInReply = "You have been resubscribed. Reply STOP to unsubscribe."
	}
	if cfg.HelpReply == "" {
		cfg.HelpReply = "Reply STOP to unsubscribe, START to resubscribe."
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger, carriers: map[string]Carrier{}, orphans: map[string]orphan{},
		inflight: make(chan struct{}, cfg.InFlight), owner: leasePrefix(cfg.Node) + uuid.NewString(), senders: map[string]*sender{}, numbersSeen: map[string]numberEntry{}, metrics: newMetrics(cfg.Registerer)}
	s.commit = &committer{store: cfg.Store, parallel: cfg.CommitParallel, maxItems: maxCommitItems, maxRows: maxCommitRows,
		batches: func(n int) { s.metrics.commitItems.Observe(float64(n)) }, receipts: s.applyReceiptsTx}
	s.accepts = s.commit
	outcomes := 1 // SQLite: the recorders' items share one transaction
	if cfg.CommitParallel > 1 {
		outcomes = maxRecorders
		s.recordAlone = true
		s.accepts = &committer{store: cfg.Store, parallel: 1, maxItems: maxCommitItems, maxRows: maxCommitRows,
			batches: s.commit.batches}
	}
	s.outcomes = &committer{store: cfg.Store, parallel: outcomes, maxItems: maxCommitItems, maxRows: maxCommitRows,
		receipts: s.applyReceiptsTx}
	for _, c := range cfg.Carriers {
		s.carriers[c.Name()] = c
		s.senders[c.Name()] = newSender(s, c)
	}
	return s
}

// leasePrefix is how the leases of node's processes begin.
func leasePrefix(node string) string { return node + "#" }

// totalWindow is the sum of the carriers' windows, or 10 when none has one.
func totalWindow(carriers []Carrier) int {
	n := 0
	for _, c := range carriers {
		if w, ok := c.(Windowed); ok {
			n += w.Window()
		}
	}
	if n <= 0 {
		return 10
	}
	return n
}

// SendRequest is POST /sms.
type SendRequest struct {
	From           string
	Recipients     []Recipient
	Message        string
	DeliveryReport bool
	Tag            string
	// Validity is validityPeriodSeconds (2021-03-07) or deliveryReportTimeoutInSeconds
	// (2026-01-23); 0 for the default.
	Validity time.Duration
}

// Recipient is one smsRecipients entry.
type Recipient struct {
	To                     string
	RepeatabilityRequestID string
	RepeatabilityFirstSent string
}

// SendResult is the outcome for one recipient of a Send (one ACS SmsSendResponseItem).
type SendResult struct {
	// To is the recipient as the request gave it.
	To string
	// MessageID is the queued message, or the first one sent under a repeated
	// repeatabilityRequestId; empty when Err is set.
	MessageID string
	// RepeatabilityResult is "accepted" or "rejected" when the recipient carried a
	// repeatabilityRequestId, else empty.
	RepeatabilityResult string
	// Err is nil when the message was queued (or is a repeat of a queued one), else why this
	// recipient was refused: a *problem.Error whose kind the edge maps to a status (invalid
	// number or repeatability fields: problem.KindInvalid).
	Err error
}

// Successful reports whether the recipient's message was accepted.
func (r SendResult) Successful() bool { return r.Err == nil }

// maxCommitItems caps the requests (inbound messages, receipts) one shared transaction takes,
// maxCommitRows the messages they insert: a transaction of 25,000 rows would hold back the
// senders' small outcome commits behind its WAL.
const (
	maxCommitItems = 256
	maxCommitRows  = 2000
)

// Send validates req and durably queues one message per valid recipient: every message row
// commits, in a transaction shared with concurrent requests, before Send returns; then the
// carrier's sender is woken. Opt-outs are checked where the sender claims the message (so a
// STOP that arrives while it waits counts too): a message to a recipient who opted out of the
// sender is accepted like any other, then fails without reaching the carrier, with a delivery
// report saying so. Request-wide problems
// (sender, message, recipient count) fail the whole request; a bad recipient fails only its
// own result. A repeated repeatabilityRequestId returns the first message's id with
// repeatabilityResult "rejected" and sends nothing.
func (s *Service) Send(ctx context.Context, req SendRequest) ([]SendResult, error) {
	from, ok := e164.Clean(req.From)
	if !ok {
		return nil, problem.Invalid("from", "%q is not an E.164 phone number", req.From).WithCode("InvalidFromPhoneNumber")
	}
	if n := len(req.Recipients); n < 1 || n > 100 {
		return nil, problem.Invalid("smsRecipients", "between 1 and 100 recipients are allowed, got %d", n)
	}
	if req.Message == "" {
		return nil, problem.Invalid("message", "message must not be empty")
	}
	if n := utf8.RuneCountInString(req.Message); n > s.cfg.MaxMessageLength {
		return nil, problem.Invalid("message", "message has %d characters; at most %d are allowed", n, s.cfg.MaxMessageLength)
	}
	if _, err := gsm.Encode(req.Message, gsm.ConcatUDH8); err != nil {
		return nil, problem.Invalid("message", "message is too long to send: %v", err)
	}
	if req.Validity < 0 {
		return nil, problem.Invalid("smsSendOptions", "the validity period must not be negative")
	}
	carrier, err := s.senderCarrier(ctx, from)
	if err != nil {
		return nil, err
	}
	if carrier == "" {
		// The sender is fine but nothing could carry its messages: every recipient fails in
		// the 202's results now, rather than the message failing later in the send worker.
		return s.refuseAll(req, s.carrierErr(ctx, from)), nil
	}
	if s.cfg.Limits != nil {
		n := 0
		for _, r := range req.Recipients {
			if _, ok := e164.Clean(r.To); ok {
				n++
			}
		}
		if err := s.cfg.Limits.AdmitSMS(ctx, from, n); err != nil {
			return nil, err
		}
	}
	now := s.cfg.Now().UTC()
	var results []SendResult
	// A concurrent request with the same repeatability id may insert first: the retry then
	// finds it and answers "rejected".
	for attempt := 0; ; attempt++ {
		results, err = s.queue(ctx, req, from, carrier, now)
		if errors.Is(err, problem.ErrConflict) && attempt == 0 {
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	queued := 0
	for _, r := range results {
		if r.Successful() && r.RepeatabilityResult != "rejected" {
			queued++
		}
	}
	s.metrics.messages.WithLabelValues("queued").Add(float64(queued))
	s.wakeSender(carrier)
	return results, nil
}

// queue stores the request's messages, queued for the carrier's sender, with the accepts of
// concurrent requests (committer.accept). A recipient whose repeatabilityRequestId was used
// before (by an earlier request, a concurrent one, or an earlier recipient of this one) gets
// the first message's id and "rejected"; nothing is sent for it.
func (s *Service) queue(ctx context.Context, req SendRequest, from, carrier string, now time.Time) ([]SendResult, error) {
	results := make([]SendResult, len(req.Recipients))
	rids := make([]string, len(req.Recipients))
	msgs := make([]Message, 0, len(req.Recipients))
	var seenRID map[string]string
	for i, r := range req.Recipients {
		res := SendResult{To: r.To}
		to, ok := e164.Clean(r.To)
		rid := strings.ToLower(r.RepeatabilityRequestID)
		switch {
		case !ok:
			res.Err = problem.Invalid("to", "Invalid To phone number %q: not E.164", r.To)
		case rid != "" && (!validUUID(rid) || r.RepeatabilityFirstSent == ""):
			res.Err = problem.Invalid("repeatabilityRequestId", "repeatabilityRequestId must be a UUID and repeatabilityFirstSent must be set")
		case rid != "" && seenRID[rid] != "":
			res.MessageID, res.RepeatabilityResult = seenRID[rid], "rejected"
			rids[i] = rid
		default:
			m := Message{ID: newMessageID(), From: from, To: to, Text: req.Message, Tag: req.Tag, DeliveryReport: req.DeliveryReport,
				Validity: req.Validity, Carrier: carrier, Status: StatusQueued, RepeatabilityRequestID: rid,
				RepeatabilityFirstSent: r.RepeatabilityFirstSent, CreatedAt: now, UpdatedAt: now}
			msgs = append(msgs, m)
			res.MessageID = m.ID
			if rid != "" {
				res.RepeatabilityResult = "accepted"
				rids[i] = rid
				if seenRID == nil {
					seenRID = map[string]string{}
				}
				seenRID[rid] = m.ID
			}
		}
		results[i] = res
	}
	if len(msgs) == 0 {
		return results, nil
	}
	taken, err := s.accepts.accept(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	for i, rid := range rids {
		if h, ok := taken[rid]; ok && rid != "" && h != results[i].MessageID {
			results[i].MessageID, results[i].RepeatabilityResult = h, "rejected"
		}
	}
	return results, nil
}

// newMessageID is a message id: a UUID of version 7 (RFC 9562 §5.7), whose leading
// timestamp makes each insert land at the end of the message table's id index rather than
// on a random page of it (a sixth less CPU per accept on SQLite, which writes every page a
// commit touched to its WAL); version 4 should a v7 ever fail.
func newMessageID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// senderCarrier checks from may send SMS and picks its carrier: the one recorded for the
// number at import, else the first configured.
func (s *Service) senderCarrier(ctx context.Context, from string) (string, error) {
	def := ""
	if len(s.cfg.Carriers) > 0 {
		def = s.cfg.Carriers[0].Name()
	}
	if s.cfg.Numbers == nil {
		return def, nil
	}
	info, err := s.numberInfo(ctx, from)
	if err != nil && !errors.Is(err, problem.ErrNotFound) {
		return "", fmt.Errorf("look up %s: %w", from, err)
	}
	if err != nil || !info.Purchased {
		return "", problem.Invalid("from", "%s is not a phone number of this resource", from).WithCode("InvalidFromPhoneNumber")
	}
	if !info.CanSend {
		return "", problem.Invalid("from", "%s does not have the SMS outbound capability", from).WithCode("InvalidFromPhoneNumber")
	}
	if info.Carrier == "" {
		return def, nil
	}
	if _, ok := s.carriers[info.Carrier]; ok {
		return info.Carrier, nil
	}
	return "", nil // carrierErr says why
}

// numberTTL is how long what Numbers said about a purchased number is trusted without asking
// again: a number released (or a capability removed) sends and receives for at most this long.
const numberTTL = time.Second

type numberEntry struct {
	info  NumberInfo
	until time.Time
}

// numberInfo is Numbers.SMSNumber, remembered for numberTTL when the number is purchased (most
// requests come from, and most inbound messages go to, a few numbers; each lookup is a store
// round trip).
func (s *Service) numberInfo(ctx context.Context, from string) (NumberInfo, error) {
	now := time.Now()
	s.smu.Lock()
	e, ok := s.numbersSeen[from]
	s.smu.Unlock()
	if ok && now.Before(e.until) {
		return e.info, nil
	}
	info, err := s.cfg.Numbers.SMSNumber(ctx, from)
	if err == nil && info.Purchased {
		s.smu.Lock()
		if len(s.numbersSeen) >= 10000 {
			clear(s.numbersSeen)
		}
		s.numbersSeen[from] = numberEntry{info: info, until: now.Add(numberTTL)}
		s.smu.Unlock()
	}
	return info, err
}

// carrierErr explains why from has no carrier: none is configured, or the number's carrier
// (from the inventory import) is not among sms.carriers.
func (s *Service) carrierErr(ctx context.Context, from string) error {
	unconfigured := func(format string, args ...any) error {
		return &problem.Error{Kind: problem.KindUnavailable, Code: "CarrierNotConfigured", Target: "from", Message: fmt.Sprintf(format, args...)}
	}
	if s.cfg.Numbers != nil {
		if info, err := s.cfg.Numbers.SMSNumber(ctx, from); err == nil && info.Carrier != "" {
			return unconfigured("%s sends through carrier %q, which is not configured in sms.carriers", from, info.Carrier)
		}
	}
	return unconfigured("no SMS carrier is configured in sms.carriers; %s cannot send", from)
}

// refuseAll fails every recipient of req with err, queueing nothing.
func (s *Service) refuseAll(req SendRequest, err error) []SendResult {
	results := make([]SendResult, len(req.Recipients))
	for i, r := range req.Recipients {
		results[i] = SendResult{To: r.To, Err: err}
	}
	s.log.Warn("sms refused: no carrier", "number", req.From, "err", err)
	return results
}

// OptOut records opt-outs (or opt-ins) of tos from from, for /sms/optouts:add|remove.
func (s *Service) OptOut(ctx context.Context, from string, tos []string, out bool) (map[string]error, error) {
	f, ok := e164.Clean(from)
	if !ok {
		return nil, problem.Invalid("from", "%q is not an E.164 phone number", from)
	}
	if n := len(tos); n < 1 || n > 100 {
		return nil, problem.Invalid("recipients", "between 1 and 100 recipients are allowed, got %d", n)
	}
	errs := map[string]error{}
	now := s.cfg.Now().UTC()
	err := s.cfg.Store.SMSTx(ctx, func(tx Tx) error {
		for _, t := range tos {
			to, ok := e164.Clean(t)
			if !ok {
				errs[t] = problem.Invalid("to", "%q is not an E.164 phone number", t)
				continue
			}
			if err := tx.OptOutSet(ctx, f, to, out, now); err != nil {
				return err
			}
		}
		return nil
	})
	return errs, err
}

// OptOutCheck reports, per recipient, whether it opted out of from (invalid numbers map to
// an error).
func (s *Service) OptOutCheck(ctx context.Context, from string, tos []string) (map[string]bool, map[string]error, error) {
	f, ok := e164.Clean(from)
	if !ok {
		return nil, nil, problem.Invalid("from", "%q is not an E.164 phone number", from)
	}
	if n := len(tos); n < 1 || n > 100 {
		return nil, nil, problem.Invalid("recipients", "between 1 and 100 recipients are allowed, got %d", n)
	}
	errs := map[string]error{}
	var valid []string
	for _, t := range tos {
		if to, ok := e164.Clean(t); ok {
			valid = append(valid, to)
		} else {
			errs[t] = problem.Invalid("to", "%q is not an E.164 phone number", t)
		}
	}
	res, err := s.cfg.Store.OptOutCheck(ctx, f, valid)
	return res, errs, err
}

// Message returns a message of the log.
func (s *Service) Message(ctx context.Context, id string) (Message, error) {
	return s.cfg.Store.MessageGet(ctx, id)
}

// Messages lists the message log.
func (s *Service) Messages(ctx context.Context, f MessageFilter) ([]Message, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	return s.cfg.Store.MessageList(ctx, f)
}

func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}
