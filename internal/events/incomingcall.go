package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/calls"
)

// The River queues of Call Automation deliveries, apart from the default queue and from each
// other so that neither a backlog of SMS webhooks nor callback URLs that hang (each holding a
// worker up to the client timeout) ever delay the IncomingCall of a ringing call. Every node
// that works jobs must run both (internal/app does).
const (
	// QueueCalls carries IncomingCall events.
	QueueCalls = "calls"
	// QueueCallbacks carries mid-call callbacks.
	QueueCallbacks = "callbacks"
)

const (
	// urgentMaxAttempts bounds the attempts of an expiring event; expiry ends it sooner.
	urgentMaxAttempts = 20
	// urgentMaxBackoff caps the wait between attempts of an expiring event.
	urgentMaxBackoff = 2 * time.Second
	// DefaultIncomingCallMaxAge is how long an IncomingCall is worth delivering: ACS rings
	// an unanswered call for 30 s, after which its incomingCallContext is useless.
	DefaultIncomingCallMaxAge = 30 * time.Second
)

// CommunicationIdentifier is CommunicationIdentifierModel (common.json 2023-11-15): rawId
// and kind always, plus the one property of the kind.
type CommunicationIdentifier struct {
	RawID             string             `json:"rawId"`
	Kind              string             `json:"kind"`
	PhoneNumber       *PhoneNumberID     `json:"phoneNumber,omitempty"`
	CommunicationUser *CommunicationUser `json:"communicationUser,omitempty"`
}

// PhoneNumberID is PhoneNumberIdentifierModel.
type PhoneNumberID struct {
	Value string `json:"value"`
}

// CommunicationUser is CommunicationUserIdentifierModel.
type CommunicationUser struct {
	ID string `json:"id"`
}

// Identifier renders a call participant as ACS names it: a phone number's rawId is "4:" and
// the number, a communication user's rawId is its id; anything else is kind "unknown".
func Identifier(p calls.Participant) CommunicationIdentifier {
	switch p.Kind {
	case calls.PhoneNumber:
		return CommunicationIdentifier{RawID: "4:" + p.ID, Kind: "phoneNumber", PhoneNumber: &PhoneNumberID{Value: p.ID}}
	case calls.CommunicationUser:
		return CommunicationIdentifier{RawID: p.ID, Kind: "communicationUser", CommunicationUser: &CommunicationUser{ID: p.ID}}
	}
	return CommunicationIdentifier{RawID: p.ID, Kind: "unknown"}
}

// IncomingCallCustomContext is AcsIncomingCallCustomContext.
type IncomingCallCustomContext struct {
	SIPHeaders  map[string]string `json:"sipHeaders"`
	VoIPHeaders map[string]string `json:"voipHeaders"`
}

// IncomingCallData is AcsIncomingCallEventData.
type IncomingCallData struct {
	To                  CommunicationIdentifier   `json:"to"`
	From                CommunicationIdentifier   `json:"from"`
	CallerDisplayName   string                    `json:"callerDisplayName"`
	ServerCallID        string                    `json:"serverCallId"`
	CorrelationID       string                    `json:"correlationId"`
	IncomingCallContext string                    `json:"incomingCallContext"`
	CustomContext       IncomingCallCustomContext `json:"customContext"`
}

// IncomingCallEvent builds the Event Grid event Microsoft.Communication.IncomingCall of ic,
// subject "/caller/{from rawId}/recipient/{to rawId}" as ACS sets it; the callee's number is
// what phone-number filters match.
func IncomingCallEvent(id, topic string, ic calls.IncomingCall) (Event, error) {
	to, from := Identifier(ic.To), Identifier(ic.From)
	cc := IncomingCallCustomContext{SIPHeaders: map[string]string{}, VoIPHeaders: map[string]string{}}
	for k, v := range ic.CustomContext {
		cc.SIPHeaders[k] = v
	}
	at := ic.At
	if at.IsZero() {
		at = time.Now()
	}
	var numbers []string
	if ic.To.Kind == calls.PhoneNumber {
		numbers = append(numbers, ic.To.ID)
	}
	return New(id, topic, "/caller/"+from.RawID+"/recipient/"+to.RawID, TypeIncomingCall, at, IncomingCallData{
		To: to, From: from, CallerDisplayName: ic.CallerDisplayName, ServerCallID: ic.ServerCallID,
		CorrelationID: ic.CorrelationID, IncomingCallContext: ic.IncomingCallContext, CustomContext: cc,
	}, numbers...)
}

// IncomingCalls publishes IncomingCall events to the webhooks subscribed to them. Each
// delivery is first attempted at once from the node that took the INVITE (in the background:
// the caller's path never waits on a subscriber), which keeps the INVITE → webhook latency to
// one HTTP round trip; a delivery that fails becomes a durable job on QueueCalls at top
// priority, so any node's workers retry it within seconds until the call can no longer be
// answered. It implements calls.IncomingCallPublisher.
type IncomingCalls struct {
	// Dispatcher holds the subscriptions (required).
	Dispatcher *Dispatcher
	// Jobs enqueues outside any transaction (internal/store's *DB; required).
	Jobs JobInserter
	// Topic is the events' topic. Default "/telgw", as the SMS events.
	Topic string
	// MaxAge is how long after the INVITE a delivery is still attempted. Default
	// DefaultIncomingCallMaxAge.
	MaxAge time.Duration
	// QueueOnly skips the direct first attempt: every delivery goes through the queue.
	QueueOnly bool
	// Logger logs deliveries that could not even be queued; default discards.
	Logger *slog.Logger

	inflight sync.WaitGroup
}

var _ calls.IncomingCallPublisher = (*IncomingCalls)(nil)

// ErrNoSubscriber: no webhook is subscribed to the IncomingCall of this number, so no app can
// answer it; the caller is refused at once rather than left ringing for nobody.
var ErrNoSubscriber = errors.New("no webhook is subscribed to this number's IncomingCall events")

// directTimeout bounds the direct first attempt; a slower subscriber is retried from the
// queue.
const directTimeout = 3 * time.Second

// PublishIncomingCall sends the event to every matching subscription and returns; no
// subscriber is dialled on the caller's path. With QueueOnly it fails when the queue cannot
// be written; otherwise failures are logged (the direct attempt runs after it returns).
func (p *IncomingCalls) PublishIncomingCall(ctx context.Context, ic calls.IncomingCall) error {
	topic := p.Topic
	if topic == "" {
		topic = "/telgw"
	}
	maxAge := p.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultIncomingCallMaxAge
	}
	ev, err := IncomingCallEvent(uuid.NewString(), topic, ic)
	if err != nil {
		return fmt.Errorf("incoming call event: %w", err)
	}
	at := ic.At
	if at.IsZero() {
		at = time.Now()
	}
	expires := at.Add(maxAge)
	if p.QueueOnly {
		n, err := p.Dispatcher.publishUrgent(ctx, p.Jobs, expires, ev)
		if err != nil {
			return fmt.Errorf("publish incoming call %s: %w", ic.ServerCallID, err)
		}
		if n == 0 {
			return ErrNoSubscriber
		}
		return nil
	}
	args, err := p.Dispatcher.jobs([]Event{ev})
	if err != nil {
		return fmt.Errorf("incoming call event: %w", err)
	}
	if len(args) == 0 {
		return ErrNoSubscriber
	}
	for _, a := range args {
		a.ExpiresAt = expires.UTC()
		p.inflight.Add(1)
		go p.direct(a)
	}
	return nil
}

// direct attempts one delivery at once; a failure (other than 410 or a refused address, which
// retrying cannot mend) is queued for the workers' retries.
func (p *IncomingCalls) direct(a DeliverArgs) {
	defer p.inflight.Done()
	d := p.Dispatcher
	ctx, cancel := context.WithTimeout(context.Background(), min(directTimeout, time.Until(a.ExpiresAt)))
	defer cancel()
	err := d.deliverArgs(ctx, a)
	if err == nil || errors.Is(err, errGone) || errors.Is(err, ErrBlockedAddress) || errors.Is(err, errExpired) {
		return
	}
	ictx, icancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer icancel()
	if err := p.Jobs.InsertJob(ictx, a, &river.InsertOpts{Queue: QueueCalls, Priority: 1, MaxAttempts: urgentMaxAttempts,
		ScheduledAt: time.Now().Add(urgentMaxBackoff / 4)}); err != nil {
		log := p.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		log.Warn("incoming call event not queued for retry", "subscription", a.SubscriptionID, "event", a.EventID, "err", err)
	}
}

// Wait waits for the direct attempts under way (at most directTimeout each).
func (p *IncomingCalls) Wait() { p.inflight.Wait() }
