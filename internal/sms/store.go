package sms

import (
	"context"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
)

// Status is a message's place in its life: queued → sent → delivered | failed.
type Status string

// The statuses.
const (
	StatusQueued    Status = "queued"
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
)

// Final reports whether no further change is expected.
func (s Status) Final() bool { return s == StatusDelivered || s == StatusFailed }

// Message is one outbound message to one recipient (the message log row).
type Message struct {
	ID             string
	From, To       string
	Text           string
	Tag            string
	DeliveryReport bool
	// Validity bounds retries and the wait for a receipt; 0 means the service default.
	Validity time.Duration
	// Carrier names the carrier the message goes (or went) through.
	Carrier string
	Status  Status
	// StatusDetails explains a failure or the final receipt.
	StatusDetails string
	// Segments is how many parts the carrier accepted; SegmentsSucceeded/Failed count the
	// parts whose final receipts said delivered/failed.
	Segments, SegmentsSucceeded, SegmentsFailed int
	// RepeatabilityRequestID and RepeatabilityFirstSent come from the request, if any.
	RepeatabilityRequestID string
	RepeatabilityFirstSent string
	// Attempts counts submissions to the carrier.
	Attempts int
	// NextAttempt holds a queued message back until then after a transient failure (zero:
	// due now).
	NextAttempt time.Time
	// KeywordReply marks telgw's answer to STOP, START or HELP. It is sent whatever the
	// recipient's opt-out: the STOP confirmation goes, by design, to a recipient who has just
	// opted out, and HELP is answered to opted-out recipients too (CTIA Messaging Principles
	// and Best Practices).
	KeywordReply bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// SentAt and DoneAt are zero until the carrier accepted / the final state arrived.
	SentAt, DoneAt time.Time
}

// Part is one accepted part of a message as recorded for receipt matching.
type Part struct {
	MessageID string
	// Seq is the 1-based part number.
	Seq int
	// Carrier and Key identify the part at the carrier (Key is receipt.Key of its id).
	Carrier, Key string
	// State is "" until a final receipt, then "delivered" or "failed".
	State string
}

// PartKey names a part at its carrier (Part.Carrier and Part.Key).
type PartKey struct {
	Carrier, Key string
}

// MessageFilter selects messages for the operator log.
type MessageFilter struct {
	// From, To and Status match exactly when set.
	From, To string
	Status   Status
	// Before lists messages created before this time (paging backwards); zero means now.
	Before time.Time
	// Limit caps the result; default 100, maximum 1000.
	Limit int
}

// ClaimParams selects the queued messages a carrier's sender takes to submit, and leases them
// to it.
type ClaimParams struct {
	// Carrier is the carrier whose messages are taken.
	Carrier string
	// Now is the current time: messages held back (NextAttempt) or leased until later are left.
	Now time.Time
	// Limit caps the batch.
	Limit int
	// Owner is the sender's process ("<node name>#<random>"): the claimed messages are leased to
	// it until Until. They stay queued; no claim takes them until the lease ends, and their
	// outcome is recorded only while Owner still holds them (Tx.MessagesLeased).
	Owner string
	Until time.Time
}

// SentParams records messages the carrier accepted (Tx.MessagesSent).
type SentParams struct {
	// Owner is the sender's lease: messages no longer leased to it are left alone.
	Owner string
	// Sent are the messages, each with its segment count and attempts.
	Sent []SentMessage
	// Parts are the accepted parts of the messages, for receipt matching.
	Parts []Part
	// At is when the carrier accepted them.
	At time.Time
}

// SentMessage is one message of SentParams.
type SentMessage struct {
	ID                 string
	Segments, Attempts int
}

// Queued is a claimed message with what the sender needs to know about it.
type Queued struct {
	Message
	// OptedOut reports that the recipient opted out of the sender since the message was
	// accepted.
	OptedOut bool
}

// Tx is the work the SMS domain does inside one store transaction. Its InsertJob is the
// outbox: send jobs and webhook deliveries inserted through it commit with the rows.
type Tx interface {
	events.JobInserter
	// InsertJobs inserts several jobs in one statement (the outbox, as InsertJob).
	InsertJobs(ctx context.Context, jobs []river.InsertManyParams) error
	// MessagesInsert inserts ms (in one statement where it can); a repeated repeatability id
	// gives problem.ErrConflict.
	MessagesInsert(ctx context.Context, ms []Message) error
	// MessagesByRepeatability maps the given repeatability ids to the messages sent under
	// them (ids never seen are absent).
	MessagesByRepeatability(ctx context.Context, requestIDs []string) (map[string]Message, error)
	// MessagesMarkSent moves queued messages to sent with their segment count and attempts
	// and returns the ids it moved (those no longer queued are left alone).
	MessagesMarkSent(ctx context.Context, ids []string, segments, attempts int, at time.Time) ([]string, error)
	// MessagesRetry holds queued messages back until next after a transient failure, with
	// their attempts counted and their leases ended (those no longer queued are left alone).
	MessagesRetry(ctx context.Context, ids []string, attempts int, next, at time.Time) error
	// MessagesSent moves the queued messages of p.Sent that are still leased to p.Owner to sent
	// and records the parts of those it moved (replacing older parts with the same carrier
	// key), in one statement where the store can, and returns the ids it moved.
	MessagesSent(ctx context.Context, p SentParams) ([]string, error)
	// MessagesLeased locks the queued messages among ids that are still leased to owner and
	// returns their ids: the guard of a sender's outcomes (a message whose lease expired and
	// went to another claim is that claim's now).
	MessagesLeased(ctx context.Context, owner string, ids []string) ([]string, error)
	// MessageGetForUpdate reads and locks a message.
	MessageGetForUpdate(ctx context.Context, id string) (Message, error)
	// MessageUpdate writes status, details, segment counts, attempts, carrier and times.
	MessageUpdate(ctx context.Context, m Message) error
	// MessagesUpdate is MessageUpdate of several messages (each at most once), in one
	// statement where the store can.
	MessagesUpdate(ctx context.Context, ms []Message) error
	// PartsAdd records the accepted parts of a message (replacing older parts with the same
	// carrier key, since SMSCs reuse ids eventually).
	PartsAdd(ctx context.Context, parts []Part) error
	// PartByKey finds the part a receipt id refers to: keys are the candidates of
	// receipt.Candidates, the newest matching part wins.
	PartByKey(ctx context.Context, carrier string, keys []string) (Part, error)
	// PartSetState records a part's final state.
	PartSetState(ctx context.Context, p Part) error
	// PartsByKeys returns the parts of carrier whose keys are among keys, newest first (the
	// bulk PartByKey of a batch of receipts).
	PartsByKeys(ctx context.Context, carrier string, keys []string) ([]Part, error)
	// PartsSetState records final states of several parts (PartSetState for a batch).
	PartsSetState(ctx context.Context, parts []Part) error
	// MessagesGetForUpdate reads and locks the messages with the given ids that exist.
	MessagesGetForUpdate(ctx context.Context, ids []string) ([]Message, error)
	// PartsForReceipts is the lookup of a batch of receipts: the parts stored under keys,
	// newest first among those of one carrier, and their messages, read and locked (in one
	// statement where the store can: PartsByKeys and MessagesGetForUpdate).
	PartsForReceipts(ctx context.Context, keys []PartKey) ([]Part, []Message, error)
	// ReceiptsRecord writes the final states of parts and the messages they changed, each
	// message at most once (PartsSetState and MessagesUpdate, in one statement where the
	// store can).
	ReceiptsRecord(ctx context.Context, parts []Part, msgs []Message) error
	// OptOutSet opts to out of (or back into) messages from from.
	OptOutSet(ctx context.Context, from, to string, optedOut bool, at time.Time) error
}

// Store is the SMS domain's persistence. Implementations: internal/store.
type Store interface {
	// SMSTx runs fn in one transaction, committing when it returns nil.
	SMSTx(ctx context.Context, fn func(tx Tx) error) error
	// MessageGet reads a message or returns problem.ErrNotFound.
	MessageGet(ctx context.Context, id string) (Message, error)
	// MessagesGet reads the messages with the given ids that exist.
	MessagesGet(ctx context.Context, ids []string) ([]Message, error)
	// MessageList lists messages newest first.
	MessageList(ctx context.Context, f MessageFilter) ([]Message, error)
	// OptOutCheck reports which of tos opted out of messages from from.
	OptOutCheck(ctx context.Context, from string, tos []string) (map[string]bool, error)
	// MessagesClaim takes up to p.Limit queued messages of p.Carrier that are due (retry time
	// come, not leased: never, expired, or ended), oldest first, each the oldest queued message
	// to its destination (so messages to one recipient go in the order they were accepted),
	// and leases them to p.Owner until p.Until, in one committed statement. Concurrent claims,
	// on any node sharing the store, never take one message twice.
	MessagesClaim(ctx context.Context, p ClaimParams) ([]Queued, error)
	// MessagesUnlease ends owner's leases of the given queued messages (a failed outcome
	// commit: they are due again at once).
	MessagesUnlease(ctx context.Context, owner string, ids []string) error
	// MessagesLeasesRecover ends, as a node starts, the leases its earlier processes left (a
	// kill -9): those whose owner starts with prefix ("<node name>#"), except keep's. On a
	// store that serves one node (SQLite) it ends every lease. It returns how many it ended.
	MessagesLeasesRecover(ctx context.Context, prefix, keep string) (int, error)
	// QueuedCarriers lists the carriers that queued messages wait for.
	QueuedCarriers(ctx context.Context) ([]string, error)
	// MessagesAccept durably stores ms in one step of its own (an accepted POST /sms), except
	// the messages whose repeatability id is taken: by a stored message, or by an earlier
	// message of ms. It returns the holders of the ids some message did not get: a message
	// was stored unless the map gives its repeatability id another message's id. An id left
	// out whose holder cannot be read (removed meanwhile) gives problem.ErrConflict. On an
	// error the messages may still have been stored (a repeated request finds them).
	MessagesAccept(ctx context.Context, ms []Message) (map[string]string, error)
	// MessagesSentAlone is Tx.MessagesSent as a durable step of its own (on PostgreSQL one
	// statement, with no BEGIN and COMMIT round trips): the outcome commit of a sender whose
	// answers were all accepted and wait for no delivery report.
	MessagesSentAlone(ctx context.Context, p SentParams) ([]string, error)
}

// Events publishes events inside a store transaction; *events.Dispatcher implements it.
type Events interface {
	PublishTx(ctx context.Context, tx events.JobInserter, evs ...events.Event) error
}

// Numbers answers what telgw knows about its own phone numbers (internal/numbers).
type Numbers interface {
	// SMSNumber reports whether e164 is a purchased number, whether it may send and receive
	// SMS, and the carrier recorded for it at import ("" when none).
	SMSNumber(ctx context.Context, e164 string) (NumberInfo, error)
}

// NumberInfo is what Numbers reports.
type NumberInfo struct {
	Purchased           bool
	CanSend, CanReceive bool
	Carrier             string
}
