package calls

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// State is where a call, or one of its legs, is in its life: set up, ringing, answered, ended.
// It only moves forward (Setup → Ringing → Answered → Ended, any state → Ended).
type State int

// States.
const (
	// Setup: the call (or leg) exists, nothing has answered or rung yet.
	Setup State = iota
	// Ringing: the callee is alerted (SIP 18x, a device ringing).
	Ringing
	// Answered: media flows between the parties.
	Answered
	// Ended: the call is over; its CDR is final.
	Ended
)

func (s State) String() string {
	switch s {
	case Setup:
		return "setup"
	case Ringing:
		return "ringing"
	case Answered:
		return "answered"
	case Ended:
		return "ended"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// LegKind is what is at the far end of a leg.
type LegKind string

// Leg kinds.
const (
	// LegCarrier is a carrier's SIP trunk (the PSTN).
	LegCarrier LegKind = "carrier"
	// LegEndpoint is a customer's SIP endpoint: a PBX or softswitch a number routes to, or one
	// placing calls out with its credentials.
	LegEndpoint LegKind = "endpoint"
	// LegWebRTC is a WebRTC user's device (browser or app, SIP over WebSocket).
	LegWebRTC LegKind = "webrtc"
	// LegBot is media terminated by an app that controls the call (Call Automation).
	LegBot LegKind = "bot"
)

// IdentifierKind says how a Participant is named.
type IdentifierKind string

// Identifier kinds, as the ACS Call Automation API names participants.
const (
	// PhoneNumber is an E.164 number (or, when it could not be read as one, the digits as sent).
	PhoneNumber IdentifierKind = "phoneNumber"
	// CommunicationUser is an ACS communication user id (8:acs:…).
	CommunicationUser IdentifierKind = "communicationUser"
	// App is an app that controls the call, named by its callback URL.
	App IdentifierKind = "app"
)

// Participant is who takes part in a call through one leg.
type Participant struct {
	Kind IdentifierKind
	// ID is the E.164 number, the communication user id or the app's callback URL.
	ID string
}

// Phone is the participant with E.164 number n.
func Phone(n string) Participant { return Participant{Kind: PhoneNumber, ID: n} }

// User is the WebRTC user id (8:acs:…).
func User(id string) Participant { return Participant{Kind: CommunicationUser, ID: id} }

// Leg is one party's connection to a call: for SIP, one dialog of the B2BUA.
type Leg struct {
	// ID names the leg on its transport (the SIP Call-ID of its dialog); it may change while
	// the leg is being set up (a failed-over INVITE has a new Call-ID).
	ID   string
	Kind LegKind
	// Participant is who is on the leg.
	Participant Participant
	// Trunk is the carrier trunk of a LegCarrier ("" until one is chosen).
	Trunk string
	State State
	// Transferred is set on a leg whose party left the call by a transfer; Left is when.
	Transferred bool
	Left        time.Time
}

// Disposition names a call's outcome in CDRs and metrics (CDR.Disposition).
type Disposition = string

// Dispositions.
const (
	DispositionAnswered     Disposition = "answered"
	DispositionBusy         Disposition = "busy"
	DispositionCancelled    Disposition = "cancelled"
	DispositionNoAnswer     Disposition = "no-answer"
	DispositionUnauthorized Disposition = "unauthorized"
	DispositionRejected     Disposition = "rejected"
	DispositionFailed       Disposition = "failed"
)

// Who ended a call (CDR.EndedBy).
const (
	EndedByCaller       = "caller"
	EndedByCallee       = "callee"
	EndedByMediaTimeout = "media-timeout"
	EndedBySystem       = "system"
)

// Outcome is how a call ended, as the transport reports it to End.
type Outcome struct {
	// Disposition classifies the outcome (answered, busy, …).
	Disposition Disposition
	// SIPCode is the final status toward the caller (200 when answered).
	SIPCode int
	// Q850 is the ISDN cause value (ITU-T Q.850).
	Q850 int
	// EndedBy says who ended the call when the call itself has not recorded it (SetEndedBy).
	EndedBy string
}

// Call is one call through telgw: its parties' legs, where it was routed, and its timeline,
// from which its CDR is derived. A transport (the SIP B2BUA) creates it when a call arrives and
// updates it as the call progresses; its methods are safe for concurrent use.
type Call struct {
	// ID is telgw's id of the call (the ACS serverCallId), unique and stable for its life.
	ID string
	// CorrelationID ties the call's events and records together (the ACS correlationId); for a
	// call of its own it is its ID.
	CorrelationID string

	mu        sync.Mutex
	direction Direction
	from, to  string
	route     Route
	legs      []*Leg
	trunk     string
	state     State
	start     time.Time
	ringing   time.Time
	answer    time.Time
	end       time.Time
	endedBy   string
	cdr       CDR
}

// NewCall starts a call at start with its first leg, the caller's.
func NewCall(start time.Time, caller Leg) *Call {
	id := newID()
	c := &Call{ID: id, CorrelationID: id, start: start}
	c.legs = append(c.legs, &caller)
	return c
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	// RFC 9562 version 4 layout, as ACS ids look.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Start is when the call arrived.
func (c *Call) Start() time.Time { return c.start }

// SetDirection records the call's direction (inbound from a carrier, outbound to one).
func (c *Call) SetDirection(d Direction) {
	c.mu.Lock()
	c.direction = d
	c.mu.Unlock()
}

// Direction is the call's direction.
func (c *Call) Direction() Direction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.direction
}

// SetFrom records the caller's number (or identity) as the CDR shows it.
func (c *Call) SetFrom(from string) {
	c.mu.Lock()
	c.from = from
	c.mu.Unlock()
}

// SetTo records the called number as the CDR shows it.
func (c *Call) SetTo(to string) {
	c.mu.Lock()
	c.to = to
	c.mu.Unlock()
}

// From and To are the caller's and the callee's numbers as recorded.
func (c *Call) From() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.from
}

// To is the called number as recorded.
func (c *Call) To() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.to
}

// SetRoute records where the call was routed.
func (c *Call) SetRoute(r Route) {
	c.mu.Lock()
	c.route = r
	c.mu.Unlock()
}

// Route is where the call was routed (nil until it was).
func (c *Call) Route() Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.route
}

// SetTrunk records the carrier trunk the call uses (or last tried).
func (c *Call) SetTrunk(name string) {
	c.mu.Lock()
	c.trunk = name
	c.mu.Unlock()
}

// Trunk is the carrier trunk the call uses ("" if none).
func (c *Call) Trunk() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trunk
}

// State is the call's state.
func (c *Call) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Caller is the caller's leg.
func (c *Call) Caller() Leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.legs[0]
}

// Legs returns a copy of the call's legs, the caller's first.
func (c *Call) Legs() []Leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Leg, len(c.legs))
	for i, l := range c.legs {
		out[i] = *l
	}
	return out
}

// UpdateCaller changes the caller's leg (its participant once authenticated, say).
func (c *Call) UpdateCaller(f func(*Leg)) {
	c.mu.Lock()
	f(c.legs[0])
	c.mu.Unlock()
}

// SetCallee records the callee's leg, replacing the one of a previous attempt (failover).
func (c *Call) SetCallee(l Leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.legs) > 1 {
		c.legs[1] = &l
		return
	}
	c.legs = append(c.legs, &l)
}

// Ring records that the callee is alerted at t; only the first alert counts.
func (c *Call) Ring(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != Setup {
		return
	}
	c.state, c.ringing = Ringing, t
	for _, l := range c.legs {
		if l.State == Setup {
			l.State = Ringing
		}
	}
}

// Answer records that the call was answered at t (both legs up). It reports false when the
// call already ended or was answered.
func (c *Call) Answer(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= Answered {
		return false
	}
	c.state, c.answer = Answered, t
	for _, l := range c.legs {
		l.State = Answered
	}
	return true
}

// SetEndedBy records who ended the call (caller, callee, media-timeout or system) ahead of End.
func (c *Call) SetEndedBy(by string) {
	c.mu.Lock()
	c.endedBy = by
	c.mu.Unlock()
}

// EndedBy is who ended the call, as recorded so far ("" if not yet).
func (c *Call) EndedBy() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endedBy
}

// End ends the call at t with outcome o and returns its CDR. Ending an ended call changes
// nothing and returns the CDR it had.
func (c *Call) End(t time.Time, o Outcome) CDR {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended {
		return c.cdr
	}
	c.state, c.end = Ended, t
	if c.endedBy == "" {
		c.endedBy = o.EndedBy
	}
	for _, l := range c.legs {
		l.State = Ended
	}
	c.cdr = CDR{CallID: c.legs[0].ID, Direction: c.direction, From: c.from, To: c.to, Trunk: c.trunk,
		Start: c.start, Ringing: c.ringing, Answer: c.answer, End: c.end,
		Disposition: o.Disposition, SIPCode: o.SIPCode, Q850: o.Q850, EndedBy: c.endedBy, Legs: cdrLegs(c.legs)}
	return c.cdr
}

// CDR is the call's record so far (final once the call ended).
func (c *Call) CDR() CDR {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Ended {
		return c.cdr
	}
	return CDR{CallID: c.legs[0].ID, Direction: c.direction, From: c.from, To: c.to, Trunk: c.trunk,
		Start: c.start, Ringing: c.ringing, Answer: c.answer, EndedBy: c.endedBy, Legs: cdrLegs(c.legs)}
}
