package calls

import (
	"context"
	"time"
)

// The seams of Call Automation (ACS's API for apps that control calls, "bots"): the call
// engine (who answers, rejects, redirects, creates and hangs up calls) publishes what happens
// through these two interfaces, and the events package delivers it. Neither side knows the
// other's transport: the engine never sees HTTP, the delivery never sees SIP.

// IncomingCall is what an app learns of a call to one of its bot-routed numbers: the data of
// the Event Grid event Microsoft.Communication.IncomingCall.
type IncomingCall struct {
	// To and From are the callee (telgw's number) and the caller.
	To, From Participant
	// CallerDisplayName is the caller's display name, when the carrier sent one.
	CallerDisplayName string
	// ServerCallID identifies the call on the server (serverCallId).
	ServerCallID string
	// CorrelationID ties every event and callback of the call together (correlationId).
	CorrelationID string
	// IncomingCallContext is the opaque token answerCall/rejectCall/redirectCall take; it is
	// signed and short-lived so it cannot be forged or replayed after the ring timeout.
	IncomingCallContext string
	// CustomContext are the custom SIP headers of the INVITE (X-MS-Custom-* and User-To-User),
	// by header name.
	CustomContext map[string]string
	// At is when the INVITE arrived.
	At time.Time
}

// IncomingCallPublisher publishes Microsoft.Communication.IncomingCall to the Event Grid
// webhooks subscribed to it (filtered by event type and number, signed, retried). It must not
// block on a subscriber: a slow app does not delay the caller's ringing.
type IncomingCallPublisher interface {
	PublishIncomingCall(ctx context.Context, ic IncomingCall) error
}

// CallbackEvent is one mid-call event for an app's callbackUri (a CloudEvents 1.0 event in a
// JSON array, the shape the SDK's parseCallAutomationEvent reads).
type CallbackEvent struct {
	// ID is the event id (unique; a retry repeats it).
	ID string
	// Type is the event type, e.g. "Microsoft.Communication.CallConnected".
	Type string
	// Subject is "calling/callConnections/{callConnectionId}".
	Subject string
	// Time is when it happened.
	Time time.Time
	// Data is the event's data object, JSON-marshalable: callConnectionId, serverCallId,
	// correlationId, operationContext, resultInformation and the type's own fields.
	Data any
}

// Callbacks delivers mid-call events to an app's callbackUri: durably (queued in the store),
// each request signed with an Authorization: Bearer JWT the app can verify against telgw's
// OpenID configuration, retried with backoff. Send only queues; a dead callback URL never
// blocks or fails the call.
type Callbacks interface {
	Send(ctx context.Context, callbackURI string, evs ...CallbackEvent) error
}
