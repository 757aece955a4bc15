package calls

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// AutomationConfig configures the Call Automation engine.
type AutomationConfig struct {
	// Publisher publishes IncomingCall events. Nil: no app can learn of a call, so calls to
	// bot-routed numbers are refused at once (the SIP edge answers 480).
	Publisher IncomingCallPublisher
	// Callbacks delivers mid-call events to apps' callbackUri. Nil: they are dropped.
	Callbacks Callbacks
	// Keys are the incomingCallContext signing keys (CallContextKey of each access key): the
	// first signs, any verifies. Nil: a random key of this process.
	Keys func() [][]byte
	// Node names this node in the contexts it signs. Default "local".
	Node string
	// Logger logs decisions; default discards.
	Logger *slog.Logger
	// Numbers tells which numbers are the resource's (createCall's sourceCallerIdNumber must
	// be one); nil: none is.
	Numbers Router
	// IncomingCallEvents offers apps (IncomingCall) the calls to the resource's numbers that
	// have no route of their own, as if routed to an app. Default false.
	IncomingCallEvents bool
	// DecisionTimeout bounds how long an operation waits for the transport to carry it out
	// (send the 200, the final response, the BYE). Default 35 s (a 2xx waits up to 32 s for
	// its ACK, RFC 3261 §13.3.1.4).
	DecisionTimeout time.Duration
	// MaxParticipants is how many people a call connection holds besides the app (addParticipant
	// and createCall's targets beyond it answer 400). Default DefaultMaxParticipants; at most
	// MaxParticipantsLimit.
	MaxParticipants int
}

// Automation is the Call Automation engine: calls to bot-routed numbers wait here for their
// app's decision (answer, reject, redirect), and answered calls become call connections the
// app controls (get, hang up, terminate) and hears of through callbacks. It is the domain side;
// the SIP edge carries the decisions out (Incoming, Decision, Connection) and the REST edge
// calls its operations. Safe for concurrent use.
type Automation struct {
	cfg     AutomationConfig
	log     *slog.Logger
	mu      sync.Mutex
	waiting map[string]*Incoming   // by serverCallId
	conns   map[string]*Connection // by callConnectionId
	dialer  Dialer                 // places calls for createCall; nil until the SIP edge runs
}

// NewAutomation builds the engine.
func NewAutomation(cfg AutomationConfig) (*Automation, error) {
	if cfg.Node == "" {
		cfg.Node = "local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DecisionTimeout <= 0 {
		cfg.DecisionTimeout = 35 * time.Second
	}
	if cfg.MaxParticipants <= 0 {
		cfg.MaxParticipants = DefaultMaxParticipants
	}
	cfg.MaxParticipants = min(cfg.MaxParticipants, MaxParticipantsLimit)
	if cfg.Keys == nil {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		cfg.Keys = func() [][]byte { return [][]byte{k} }
	}
	return &Automation{cfg: cfg, log: cfg.Logger, waiting: map[string]*Incoming{}, conns: map[string]*Connection{}}, nil
}

// Enabled reports whether apps can be told of incoming calls (a publisher is configured).
func (a *Automation) Enabled() bool { return a != nil && a.cfg.Publisher != nil }

// OffersUnrouted reports whether a call to one of the resource's numbers without a route of
// its own goes to the apps (AutomationConfig.IncomingCallEvents).
func (a *Automation) OffersUnrouted() bool { return a.Enabled() && a.cfg.IncomingCallEvents }

// DecisionKind is what an app decided for a waiting call.
type DecisionKind int

// Decisions.
const (
	// DecideAnswer: answer the call; media terminates at telgw; it becomes Decision.Conn.
	DecideAnswer DecisionKind = iota + 1
	// DecideReject: refuse the call with Decision.SIPCode.
	DecideReject
	// DecideRedirect: send the call on to Decision.Target; the app leaves it.
	DecideRedirect
)

// Decision is an app's decision for a waiting call, for the transport to carry out. The
// transport reports how that went with Done (exactly once).
type Decision struct {
	Kind DecisionKind
	// SIPCode and Reason are the final response of a reject.
	SIPCode int
	Reason  string
	// Target is where a redirect goes.
	Target Participant
	// Conn is the call connection an answer creates.
	Conn *Connection

	done chan error
}

// Done reports the outcome: nil when carried out; for a redirect, an error (ErrNoRoute, …)
// leaves the call waiting for another decision.
func (d *Decision) Done(err error) {
	select {
	case d.done <- err:
	default:
	}
}

// Incoming is a call waiting for its app's decision. The transport holds the caller ringing,
// takes decisions from Decisions, and Closes it when the call stops waiting (decided, ring
// timeout, caller gone).
type Incoming struct {
	a         *Automation
	call      *Call
	route     BotRoute
	decisions chan *Decision
	gone      chan struct{}
	mu        sync.Mutex
	taken     bool // a decision is on its way or carried out
	closed    bool
}

// Decisions delivers the app's decision.
func (in *Incoming) Decisions() <-chan *Decision { return in.decisions }

// Close ends the wait: later operations with its context are 404. A decision already queued
// but not taken is answered with the call gone.
func (in *Incoming) Close() {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return
	}
	in.closed = true
	close(in.gone)
	in.mu.Unlock()
	in.a.mu.Lock()
	if in.a.waiting[in.call.ID] == in {
		delete(in.a.waiting, in.call.ID)
	}
	in.a.mu.Unlock()
	select {
	case d := <-in.decisions:
		d.Done(errContextGone)
	default:
	}
}

// take reserves the call for one decision; false when another one is under way or it ended.
func (in *Incoming) take() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.taken || in.closed {
		return false
	}
	in.taken = true
	return true
}

func (in *Incoming) untake() {
	in.mu.Lock()
	in.taken = false
	in.mu.Unlock()
}

// OfferParams describe a call for a bot-routed number.
type OfferParams struct {
	Call  *Call
	Route BotRoute
	// CallerDisplayName is the caller's display name, if any.
	CallerDisplayName string
	// CustomContext are the INVITE's custom headers (X-MS-Custom-*, User-To-User).
	CustomContext map[string]string
	// Expires is when the caller stops ringing (the ring timeout): the context expires then.
	Expires time.Time
}

// Offer publishes IncomingCall for a call to a bot-routed number and returns the call waiting
// for its app's decision. Without a publisher, or when the publisher fails, it returns
// ErrUnavailable (the caller is refused at once instead of ringing for nobody).
func (a *Automation) Offer(ctx context.Context, p OfferParams) (*Incoming, error) {
	if !a.Enabled() {
		return nil, fmt.Errorf("no incoming call publisher: %w", ErrUnavailable)
	}
	c := p.Call
	in := &Incoming{a: a, call: c, route: p.Route, decisions: make(chan *Decision, 1), gone: make(chan struct{})}
	a.mu.Lock()
	a.waiting[c.ID] = in
	a.mu.Unlock()
	ic := IncomingCall{To: Phone(c.To()), From: Phone(c.From()), CallerDisplayName: p.CallerDisplayName,
		ServerCallID: c.ID, CorrelationID: c.CorrelationID, CustomContext: p.CustomContext, At: c.Start(),
		IncomingCallContext: signCallContext(a.cfg.Keys()[0], c.ID, a.cfg.Node, p.Expires)}
	if err := a.cfg.Publisher.PublishIncomingCall(ctx, ic); err != nil {
		in.Close()
		return nil, fmt.Errorf("publish incoming call: %w: %w", ErrUnavailable, err)
	}
	return in, nil
}

// waitingFor finds the waiting call of an incomingCallContext.
func (a *Automation) waitingFor(token string) (*Incoming, error) {
	cl, err := verifyCallContext(a.cfg.Keys(), token, time.Now())
	if err != nil {
		return nil, err
	}
	if cl.Node != a.cfg.Node {
		return nil, errContextGone
	}
	a.mu.Lock()
	in := a.waiting[cl.ServerCallID]
	a.mu.Unlock()
	if in == nil {
		return nil, errContextGone
	}
	return in, nil
}

// decide hands d to the waiting call of token and waits for the transport to carry it out.
func (a *Automation) decide(ctx context.Context, token string, d *Decision) error {
	in, err := a.waitingFor(token)
	if err != nil {
		return err
	}
	if !in.take() {
		return problem.Conflict("incomingCallContext", "another operation on this call is under way or done").WithCode("Conflict")
	}
	d.done = make(chan error, 1)
	if d.Conn != nil {
		d.Conn.call = in.call
		a.mu.Lock()
		a.conns[d.Conn.ID] = d.Conn
		a.mu.Unlock()
	}
	in.decisions <- d // buffered, and take admits one decision at a time
	t := time.NewTimer(a.cfg.DecisionTimeout)
	defer t.Stop()
	select {
	case err = <-d.done:
	case <-in.gone:
		select {
		case err = <-d.done:
		default:
			err = errContextGone
		}
	case <-t.C:
		err = fmt.Errorf("decision not carried out in %s: %w", a.cfg.DecisionTimeout, ErrUnavailable)
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		in.Close() // decided: its context is spent
	} else {
		if d.Conn != nil {
			a.drop(d.Conn)
		}
		if d.Kind == DecideRedirect {
			in.untake()
		}
	}
	return edgeError(err)
}

// edgeError classifies a transport's error for the REST edge.
func edgeError(err error) error {
	switch {
	case err == nil:
		return nil
	case problem.KindOf(err) != problem.KindInternal:
		return err
	case errors.Is(err, ErrNoRoute), errors.Is(err, ErrUnknownNumber):
		return problem.Invalid("target", "no route reaches the target: %v", err).WithCode("BadRequest")
	case errors.Is(err, ErrForbidden):
		return problem.Forbidden("target", "%v", err).WithCode("Forbidden")
	case errors.Is(err, ErrUnavailable):
		return &problem.Error{Kind: problem.KindUnavailable, Code: "ServiceUnavailable", Message: "the call could not be handled now", Err: err}
	}
	return err
}

// AnswerParams are answerCall's inputs.
type AnswerParams struct {
	IncomingCallContext string
	CallbackURI         string
	OperationContext    string
}

// Answer answers a waiting call: telgw takes the caller's media and the call becomes a call
// connection the app controls. It returns once the caller has the 200 (CallConnected follows
// through the callbacks).
func (a *Automation) Answer(ctx context.Context, p AnswerParams) (props ConnectionProperties, err error) {
	if p.IncomingCallContext == "" {
		return props, problem.Invalid("incomingCallContext", "incomingCallContext is required").WithCode("BadRequest")
	}
	if p.CallbackURI == "" {
		return props, problem.Invalid("callbackUri", "callbackUri is required").WithCode("BadRequest")
	}
	conn := &Connection{a: a, ID: newID(), callbackURI: p.CallbackURI, opCtx: p.OperationContext, state: StateConnecting,
		hangup: make(chan struct{}), done: make(chan struct{})}
	if err := a.decide(ctx, p.IncomingCallContext, &Decision{Kind: DecideAnswer, Conn: conn}); err != nil {
		return props, err
	}
	return conn.Properties(), nil
}

// RejectReason is answerCall's callRejectReason.
type RejectReason string

// Reject reasons (CallRejectReason).
const (
	RejectNone      RejectReason = "none"
	RejectBusy      RejectReason = "busy"
	RejectForbidden RejectReason = "forbidden"
)

// RejectStatus is the SIP final response a reject reason gives the caller: busy 486,
// forbidden 403, none 603 Decline (RFC 3261 §21.6.2: the callee declined).
func RejectStatus(r RejectReason) (int, string, error) {
	switch r {
	case "", RejectNone:
		return 603, "Decline", nil
	case RejectBusy:
		return 486, "Busy Here", nil
	case RejectForbidden:
		return 403, "Forbidden", nil
	}
	return 0, "", problem.Invalid("callRejectReason", "unknown callRejectReason %q (none, busy, forbidden)", string(r)).WithCode("BadRequest")
}

// Reject refuses a waiting call with reason.
func (a *Automation) Reject(ctx context.Context, incomingCallContext string, reason RejectReason) (err error) {
	code, phrase, err := RejectStatus(reason)
	if err != nil {
		return err
	}
	if incomingCallContext == "" {
		return problem.Invalid("incomingCallContext", "incomingCallContext is required").WithCode("BadRequest")
	}
	return a.decide(ctx, incomingCallContext, &Decision{Kind: DecideReject, SIPCode: code, Reason: phrase})
}

// Redirect sends a waiting call on to target: a phone number out through the SIP routes, or a
// communication user (the caller rings the user's registered WebRTC devices; the first to
// answer wins). A phone number no route reaches is refused and the call keeps waiting.
func (a *Automation) Redirect(ctx context.Context, incomingCallContext string, target Participant) (err error) {
	if incomingCallContext == "" {
		return problem.Invalid("incomingCallContext", "incomingCallContext is required").WithCode("BadRequest")
	}
	switch target.Kind {
	case PhoneNumber:
	case CommunicationUser:
		if target.ID == "" {
			return problem.Invalid("target", "the communication user's id is required").WithCode("BadRequest")
		}
	default:
		return problem.Invalid("target", "target must be a phone number or a communication user").WithCode("BadRequest")
	}
	return a.decide(ctx, incomingCallContext, &Decision{Kind: DecideRedirect, Target: target})
}
