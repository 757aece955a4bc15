package policy

import (
	"context"
	"errors"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// SMSGate admits SMS send requests by the policy (internal/sms.SendLimiter): the sender
// number's kill switch and SMS per day. Refusals are ACS-shaped errors (403 Forbidden for a
// kill switch, 429 for the daily limit, code "PolicyViolation") and events.
type SMSGate struct {
	Engine *Engine
	// Events receives refusals; nil: none.
	Events Events
}

// AdmitSMS counts n messages from the number from, or refuses them all.
func (g SMSGate) AdmitSMS(ctx context.Context, from string, n int) error {
	if g.Engine == nil || n <= 0 {
		return nil
	}
	s := Subject{Number: from}
	err := g.Engine.SendSMS(s, n)
	var v *Violation
	if !errors.As(err, &v) {
		return err
	}
	if g.Events != nil {
		go g.Events.Refused(context.WithoutCancel(ctx), Refusal{Channel: "sms", From: from, Subject: s, Violation: *v, At: time.Now()})
	}
	if v.Policy == SMSPerDay {
		return &problem.Error{Kind: problem.KindTooMany, Code: "PolicyViolation", Message: v.Error(), Target: "from"}
	}
	return problem.Forbidden("from", "%s", v.Error()).WithCode("PolicyViolation")
}
