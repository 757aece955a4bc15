package calls

import (
	"context"
	"errors"
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

// CreateCallParams are createCall's inputs (one PSTN target for now).
type CreateCallParams struct {
	Target Participant
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
	switch {
	case p.CallbackURI == "":
		return props, problem.Invalid("callbackUri", "callbackUri is required").WithCode("BadRequest")
	case p.Target.Kind == CommunicationUser:
		return props, problem.Unsupported("calling a communication user is not supported yet").WithCode("NotImplemented")
	case p.Target.Kind != PhoneNumber:
		return props, problem.Invalid("targets", "the target must be a phone number").WithCode("BadRequest")
	case p.SourceCallerID == "":
		return props, problem.Invalid("sourceCallerIdNumber", "sourceCallerIdNumber is required to call a phone number").WithCode("BadRequest")
	}
	if a.cfg.Numbers == nil {
		return props, problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", p.SourceCallerID).WithCode("Forbidden")
	}
	if _, err := a.cfg.Numbers.CallRoute(ctx, p.SourceCallerID); errors.Is(err, ErrUnknownNumber) {
		return props, problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", p.SourceCallerID).WithCode("Forbidden")
	} else if err != nil {
		return props, err
	}
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
		hangup: make(chan struct{}), done: make(chan struct{}), DisplayName: p.SourceDisplayName}
	a.mu.Lock()
	a.conns[conn.ID] = conn
	a.mu.Unlock()
	d.Dial(conn)
	return conn.Properties(), nil
}

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
