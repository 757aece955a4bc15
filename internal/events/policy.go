package events

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/policy"
)

// telgw's own event types, named like the Microsoft.Communication.* events so that the same
// subscriptions (eventTypes filters) select them.
const (
	// TypePolicyViolation: a call or message refused by the fraud policy.
	TypePolicyViolation = "Telgw.Communication.PolicyViolation"
	// TypeEmergencyCall: an emergency call (911, 933) was placed.
	TypeEmergencyCall = "Telgw.Communication.EmergencyCall"
)

// PolicyViolationData is the data of TypePolicyViolation.
type PolicyViolationData struct {
	// Channel is "call" or "sms".
	Channel string `json:"channel"`
	// Policy names the rule (kill-switch, destination-blocked, concurrent-calls, …).
	Policy string `json:"policy"`
	// Subject is the counted subject ("user:…", "credential:…", "number:…"), or empty.
	Subject    string    `json:"subject,omitempty"`
	Detail     string    `json:"detail"`
	CallID     string    `json:"callId,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	User       string    `json:"userId,omitempty"`
	Credential string    `json:"credential,omitempty"`
	Timestamp  time.Time `json:"timestamp"`
}

// EmergencyCallData is the data of TypeEmergencyCall.
type EmergencyCallData struct {
	CallID         string    `json:"callId"`
	Dialed         string    `json:"dialed"`
	CallbackNumber string    `json:"callbackNumber"`
	Trunk          string    `json:"trunk"`
	User           string    `json:"userId,omitempty"`
	Credential     string    `json:"credential,omitempty"`
	LocationSent   bool      `json:"locationSent"`
	Timestamp      time.Time `json:"timestamp"`
}

// PolicyEvents publishes the fraud controls' events to the webhooks, queued durably like the
// SMS events. It implements policy.Events; a queue failure is logged, never the caller's.
type PolicyEvents struct {
	// Dispatcher holds the subscriptions (required).
	Dispatcher *Dispatcher
	// Jobs enqueues outside any transaction (internal/store's *DB; required).
	Jobs JobInserter
	// Topic is the events' topic. Default "/telgw".
	Topic  string
	Logger *slog.Logger

	mu   sync.Mutex
	last map[string]time.Time // refusal events by policy and subject, for the 1-per-minute cap
}

// refusalInterval bounds the PolicyViolation events of one policy and subject: a leaked
// credential dialling premium numbers in a loop makes one event a minute, not one a call.
const refusalInterval = time.Minute

// quiet reports whether an event for key went out within refusalInterval, else notes one now.
func (p *PolicyEvents) quiet(key string, at time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	if t, ok := p.last[key]; ok && at.Sub(t) < refusalInterval {
		return true
	}
	if len(p.last) > 10000 {
		for k, t := range p.last {
			if at.Sub(t) >= refusalInterval {
				delete(p.last, k)
			}
		}
	}
	p.last[key] = at
	return false
}

var _ policy.Events = (*PolicyEvents)(nil)

func (p *PolicyEvents) publish(ctx context.Context, subject, typ string, at time.Time, data any, numbers ...string) {
	if p.Dispatcher == nil {
		return
	}
	topic := p.Topic
	if topic == "" {
		topic = "/telgw"
	}
	ev, err := New(uuid.NewString(), topic, subject, typ, at, data, numbers...)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = p.Dispatcher.PublishTx(ctx, p.Jobs, ev)
		cancel()
	}
	if err != nil && p.Logger != nil {
		p.Logger.Error("publish event", "type", typ, "err", err)
	}
}

// Refused publishes TypePolicyViolation, subject "/policy/{policy}", about the caller's
// number; at most one a minute per policy and subject.
func (p *PolicyEvents) Refused(ctx context.Context, r policy.Refusal) {
	who := r.Violation.Subject
	if who == "" {
		who = r.Subject.User + "|" + r.Subject.Credential + "|" + r.Subject.Number
	}
	if p.quiet(r.Violation.Policy+"|"+who, r.At) {
		return
	}
	p.publish(ctx, "/policy/"+r.Violation.Policy, TypePolicyViolation, r.At, PolicyViolationData{
		Channel: r.Channel, Policy: r.Violation.Policy, Subject: r.Violation.Subject, Detail: r.Violation.Detail, CallID: r.ID,
		From: r.From, To: r.To, User: r.Subject.User, Credential: r.Subject.Credential, Timestamp: r.At.UTC(),
	}, r.From)
}

// EmergencyCall publishes TypeEmergencyCall, subject "/emergency/{dialed}", about the callback
// number.
func (p *PolicyEvents) EmergencyCall(ctx context.Context, e policy.Emergency) {
	p.publish(ctx, "/emergency/"+e.Dialed, TypeEmergencyCall, e.At, EmergencyCallData{
		CallID: e.ID, Dialed: e.Dialed, CallbackNumber: e.CallbackNumber, Trunk: e.Trunk, User: e.Subject.User,
		Credential: e.Subject.Credential, LocationSent: e.Location, Timestamp: e.At.UTC(),
	}, e.CallbackNumber)
}
