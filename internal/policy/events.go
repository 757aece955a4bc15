package policy

import (
	"context"
	"sort"
	"time"
)

// Refusal is a call or message the policy refused, for the webhook event
// Telgw.Communication.PolicyViolation.
type Refusal struct {
	// Channel is "call" or "sms".
	Channel string
	// ID is the call's id (SIP Call-ID) or empty for messages.
	ID string
	// From is the caller id or sender, To the number called (empty for SMS).
	From, To string
	// Subject is who the call or message was for.
	Subject Subject
	// Violation is the refusal.
	Violation Violation
	At        time.Time
}

// Emergency is an emergency call, for the webhook event Telgw.Communication.EmergencyCall.
type Emergency struct {
	// ID is the call's id (SIP Call-ID toward the caller).
	ID string
	// Dialed is what the caller dialled (911, 933).
	Dialed string
	// CallbackNumber is the number the call presented (P-Asserted-Identity).
	CallbackNumber string
	// Trunk is the emergency trunk.
	Trunk string
	// Subject is the caller.
	Subject Subject
	// Location reports whether a PIDF-LO location went with the call.
	Location bool
	At       time.Time
}

// Events receives what the policy and the emergency path report, for webhooks. Both calls
// must return quickly and never fail the call (internal/events queues them durably).
type Events interface {
	Refused(ctx context.Context, r Refusal)
	EmergencyCall(ctx context.Context, e Emergency)
}

func sortUsage(u []Usage) {
	sort.Slice(u, func(i, j int) bool { return u[i].Subject < u[j].Subject })
}
