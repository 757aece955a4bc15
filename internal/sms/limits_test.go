package sms

import (
	"context"
	"testing"

	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/problem"
)

// TestSendLimits: the policy's SMS per day refuses a request past it (429, ACS code
// PolicyViolation) and queues nothing; the kill switch of the sender refuses with 403.
func TestSendLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	eng, err := policy.New(policy.Config{Defaults: policy.Limits{SMSPerDay: 3},
		Numbers: map[string]policy.Rule{"+14255550111": {Disabled: true}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.Limits = policy.SMSGate{Engine: eng}
	ctx := context.Background()
	two := []Recipient{{To: them}, {To: "+14255550177"}}
	if _, err := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: two}); err != nil {
		t.Fatal(err)
	}
	queued := len(f.jobs.jobs)
	_, err = f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: two})
	if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindTooMany || pe.Code != "PolicyViolation" || pe.Target != "from" {
		t.Fatalf("over the day's limit: %v", err)
	}
	if len(f.jobs.jobs) != queued {
		t.Fatal("a refused request queued messages")
	}
	_, err = f.svc.Send(ctx, SendRequest{From: "+14255550111", Message: "hi", Recipients: two[:1]})
	if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindForbidden {
		t.Fatalf("kill switch: %v", err)
	}
}
