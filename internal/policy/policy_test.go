package policy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/problem"
)

func violation(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var v *policy.Violation
	if !errors.As(err, &v) {
		t.Fatalf("not a violation: %v", err)
	}
	return v.Policy
}

func TestCheck(t *testing.T) {
	c := policy.DefaultConfig()
	c.Credentials = map[string]policy.Rule{"acme": {Allow: []string{"+1"}}, "off": {Disabled: true}}
	c.Users = map[string]policy.Rule{"8:acs:u1": {Disabled: true}}
	for _, tc := range []struct {
		s      policy.Subject
		number string
		want   string
	}{
		{policy.Subject{Credential: "acme"}, "+12125550100", ""},
		{policy.Subject{Credential: "acme"}, "+19005550100", policy.DestinationBlocked},
		{policy.Subject{Credential: "acme"}, "+19765550100", policy.DestinationBlocked},
		{policy.Subject{Credential: "acme"}, "+18765550100", policy.DestinationBlocked},
		{policy.Subject{Credential: "acme"}, "+442071838750", policy.DestinationNotAllowed},
		{policy.Subject{Credential: "other"}, "+442071838750", ""},
		{policy.Subject{Credential: "other"}, "+2525550100", policy.DestinationBlocked},
		{policy.Subject{Credential: "off"}, "+12125550100", policy.KillSwitch},
		{policy.Subject{User: "8:acs:u1", Number: "+14155550100"}, "+12125550100", policy.KillSwitch},
	} {
		if got := violation(t, c.Check(tc.s, tc.number)); got != tc.want {
			t.Errorf("%+v → %s: %q, want %q", tc.s, tc.number, got, tc.want)
		}
	}
	c.Allow = []string{"+1"}
	if got := violation(t, c.Check(policy.Subject{}, "+33142685300")); got != policy.DestinationNotAllowed {
		t.Errorf("resource allow: %q", got)
	}
}

func TestDefaultBlock(t *testing.T) {
	b := policy.DefaultBlock()
	if len(b) < 20 || b[0] != "+1900" || b[1] != "+1976" {
		t.Fatalf("%v", b)
	}
	if err := policy.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	c := policy.Config{Allow: []string{"1"}, Block: []string{"+1x"}, Defaults: policy.Limits{CallsPerMinute: -1},
		Numbers: map[string]policy.Rule{"abc": {}}}
	err := c.Validate()
	for _, key := range []string{"allow[0]", "block[0]", "defaults.callsPerMinute", `numbers["abc"]`} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("no %s in %v", key, err)
		}
	}
}

func TestCallLimits(t *testing.T) {
	now := time.Date(2026, 1, 2, 23, 58, 0, 0, time.UTC)
	c := policy.Config{Defaults: policy.Limits{ConcurrentCalls: 2, CallsPerMinute: 3, CallMinutesPerDay: 1}}
	c.Numbers = map[string]policy.Rule{"+14155550199": {Limits: policy.Limits{ConcurrentCalls: -1, CallsPerMinute: -1}}}
	e, err := policy.New(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.SetNow(func() time.Time { return now })
	s := policy.Subject{Credential: "acme", Number: "+14155550100"}
	a, err := e.StartCall(s, "+12125550100")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.StartCall(s, "+12125550100")
	if _, err := e.StartCall(s, "+12125550100"); violation(t, err) != policy.ConcurrentCalls {
		t.Fatalf("third concurrent: %v", err)
	}
	a.End(0)
	a.End(0) // counted once
	c3, err := e.StartCall(s, "+12125550100")
	if err != nil {
		t.Fatal(err)
	}
	b.End(0)
	c3.End(0)
	if _, err := e.StartCall(s, "+12125550100"); violation(t, err) != policy.CallsPerMinute {
		t.Fatalf("fourth in a minute: %v", err)
	}
	now = now.Add(61 * time.Second)
	d, err := e.StartCall(s, "+12125550100")
	if err != nil {
		t.Fatal(err)
	}
	d.End(61 * time.Second)
	if _, err := e.StartCall(s, "+12125550100"); violation(t, err) != policy.CallMinutesPerDay {
		t.Fatalf("minutes: %v", err)
	}
	now = now.Add(2 * time.Minute) // the next UTC day
	if x, err := e.StartCall(s, "+12125550100"); err != nil {
		t.Fatalf("next day: %v", err)
	} else {
		x.End(0)
	}
	u := e.Usage()
	if len(u) != 2 || u[0].Subject != "credential:acme" || u[0].ActiveCalls != 0 || u[0].CallsLastMinute != 1 {
		t.Fatalf("usage %+v", u)
	}
}

func TestConcurrentStartCall(t *testing.T) {
	e, _ := policy.New(policy.Config{Defaults: policy.Limits{ConcurrentCalls: 5}}, nil, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.StartCall(policy.Subject{User: "u"}, "+12125550100"); err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if admitted != 5 {
		t.Fatalf("admitted %d", admitted)
	}
}

func TestSMS(t *testing.T) {
	e, _ := policy.New(policy.Config{Defaults: policy.Limits{SMSPerDay: 3},
		Numbers: map[string]policy.Rule{"+14155550111": {Disabled: true}}}, nil, nil)
	s := policy.Subject{Number: "+14155550100"}
	if err := e.SendSMS(s, 2); err != nil {
		t.Fatal(err)
	}
	if err := e.SendSMS(s, 2); violation(t, err) != policy.SMSPerDay {
		t.Fatalf("over: %v", err)
	}
	if err := e.SendSMS(s, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.SendSMS(policy.Subject{Number: "+14155550111"}, 1); violation(t, err) != policy.KillSwitch {
		t.Fatalf("kill switch: %v", err)
	}
}

type memSettings struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memSettings) SettingGet(_ context.Context, k string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[k]
	if !ok {
		return "", problem.ErrNotFound
	}
	return v, nil
}

func (s *memSettings) SettingPut(_ context.Context, k, v string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = v
	return nil
}

// TestSharedPolicy: a kill switch put on one node applies on another after a reload.
func TestSharedPolicy(t *testing.T) {
	st := &memSettings{m: map[string]string{}}
	ctx := context.Background()
	a, _ := policy.New(policy.DefaultConfig(), st, nil)
	b, _ := policy.New(policy.DefaultConfig(), st, nil)
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c := a.Config()
	c.Users = map[string]policy.Rule{"u": {Disabled: true}}
	if err := a.Put(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StartCall(policy.Subject{User: "u"}, "+12125550100"); violation(t, err) != policy.KillSwitch {
		t.Fatalf("%v", err)
	}
	bad := c
	bad.Block = []string{"900"}
	err := a.Put(ctx, bad)
	if pe, ok := problem.As(err); !ok || pe.Kind != problem.KindInvalid || pe.Target != "block[0]" {
		t.Fatalf("%v", err)
	}
}

// BenchmarkStartCall measures one admission and release (three subjects, the shipped block
// list) on the call path.
func BenchmarkStartCall(b *testing.B) {
	c := policy.DefaultConfig()
	c.Defaults.CallsPerMinute = 0 // the loop starts far more than 30 calls a minute
	e, _ := policy.New(c, nil, nil)
	s := policy.Subject{User: "8:acs:u", Credential: "acme", Number: "+14155550100"}
	for b.Loop() {
		c, err := e.StartCall(s, "+12125550100")
		if err != nil {
			b.Fatal(err)
		}
		c.End(0)
	}
}
