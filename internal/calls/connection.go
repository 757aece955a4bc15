package calls

import (
	"context"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// ConnectionState is a call connection's callConnectionState.
type ConnectionState string

// Call connection states (CallConnectionStateModel).
const (
	StateConnecting    ConnectionState = "connecting"
	StateConnected     ConnectionState = "connected"
	StateDisconnecting ConnectionState = "disconnecting"
	StateDisconnected  ConnectionState = "disconnected"
)

// Connection is an app's call connection: a call the app answered (or placed) and controls.
// The transport reports its progress (Connected, Disconnected) and ends the call when the app
// asks (HangupRequested).
type Connection struct {
	// ID is the callConnectionId.
	ID string
	// DisplayName is the caller's display name of a call the app placed.
	DisplayName string

	a           *Automation
	call        *Call
	callbackURI string
	opCtx       string
	targets     []Participant // of a call the app placed

	mu      sync.Mutex
	state   ConnectionState
	hangup  chan struct{}
	hangMu  sync.Once
	done    chan struct{}
	endOnce sync.Once

	parts roster // participants and their operations (participants.go)
}

// ConnectionProperties is what getCall shows of a call connection (CallConnectionProperties).
type ConnectionProperties struct {
	CallConnectionID string
	ServerCallID     string
	CorrelationID    string
	State            ConnectionState
	CallbackURI      string
	// Source is the caller; Targets are who was called (the bot-routed number).
	Source  Participant
	Targets []Participant
}

// Properties is the connection's current view.
func (c *Connection) Properties() ConnectionProperties {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	targets := c.targets
	if len(targets) == 0 {
		targets = []Participant{Phone(c.call.To())}
	}
	return ConnectionProperties{CallConnectionID: c.ID, ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID,
		State: st, CallbackURI: c.callbackURI, Source: Phone(c.call.From()), Targets: targets}
}

// HangupRequested is closed when the app hangs up or terminates the call.
func (c *Connection) HangupRequested() <-chan struct{} { return c.hangup }

// ResultInformation is a callback's resultInformation: SIP code, sub-code and message.
type ResultInformation struct {
	Code    int    `json:"code"`
	SubCode int    `json:"subCode"`
	Message string `json:"message"`
}

// callbackData is the data of CallConnected and CallDisconnected.
type callbackData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	OperationContext  string            `json:"operationContext,omitempty"`
	ResultInformation ResultInformation `json:"resultInformation"`
}

// Connected records that the caller is connected (the 2xx was acknowledged) and sends
// CallConnected.
func (c *Connection) Connected() {
	c.mu.Lock()
	if c.state != StateConnecting {
		c.mu.Unlock()
		return
	}
	c.state = StateConnected
	c.mu.Unlock()
	c.send("Microsoft.Communication.CallConnected", ResultInformation{Code: 200, Message: "Call connected."})
	c.inviteTargets()
}

// Disconnected records the end of the call (ri says why) and sends CallDisconnected; later
// operations on the connection are 404.
func (c *Connection) Disconnected(ri ResultInformation) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.state = StateDisconnected
		c.mu.Unlock()
		c.a.drop(c)
		close(c.done)
		c.send("Microsoft.Communication.CallDisconnected", ri)
	})
}

func (c *Connection) send(typ string, ri ResultInformation) {
	cb := c.a.cfg.Callbacks
	if cb == nil || c.callbackURI == "" {
		return
	}
	ev := CallbackEvent{ID: newID(), Type: typ, Subject: "calling/callConnections/" + c.ID, Time: time.Now().UTC(),
		Data: callbackData{CallConnectionID: c.ID, ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID,
			OperationContext: c.opCtx, ResultInformation: ri}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cb.Send(ctx, c.callbackURI, ev); err != nil {
		c.a.log.Warn("callback not queued", "call_id", c.call.ID, "type", typ, "err", err)
	}
}

func (a *Automation) drop(c *Connection) {
	a.mu.Lock()
	if a.conns[c.ID] == c {
		delete(a.conns, c.ID)
	}
	a.mu.Unlock()
}

var errNoConnection = problem.NotFound("callConnectionId", "no call connection with this id (it may have ended)").WithCode("NotFound")

func (a *Automation) connection(id string) (*Connection, error) {
	a.mu.Lock()
	c := a.conns[id]
	a.mu.Unlock()
	if c == nil {
		return nil, errNoConnection
	}
	return c, nil
}

// Connection returns a call connection's properties; an unknown or ended one is not found.
func (a *Automation) Connection(_ context.Context, id string) (props ConnectionProperties, err error) {
	c, err := a.connection(id)
	if err != nil {
		return props, err
	}
	return c.Properties(), nil
}

// HangUp ends the app's part in a call; with a two-party call (the caller and the app) that
// ends the call, with two people or more on it they talk on without the app. It returns once the
// app's connection ended, or ctx is done.
func (a *Automation) HangUp(ctx context.Context, id string) (err error) {
	if c, err := a.connection(id); err == nil {
		c.parts.leaving.Store(true)
	}
	return a.hangUp(ctx, id)
}

// Terminate ends the call for everyone.
func (a *Automation) Terminate(ctx context.Context, id string) (err error) {
	return a.hangUp(ctx, id)
}

func (a *Automation) hangUp(ctx context.Context, id string) error {
	c, err := a.connection(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.state == StateConnected || c.state == StateConnecting {
		c.state = StateDisconnecting
	}
	c.mu.Unlock()
	c.hangMu.Do(func() { close(c.hangup) })
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}
