package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Dialer places calls for apps (createCall): the SIP edge sends the INVITE out through the SIP
// routes with telgw's own media and reports on the connection (Connected, Failed,
// Disconnected); it ends the call when the app hangs up (HangupRequested). Dial must not block.
type Dialer interface {
	Dial(conn *Connection)
}

// SetDialer sets who places calls for createCall (the SIP edge registers itself).
func (a *Automation) SetDialer(d Dialer) {
	a.mu.Lock()
	a.dialer = d
	a.mu.Unlock()
}

// CreateCallParams are createCall's inputs.
type CreateCallParams struct {
	// Target is the one target of a call to a phone number or a communication user.
	Target Participant
	// Targets, when it has two entries, makes a group call: each target gets a leg and the two
	// are bridged once both answered. With three or more (up to MaxParticipants) all ring at
	// once, the call connects when the first target answers and the others are invited into it
	// then (the transport hands over the legs it placed meanwhile; a conference: their audio is
	// mixed); each joining shows in ParticipantsUpdated.
	Targets []Participant
	// SourceCallerID is the caller id shown to the callee: one of the resource's numbers.
	SourceCallerID    string
	SourceDisplayName string
	CallbackURI       string
	OperationContext  string
}

// CreateCall places a call from the app to a phone number. It returns at once with the
// connection connecting; CallConnected or CreateCallFailed follows through the callbacks.
func (a *Automation) CreateCall(ctx context.Context, p CreateCallParams) (ConnectionProperties, error) {
	var props ConnectionProperties
	if len(p.Targets) > a.cfg.MaxParticipants {
		return props, problem.Invalid("targets", "a call takes at most %d targets (calls.maxParticipants), %d given", a.cfg.MaxParticipants, len(p.Targets)).WithCode("BadRequest")
	}
	if len(p.Targets) >= 2 {
		return a.createGroup(ctx, p)
	}
	switch {
	case p.CallbackURI == "":
		return props, problem.Invalid("callbackUri", "callbackUri is required").WithCode("BadRequest")
	case p.Target.Kind == CommunicationUser:
		if p.Target.ID == "" {
			return props, problem.Invalid("targets", "the communication user's id is required").WithCode("BadRequest")
		}
		if p.SourceCallerID != "" {
			if err := a.ownNumber(ctx, p.SourceCallerID); err != nil {
				return props, err
			}
		}
		return a.dial(p)
	case p.Target.Kind != PhoneNumber:
		return props, problem.Invalid("targets", "the target must be a phone number").WithCode("BadRequest")
	case p.SourceCallerID == "":
		return props, problem.Invalid("sourceCallerIdNumber", "sourceCallerIdNumber is required to call a phone number").WithCode("BadRequest")
	}
	if err := a.ownNumber(ctx, p.SourceCallerID); err != nil {
		return props, err
	}
	return a.dial(p)
}

// ownNumber checks that n is one of the resource's numbers (a caller id the app may show).
func (a *Automation) ownNumber(ctx context.Context, n string) error {
	if a.cfg.Numbers == nil {
		return problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", n).WithCode("Forbidden")
	}
	if _, err := a.cfg.Numbers.CallRoute(ctx, n); errors.Is(err, ErrUnknownNumber) {
		return problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", n).WithCode("Forbidden")
	} else if err != nil {
		return err
	}
	return nil
}

// dial hands a checked createCall to the Dialer.
func (a *Automation) dial(p CreateCallParams) (props ConnectionProperties, err error) {
	a.mu.Lock()
	d := a.dialer
	a.mu.Unlock()
	if d == nil {
		return props, &problem.Error{Kind: problem.KindUnavailable, Code: "ServiceUnavailable", Message: "calls cannot be placed: the SIP edge is not running"}
	}
	c := NewCall(time.Now(), Leg{Kind: LegBot, Participant: Participant{Kind: App, ID: p.CallbackURI}})
	c.SetDirection(Outbound)
	c.SetFrom(p.SourceCallerID)
	c.SetTo(p.Target.ID)
	c.UpdateCaller(func(l *Leg) { l.ID = c.ID })
	conn := &Connection{a: a, ID: newID(), call: c, callbackURI: p.CallbackURI, opCtx: p.OperationContext, state: StateConnecting,
		hangup: make(chan struct{}), done: make(chan struct{}), DisplayName: p.SourceDisplayName, targets: []Participant{p.Target}}
	if len(p.Targets) >= 2 {
		conn.targets = p.Targets
	}
	a.mu.Lock()
	a.conns[conn.ID] = conn
	a.mu.Unlock()
	d.Dial(conn)
	return conn.Properties(), nil
}

// Targets are who a call the app placed calls.
func (c *Connection) Targets() []Participant { return c.targets }

// Call is the call of the connection.
func (c *Connection) Call() *Call { return c.call }

// Failed records that a call the app placed never connected (ri says why) and sends
// CreateCallFailed; the connection is gone.
func (c *Connection) Failed(ri ResultInformation) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.state = StateDisconnected
		c.mu.Unlock()
		c.a.drop(c)
		close(c.done)
		c.send("Microsoft.Communication.CreateCallFailed", ri)
	})
}

// createGroup checks a group call of two targets or more: each a phone number (then the caller id must
// be one of the resource's) or a communication user.
func (a *Automation) createGroup(ctx context.Context, p CreateCallParams) (ConnectionProperties, error) {
	var props ConnectionProperties
	if p.CallbackURI == "" {
		return props, problem.Invalid("callbackUri", "callbackUri is required").WithCode("BadRequest")
	}
	for i, t := range p.Targets {
		field := fmt.Sprintf("targets[%d]", i)
		switch {
		case t.ID == "":
			return props, problem.Invalid(field, "the target's id is required").WithCode("BadRequest")
		case t.Kind == PhoneNumber && p.SourceCallerID == "":
			return props, problem.Invalid("sourceCallerIdNumber", "sourceCallerIdNumber is required to call a phone number").WithCode("BadRequest")
		case t.Kind != PhoneNumber && t.Kind != CommunicationUser:
			return props, problem.Invalid(field, "a target must be a phone number or a communication user").WithCode("BadRequest")
		case slices.Contains(p.Targets[:i], t):
			return props, problem.Invalid(field, "%s is already a target", t.ID).WithCode("BadRequest")
		}
	}
	if p.SourceCallerID != "" {
		if err := a.ownNumber(ctx, p.SourceCallerID); err != nil {
			return props, err
		}
	}
	p.Target = p.Targets[0]
	return a.dial(p)
}
