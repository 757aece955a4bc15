package calls

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Participants of a call connection (Call Automation's participants list, add, remove, mute,
// cancelAddParticipant and transferToParticipant). The call engine keeps the roster the app
// sees and sends the callbacks; the transport (the SIP edge) places and ends the legs and
// moves their media through the CallControl it attaches to the connection once connected.

// DefaultMaxParticipants is how many people (PSTN legs and communication users) a call
// connection holds besides the app unless AutomationConfig.MaxParticipants says otherwise
// (calls.maxParticipants). Two people are relayed packet for packet; from the third on the
// transport mixes their audio (a conference).
const DefaultMaxParticipants = 16

// MaxParticipantsLimit bounds calls.maxParticipants: one conference's mix runs on one pacing
// goroutine every 20 ms.
const MaxParticipantsLimit = 100

// ErrUnsupportedTarget: the transport cannot reach this kind of target yet (a communication
// user for add and transfer); the REST edge answers 501.
var ErrUnsupportedTarget = errors.New("calls: target kind not supported")

// CallParticipant is one participant of a call connection as the app sees it.
type CallParticipant struct {
	Participant Participant
	// Muted: telgw drops what the participant sends (mute).
	Muted bool
	// OnHold is always false for now (hold comes with the media operations).
	OnHold bool
}

// CallControl is the transport's hold on a connected call connection: the legs it places,
// ends and relays. Invite and Transfer must not block; they report through their argument.
type CallControl interface {
	// Invite places a call to inv.Target; the transport reports Answered or Failed, and
	// cancels the attempt (CANCEL) when inv.Cancelled is closed.
	Invite(inv *Invitation)
	// Remove ends p's leg (BYE) and returns once it is gone.
	Remove(ctx context.Context, p Participant) error
	// Mute stops relaying what p sends.
	Mute(p Participant) error
	// Transfer places a call to tr.Target and, when it answers, connects the call's other
	// participant to it and takes the app out of the call (Accepted, then the connection's
	// Disconnected); Failed leaves the call as it was.
	Transfer(tr *Transfer)
}

// roster is a connection's participants and the operations on them under way.
type roster struct {
	mu       sync.Mutex
	ctl      CallControl
	people   []*CallParticipant
	invites  map[string]*Invitation
	transfer *Transfer
	seq      int
	// leaving: the app hung up (hangUp, not terminate): with two people or more on the call,
	// only the app leaves.
	leaving atomic.Bool
}

// Leaving reports whether the app's hang-up (HangupRequested) is a hangUp, which takes only
// the app out of a call that has two people or more on it, rather than a terminate.
func (c *Connection) Leaving() bool { return c.parts.leaving.Load() }

// Attach gives the connection its transport control and its first participant (the caller of
// an answered call, the callee of a placed one). The transport calls it once the call is
// connected, before Connected; participant operations before that are refused.
func (c *Connection) Attach(ctl CallControl, first Participant) {
	r := &c.parts
	r.mu.Lock()
	r.ctl = ctl
	r.people = []*CallParticipant{{Participant: first}}
	r.invites = map[string]*Invitation{}
	r.mu.Unlock()
}

// Left records that p's leg ended by itself (they hung up) while the call goes on; the app
// hears ParticipantsUpdated.
func (c *Connection) Left(p Participant) {
	if c.removePerson(p) {
		c.participantsUpdated()
	}
}

func (c *Connection) removePerson(p Participant) bool {
	r := &c.parts
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.people, func(cp *CallParticipant) bool { return cp.Participant == p })
	if i < 0 {
		return false
	}
	r.people = slices.Delete(r.people, i, i+1)
	return true
}

// Participants returns the connection's participants (the people; the app is not listed).
func (c *Connection) Participants() []CallParticipant {
	r := &c.parts
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CallParticipant, 0, len(r.people))
	for _, p := range r.people {
		out = append(out, *p)
	}
	return out
}

// participantsUpdatedData is the data of ParticipantsUpdated.
type participantsUpdatedData struct {
	CallConnectionID  string             `json:"callConnectionId"`
	ServerCallID      string             `json:"serverCallId"`
	CorrelationID     string             `json:"correlationId"`
	SequenceNumber    int                `json:"sequenceNumber"`
	Participants      []participantModel `json:"participants"`
	ResultInformation ResultInformation  `json:"resultInformation"`
}

// participantModel is CallParticipant as callbacks carry it.
type participantModel struct {
	Identifier IdentifierModel `json:"identifier"`
	IsMuted    bool            `json:"isMuted"`
	IsOnHold   bool            `json:"isOnHold"`
}

// IdentifierModel is CommunicationIdentifierModel (ACS common 2023-11-15) as callbacks carry
// it: kind, rawId and the kind's own object.
type IdentifierModel struct {
	Kind              string     `json:"kind"`
	RawID             string     `json:"rawId"`
	PhoneNumber       *phoneJSON `json:"phoneNumber,omitempty"`
	CommunicationUser *userJSON  `json:"communicationUser,omitempty"`
}

type phoneJSON struct {
	Value string `json:"value"`
}

type userJSON struct {
	ID string `json:"id"`
}

// Model is p as a CommunicationIdentifierModel.
func (p Participant) Model() IdentifierModel {
	switch p.Kind {
	case PhoneNumber:
		return IdentifierModel{Kind: "phoneNumber", RawID: "4:" + p.ID, PhoneNumber: &phoneJSON{Value: p.ID}}
	case CommunicationUser:
		return IdentifierModel{Kind: "communicationUser", RawID: p.ID, CommunicationUser: &userJSON{ID: p.ID}}
	}
	return IdentifierModel{Kind: "unknown", RawID: p.ID}
}

// RawID is p's rawId (4:+1… for a phone number, the id of a communication user).
func (p Participant) RawID() string { return p.Model().RawID }

func (c *Connection) participantsUpdated() {
	r := &c.parts
	r.mu.Lock()
	r.seq++
	d := participantsUpdatedData{CallConnectionID: c.ID, ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID,
		SequenceNumber: r.seq, Participants: []participantModel{}, ResultInformation: ResultInformation{Code: 200, Message: "Participants updated."}}
	for _, p := range r.people {
		d.Participants = append(d.Participants, participantModel{Identifier: p.Participant.Model(), IsMuted: p.Muted, IsOnHold: p.OnHold})
	}
	r.mu.Unlock()
	c.sendData(c.callbackURI, "Microsoft.Communication.ParticipantsUpdated", d)
}

// participantEventData is the data of Add/RemoveParticipantSucceeded/Failed.
type participantEventData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	OperationContext  string            `json:"operationContext,omitempty"`
	ResultInformation ResultInformation `json:"resultInformation"`
	Participant       IdentifierModel   `json:"participant"`
}

// invitationEventData is the data of CancelAddParticipantSucceeded/Failed.
type invitationEventData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	OperationContext  string            `json:"operationContext,omitempty"`
	ResultInformation ResultInformation `json:"resultInformation"`
	InvitationID      string            `json:"invitationId"`
}

// transferEventData is the data of CallTransferAccepted/Failed.
type transferEventData struct {
	CallConnectionID  string            `json:"callConnectionId"`
	ServerCallID      string            `json:"serverCallId"`
	CorrelationID     string            `json:"correlationId"`
	OperationContext  string            `json:"operationContext,omitempty"`
	ResultInformation ResultInformation `json:"resultInformation"`
	TransferTarget    *IdentifierModel  `json:"transferTarget,omitempty"`
	Transferee        *IdentifierModel  `json:"transferee,omitempty"`
}

// sendData queues one callback with data to uri (the operation's callback URI or the
// connection's).
func (c *Connection) sendData(uri, typ string, data any) {
	cb := c.a.cfg.Callbacks
	if cb == nil || uri == "" {
		return
	}
	ev := CallbackEvent{ID: newID(), Type: typ, Subject: "calling/callConnections/" + c.ID, Time: time.Now().UTC(), Data: data}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cb.Send(ctx, uri, ev); err != nil {
		c.a.log.Warn("callback not queued", "call_id", c.call.ID, "type", typ, "err", err)
	}
}

// OperationParams are what every participant operation may carry.
type OperationParams struct {
	OperationContext string
	// OperationCallbackURI overrides the connection's callback URI for this operation's events.
	OperationCallbackURI string
}

func (c *Connection) uriFor(op OperationParams) string {
	if op.OperationCallbackURI != "" {
		return op.OperationCallbackURI
	}
	return c.callbackURI
}

// controlled returns the connected connection id and its control; an unknown or ended one is
// not found, one not yet connected a conflict.
func (a *Automation) controlled(id string) (*Connection, CallControl, error) {
	c, err := a.connection(id)
	if err != nil {
		return nil, nil, err
	}
	c.parts.mu.Lock()
	ctl := c.parts.ctl
	c.parts.mu.Unlock()
	if ctl == nil {
		return nil, nil, problem.Conflict("callConnectionId", "the call is not connected yet").WithCode("Conflict")
	}
	return c, ctl, nil
}

// Participants lists a call connection's participants.
func (a *Automation) Participants(_ context.Context, id string) ([]CallParticipant, error) {
	c, err := a.connection(id)
	if err != nil {
		return nil, err
	}
	return c.Participants(), nil
}

// Participant returns the participant of a call connection with rawID.
func (a *Automation) Participant(_ context.Context, id, rawID string) (CallParticipant, error) {
	c, err := a.connection(id)
	if err != nil {
		return CallParticipant{}, err
	}
	for _, p := range c.Participants() {
		if p.Participant.RawID() == rawID {
			return p, nil
		}
	}
	return CallParticipant{}, problem.NotFound("participantRawId", "%s is not a participant of this call", rawID).WithCode("NotFound")
}

// checkTarget accepts the targets the transport can reach: phone numbers (through the SIP
// routes) and communication users (their registered WebRTC devices).
func checkTarget(field string, p Participant) error {
	switch p.Kind {
	case PhoneNumber, CommunicationUser:
		if p.ID == "" {
			return problem.Invalid(field, "%s has no id", field).WithCode("BadRequest")
		}
		return nil
	}
	return problem.Invalid(field, "%s must be a phone number or a communication user", field).WithCode("BadRequest")
}

// callerID is the caller id a leg placed from c shows: source when given, else the call's
// number (the bot-routed number of an answered call, the source of a placed one); it must be
// one of the resource's numbers.
func (a *Automation) callerID(ctx context.Context, c *Connection, source string) (string, error) {
	if source == "" {
		source = c.call.To()
		if c.call.Direction() == Outbound {
			source = c.call.From()
		}
	}
	if a.cfg.Numbers == nil {
		return "", problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", source).WithCode("Forbidden")
	}
	if _, err := a.cfg.Numbers.CallRoute(ctx, source); errors.Is(err, ErrUnknownNumber) {
		return "", problem.Forbidden("sourceCallerIdNumber", "%s is not one of this resource's numbers", source).WithCode("Forbidden")
	} else if err != nil {
		return "", err
	}
	return source, nil
}

// Invitation is an addParticipant under way: the transport places the call and reports how it
// went (Answered or Failed, once).
type Invitation struct {
	// ID is the invitationId.
	ID string
	// Target is who is called; CallerID the number shown to them, DisplayName the name.
	Target      Participant
	CallerID    string
	DisplayName string
	// Timeout is how long the target may ring (invitationTimeoutInSeconds; 0: the transport's
	// ring timeout).
	Timeout time.Duration

	conn     *Connection
	op       OperationParams
	cancel   chan struct{}
	cancelOp *OperationParams // the cancelAddParticipant request, once made
	done     bool
	// target: one of createCall's targets after the first (inviteTargets), not an
	// addParticipant: no Add/CancelAddParticipant callbacks, only ParticipantsUpdated.
	target bool
}

// inviteTargets invites the targets of a call the app placed to three or more after the first,
// once the first answered and the transport attached (a conference); the transport rang them
// with the first and hands over those legs. Each who answers joins with ParticipantsUpdated;
// one who does not is left out (logged).
func (c *Connection) inviteTargets() {
	r := &c.parts
	r.mu.Lock()
	ctl := r.ctl
	var invs []*Invitation
	if ctl != nil && len(c.targets) > 2 {
		for _, t := range c.targets[1:] {
			inv := &Invitation{ID: newID(), Target: t, CallerID: c.call.From(), DisplayName: c.DisplayName, conn: c, cancel: make(chan struct{}), target: true}
			r.invites[inv.ID] = inv
			invs = append(invs, inv)
		}
	}
	r.mu.Unlock()
	for _, inv := range invs {
		ctl.Invite(inv)
	}
}

// Cancelled is closed when the app cancels the invitation (cancelAddParticipant).
func (inv *Invitation) Cancelled() <-chan struct{} { return inv.cancel }

// finish ends the invitation; false when it had already ended. It returns the cancel request
// when the app cancelled it.
func (inv *Invitation) finish() (bool, *OperationParams) {
	r := &inv.conn.parts
	r.mu.Lock()
	defer r.mu.Unlock()
	if inv.done {
		return false, nil
	}
	inv.done = true
	delete(r.invites, inv.ID)
	return true, inv.cancelOp
}

// Answered records that the target answered and is in the call: AddParticipantSucceeded and
// ParticipantsUpdated follow.
func (inv *Invitation) Answered() {
	c := inv.conn
	ok, _ := inv.finish()
	if !ok {
		return
	}
	c.parts.mu.Lock()
	c.parts.people = append(c.parts.people, &CallParticipant{Participant: inv.Target})
	c.parts.mu.Unlock()
	if inv.target {
		c.participantsUpdated()
		return
	}
	c.sendData(c.uriFor(inv.op), "Microsoft.Communication.AddParticipantSucceeded", participantEventData{CallConnectionID: c.ID,
		ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID, OperationContext: inv.op.OperationContext,
		ResultInformation: ResultInformation{Code: 200, Message: "The participant joined the call."}, Participant: inv.Target.Model()})
	c.participantsUpdated()
}

// Failed records that the target never joined (ri says why): AddParticipantFailed, or, when
// the app cancelled the invitation, CancelAddParticipantSucceeded.
func (inv *Invitation) Failed(ri ResultInformation) {
	c := inv.conn
	ok, cancelled := inv.finish()
	if !ok {
		return
	}
	if inv.target {
		c.a.log.Info("a target of the app's call did not join", "call_connection_id", c.ID, "target", inv.Target.RawID(), "code", ri.Code, "reason", ri.Message)
		return
	}
	if cancelled != nil {
		c.sendData(c.uriFor(*cancelled), "Microsoft.Communication.CancelAddParticipantSucceeded", invitationEventData{CallConnectionID: c.ID,
			ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID, OperationContext: cancelled.OperationContext,
			ResultInformation: ResultInformation{Code: 200, Message: "The invitation was cancelled."}, InvitationID: inv.ID})
		return
	}
	c.sendData(c.uriFor(inv.op), "Microsoft.Communication.AddParticipantFailed", participantEventData{CallConnectionID: c.ID,
		ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID, OperationContext: inv.op.OperationContext,
		ResultInformation: ri, Participant: inv.Target.Model()})
}

// AddParticipantParams are addParticipant's inputs.
type AddParticipantParams struct {
	Target Participant
	// SourceCallerID is the caller id shown to a phone number: one of the resource's numbers;
	// empty: the call's number.
	SourceCallerID    string
	SourceDisplayName string
	// InvitationTimeout is how long the target may ring (0–180 s; 0: the ring timeout).
	InvitationTimeout time.Duration
	OperationParams
}

// AddParticipant invites a participant into a call connection. It returns at once with the
// invitation id; AddParticipantSucceeded or AddParticipantFailed follows.
func (a *Automation) AddParticipant(ctx context.Context, id string, p AddParticipantParams) (string, error) {
	if err := checkTarget("participantToAdd", p.Target); err != nil {
		return "", err
	}
	if p.InvitationTimeout < 0 || p.InvitationTimeout > 180*time.Second {
		return "", problem.Invalid("invitationTimeoutInSeconds", "invitationTimeoutInSeconds must be 0–180").WithCode("BadRequest")
	}
	c, ctl, err := a.controlled(id)
	if err != nil {
		return "", err
	}
	callerID, err := a.callerID(ctx, c, p.SourceCallerID)
	if err != nil {
		return "", err
	}
	inv := &Invitation{ID: newID(), Target: p.Target, CallerID: callerID, DisplayName: p.SourceDisplayName, Timeout: p.InvitationTimeout,
		conn: c, op: p.OperationParams, cancel: make(chan struct{})}
	r := &c.parts
	r.mu.Lock()
	switch {
	case r.transfer != nil:
		err = problem.Conflict("callConnectionId", "a transfer of this call is under way").WithCode("Conflict")
	case slices.ContainsFunc(r.people, func(cp *CallParticipant) bool { return cp.Participant == p.Target }) ||
		invitesTarget(r.invites, p.Target):
		err = problem.Invalid("participantToAdd", "%s is already in the call or being added", p.Target.ID).WithCode("BadRequest")
	case len(r.people)+len(r.invites) >= a.cfg.MaxParticipants:
		err = problem.Invalid("participantToAdd", "this call already has %d participants besides the app (or being added), "+
			"the most it may hold (calls.maxParticipants)", a.cfg.MaxParticipants).WithCode("BadRequest")
	default:
		r.invites[inv.ID] = inv
	}
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	ctl.Invite(inv)
	return inv.ID, nil
}

func invitesTarget(m map[string]*Invitation, p Participant) bool {
	for _, inv := range m {
		if inv.Target == p {
			return true
		}
	}
	return false
}

// CancelAddParticipant cancels an invitation still ringing: CancelAddParticipantSucceeded
// follows once the target's call is cancelled, CancelAddParticipantFailed when the invitation
// had already ended (answered or failed).
func (a *Automation) CancelAddParticipant(_ context.Context, id, invitationID string, op OperationParams) error {
	if invitationID == "" {
		return problem.Invalid("invitationId", "invitationId is required").WithCode("BadRequest")
	}
	c, _, err := a.controlled(id)
	if err != nil {
		return err
	}
	r := &c.parts
	r.mu.Lock()
	inv := r.invites[invitationID]
	if inv != nil && inv.cancelOp == nil {
		opc := op
		inv.cancelOp = &opc
		close(inv.cancel)
	}
	r.mu.Unlock()
	if inv == nil {
		// Unknown or already over: the request is accepted and fails through the callback,
		// as ACS reports a cancel that came too late.
		c.sendData(c.uriFor(op), "Microsoft.Communication.CancelAddParticipantFailed", invitationEventData{CallConnectionID: c.ID,
			ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID, OperationContext: op.OperationContext,
			ResultInformation: ResultInformation{Code: 404, Message: "No invitation " + invitationID + " is under way (unknown, answered or failed)."},
			InvitationID:      invitationID})
	}
	return nil
}

// RemoveParticipant removes a participant from a call connection (BYE to their leg). It
// returns at once; RemoveParticipantSucceeded or RemoveParticipantFailed follows, and
// ParticipantsUpdated when the call goes on. Removing the last participant ends the call.
func (a *Automation) RemoveParticipant(_ context.Context, id string, p Participant, op OperationParams) error {
	c, ctl, err := a.controlled(id)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(c.Participants(), func(cp CallParticipant) bool { return cp.Participant == p }) {
		return problem.NotFound("participantToRemove", "%s is not a participant of this call", p.ID).WithCode("NotFound")
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DecisionTimeout)
		defer cancel()
		err := ctl.Remove(ctx, p)
		d := participantEventData{CallConnectionID: c.ID, ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID,
			OperationContext: op.OperationContext, Participant: p.Model()}
		if err != nil {
			d.ResultInformation = ResultInformation{Code: 500, Message: fmt.Sprintf("The participant could not be removed: %v.", err)}
			c.sendData(c.uriFor(op), "Microsoft.Communication.RemoveParticipantFailed", d)
			return
		}
		removed := c.removePerson(p)
		d.ResultInformation = ResultInformation{Code: 200, Message: "The participant was removed."}
		c.sendData(c.uriFor(op), "Microsoft.Communication.RemoveParticipantSucceeded", d)
		if removed && len(c.Participants()) > 0 {
			c.participantsUpdated()
		}
	}()
	return nil
}

// Mute mutes participants of a call connection: telgw stops relaying what they send, and the
// app hears ParticipantsUpdated.
func (a *Automation) Mute(_ context.Context, id string, ps []Participant) error {
	if len(ps) == 0 {
		return problem.Invalid("targetParticipants", "targetParticipants is required").WithCode("BadRequest")
	}
	c, ctl, err := a.controlled(id)
	if err != nil {
		return err
	}
	in := c.Participants()
	for _, p := range ps {
		if !slices.ContainsFunc(in, func(cp CallParticipant) bool { return cp.Participant == p }) {
			return problem.NotFound("targetParticipants", "%s is not a participant of this call", p.ID).WithCode("NotFound")
		}
	}
	changed := false
	for _, p := range ps {
		if err := ctl.Mute(p); err != nil {
			return fmt.Errorf("mute %s: %w", p.ID, err)
		}
		r := &c.parts
		r.mu.Lock()
		for _, cp := range r.people {
			if cp.Participant == p && !cp.Muted {
				cp.Muted, changed = true, true
			}
		}
		r.mu.Unlock()
	}
	if changed {
		c.participantsUpdated()
	}
	return nil
}

// Transfer is a transferToParticipant under way: the transport reports Accepted or Failed.
type Transfer struct {
	// Target is who the call goes to; Transferee who is sent there (the call's participant).
	Target, Transferee Participant
	// CallerID is the number shown to the target.
	CallerID string

	conn *Connection
	op   OperationParams
	once sync.Once
}

func (tr *Transfer) data(ri ResultInformation, parties bool) transferEventData {
	c := tr.conn
	d := transferEventData{CallConnectionID: c.ID, ServerCallID: c.call.ID, CorrelationID: c.call.CorrelationID,
		OperationContext: tr.op.OperationContext, ResultInformation: ri}
	if parties {
		t, e := tr.Target.Model(), tr.Transferee.Model()
		d.TransferTarget, d.Transferee = &t, &e
	}
	return d
}

func (tr *Transfer) end() bool {
	first := false
	tr.once.Do(func() {
		first = true
		r := &tr.conn.parts
		r.mu.Lock()
		if r.transfer == tr {
			r.transfer = nil
		}
		r.mu.Unlock()
	})
	return first
}

// Accepted records that the target answered and the transferee is connected to it:
// CallTransferAccepted; the transport then ends the app's connection (Disconnected).
func (tr *Transfer) Accepted() {
	if !tr.end() {
		return
	}
	tr.conn.removePerson(tr.Transferee)
	tr.conn.sendData(tr.conn.uriFor(tr.op), "Microsoft.Communication.CallTransferAccepted",
		tr.data(ResultInformation{Code: 202, Message: "The call was transferred."}, true))
}

// Failed records that the transfer failed (ri says why): CallTransferFailed; the call stays
// with the app.
func (tr *Transfer) Failed(ri ResultInformation) {
	if !tr.end() {
		return
	}
	tr.conn.sendData(tr.conn.uriFor(tr.op), "Microsoft.Communication.CallTransferFailed", tr.data(ri, false))
}

// TransferParams are transferToParticipant's inputs.
type TransferParams struct {
	Target Participant
	// Transferee, when set, must be the call's participant.
	Transferee *Participant
	// SourceCallerID is the caller id shown to a phone number target (one of the resource's
	// numbers; empty: the call's number).
	SourceCallerID string
	OperationParams
}

// TransferToParticipant blind-transfers a call connection with one participant to target: it
// returns at once; CallTransferAccepted (then CallDisconnected: the app is out of the call) or
// CallTransferFailed (the call stays) follows.
func (a *Automation) TransferToParticipant(ctx context.Context, id string, p TransferParams) error {
	if err := checkTarget("targetParticipant", p.Target); err != nil {
		return err
	}
	c, ctl, err := a.controlled(id)
	if err != nil {
		return err
	}
	callerID, err := a.callerID(ctx, c, p.SourceCallerID)
	if err != nil {
		return err
	}
	r := &c.parts
	r.mu.Lock()
	var tr *Transfer
	switch {
	case r.transfer != nil:
		err = problem.Conflict("callConnectionId", "a transfer of this call is under way").WithCode("Conflict")
	case len(r.invites) > 0:
		err = problem.Conflict("callConnectionId", "a participant is being added to this call").WithCode("Conflict")
	case len(r.people) != 1:
		err = problem.Invalid("callConnectionId", "transferToParticipant needs a call with one participant besides the app (this one has %d)",
			len(r.people)).WithCode("BadRequest")
	case p.Transferee != nil && *p.Transferee != r.people[0].Participant:
		err = problem.Invalid("transferee", "%s is not a participant of this call", p.Transferee.ID).WithCode("BadRequest")
	case r.people[0].Participant == p.Target:
		err = problem.Invalid("targetParticipant", "%s is already in the call", p.Target.ID).WithCode("BadRequest")
	default:
		tr = &Transfer{Target: p.Target, Transferee: r.people[0].Participant, CallerID: callerID, conn: c, op: p.OperationParams}
		r.transfer = tr
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	ctl.Transfer(tr)
	return nil
}
