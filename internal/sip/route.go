package sip

import (
	"github.com/telgw/telgw/internal/calls"
)

// The call domain's types, as the SIP edge names them. They live in internal/calls; these
// aliases keep the SIP code readable while it is split into calls and transport.
type (
	// Route is calls.Route.
	Route = calls.Route
	// SIPRoute is calls.SIPRoute.
	SIPRoute = calls.SIPRoute
	// UserRoute is calls.UserRoute.
	UserRoute = calls.UserRoute
	// Router is calls.Router.
	Router = calls.Router
	// Credential is calls.Credential.
	Credential = calls.Credential
	// Credentials is calls.Credentials.
	Credentials = calls.Credentials
	// OutboundRoute is calls.OutboundRoute.
	OutboundRoute = calls.OutboundRoute
	// Direction is calls.Direction.
	Direction = calls.Direction
	// CDR is calls.CDR.
	CDR = calls.CDR
	// CDRSink is calls.CDRSink.
	CDRSink = calls.CDRSink
	// Store is calls.Store.
	Store = calls.Store
	// CDRListParams is calls.CDRListParams.
	CDRListParams = calls.CDRListParams
	// Routing is calls.Routing.
	Routing = calls.Routing
	// ACSTrunk is calls.ACSTrunk.
	ACSTrunk = calls.ACSTrunk
)

// Directions (calls.Inbound, calls.Outbound).
const (
	Inbound  = calls.Inbound
	Outbound = calls.Outbound
)

// Errors of the call domain.
var (
	ErrUnknownNumber     = calls.ErrUnknownNumber
	ErrUnknownCredential = calls.ErrUnknownCredential
)

// NewCredential is calls.NewCredential.
func NewCredential(realm, username, password string, numbers []string) Credential {
	return calls.NewCredential(realm, username, password, numbers)
}
