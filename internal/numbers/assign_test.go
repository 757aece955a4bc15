package numbers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

const (
	alice = "8:acs:res-1_00000000-0000-4000-8000-00000000000a"
	bob   = "8:acs:res-1_00000000-0000-4000-8000-00000000000b"
	ghost = "8:acs:res-1_00000000-0000-4000-8000-0000000000ff"
)

func TestParseUserID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{alice, true},
		{"8:acs:1b5cc06b-f352-4571-b1e6-d9b259b7c776_00000019-8f0c-4a4c-a5b5-cb3a0d00f36e", true},
		{"8:acs:my_resource_00000019-8f0c-4a4c-a5b5-cb3a0d00f36e", true},
		{"", false},
		{"8:acs:", false},
		{"8:acs:_00000019-8f0c-4a4c-a5b5-cb3a0d00f36e", false},
		{"8:acs:res-1", false},
		{"8:acs:res-1_", false},
		{"8:acs:res-1_not-a-uuid", false},
		{"8:acs:res-1_00000019-8f0c-4a4c-a5b5-cb3a0d00f36", false},
		{"8:acs:res-1_00000019-8f0c-4a4c-a5b5-cb3a0d00f36ez", false},
		{"8:acs:res 1_00000019-8f0c-4a4c-a5b5-cb3a0d00f36e", false},
		{"8:teamsvisitor:res-1_00000019-8f0c-4a4c-a5b5-cb3a0d00f36e", false},
		{"user:" + alice, false},
		{"+14253339876", false},
	} {
		got, err := numbers.ParseUserID("communicationUser", tc.id)
		if tc.ok != (err == nil) {
			t.Errorf("ParseUserID(%q) = %q, %v; want ok=%v", tc.id, got, err, tc.ok)
			continue
		}
		if err != nil {
			pe, _ := problem.As(err)
			if pe == nil || pe.Kind != problem.KindInvalid || pe.Target != "communicationUser" {
				t.Errorf("ParseUserID(%q): %#v, want KindInvalid naming communicationUser", tc.id, err)
			}
		} else if got != tc.id {
			t.Errorf("ParseUserID(%q) = %q", tc.id, got)
		}
	}
}

// FuzzParseUserID checks ParseUserID never panics and that what it accepts is a valid user
// route target whose text form parses back to the same user.
func FuzzParseUserID(f *testing.F) {
	for _, s := range []string{alice, "8:acs:", "8:acs:_", "8:acs:a_b", "8:acs:x\n_00000000-0000-4000-8000-00000000000a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := numbers.ParseUserID("communicationUser", s)
		if err != nil {
			return
		}
		r, err := numbers.UserRoute(id)
		if err != nil {
			t.Fatalf("ParseUserID accepted %q but UserRoute rejects it: %v", s, err)
		}
		back, err := numbers.ParseRoute(r.String())
		if err != nil || back.Kind() != numbers.RouteUser || back.Target() != s {
			t.Fatalf("route %q of %q parses back to %v %v", r.String(), s, back, err)
		}
	})
}

// buy imports +1<npa>2000000… and purchases qty of them for an application.
func buy(t *testing.T, svc *numbers.Service, npa string, qty int) []string {
	t.Helper()
	ctx := context.Background()
	first := "+1" + npa + "2000000"
	last := "+1" + npa + "20000" + string(rune('0'+qty/10)) + string(rune('0'+qty%10))
	if _, err := svc.ImportRange(ctx, first+":"+last, numbers.ImportInput{Carrier: "carrier-a"}); err != nil {
		t.Fatal(err)
	}
	se, op, err := svc.Search(ctx, numbers.SearchRequest{CountryCode: "US", Type: "geographic", Assignment: "application",
		Calling: "inbound+outbound", SMS: "inbound+outbound", AreaCode: npa, Quantity: &qty})
	if err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("search: %+v %v", op, err)
	}
	if op, err := svc.Purchase(ctx, se.ID); err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("purchase: %+v %v", op, err)
	}
	out := make([]string, len(se.Numbers))
	for i, e := range se.Numbers {
		out[i] = string(e)
	}
	return out
}

func wantProblem(t *testing.T, what string, err error, kind problem.Kind, target string) {
	t.Helper()
	pe, ok := problem.As(err)
	if !ok || pe.Kind != kind || pe.Target != target {
		t.Fatalf("%s: %v, want kind %d naming %q", what, err, kind, target)
	}
}

func TestAssignUser(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		t.Parallel()
		ctx := context.Background()
		var lookupErr error
		svc := numbers.New(numbers.Config{Store: open(t), UserExists: func(_ context.Context, id string) (bool, error) {
			return id != ghost, lookupErr
		}})
		es := buy(t, svc, "425", 3)
		if _, err := svc.ImportRange(ctx, "+12062000000:+12062000000", numbers.ImportInput{}); err != nil {
			t.Fatal(err)
		}
		unsold := "+12062000000"

		// Bad input, unknown things, unsold numbers.
		wantProblem(t, "bad number", svc.AssignUser(ctx, "425", alice), problem.KindInvalid, "phoneNumber")
		wantProblem(t, "bad user", svc.AssignUser(ctx, es[0], "8:acs:nope"), problem.KindInvalid, "communicationUser")
		wantProblem(t, "unknown user", svc.AssignUser(ctx, es[0], ghost), problem.KindNotFound, "communicationUser")
		wantProblem(t, "unknown number", svc.AssignUser(ctx, "+14253339876", alice), problem.KindNotFound, "phoneNumber")
		wantProblem(t, "unsold number", svc.AssignUser(ctx, unsold, alice), problem.KindConflict, "phoneNumber")
		lookupErr = errors.New("identity store down")
		if err := svc.AssignUser(ctx, es[0], alice); !errors.Is(err, lookupErr) || problem.KindOf(err) != problem.KindInternal {
			t.Fatalf("user lookup failure: %v", err)
		}
		lookupErr = nil
		wantProblem(t, "nobody's number", func() error { _, err := svc.UserNumber(ctx, alice); return err }(),
			problem.KindNotFound, "communicationUser")
		wantProblem(t, "bad user lookup", func() error { _, err := svc.UserNumber(ctx, "alice"); return err }(),
			problem.KindInvalid, "communicationUser")

		// Assign: route and assignmentType change; the user's number is found.
		if err := svc.AssignUser(ctx, es[0], alice); err != nil {
			t.Fatal(err)
		}
		n, err := svc.Get(ctx, es[0])
		if err != nil || n.Route.String() != "user:"+alice || n.Assignment != numbers.AssignPerson {
			t.Fatalf("assigned: %+v %v", n, err)
		}
		if got, err := svc.UserNumber(ctx, alice); err != nil || got != es[0] {
			t.Fatalf("UserNumber: %q %v", got, err)
		}

		// Reassign to bob.
		if err := svc.AssignUser(ctx, es[0], bob); err != nil {
			t.Fatal(err)
		}
		if got, err := svc.UserNumber(ctx, bob); err != nil || got != es[0] {
			t.Fatalf("reassigned: %q %v", got, err)
		}
		if _, err := svc.UserNumber(ctx, alice); !errors.Is(err, problem.ErrNotFound) {
			t.Fatalf("old user keeps the number: %v", err)
		}

		// Unassign clears a user route, is idempotent and leaves other routes alone.
		if err := svc.UnassignUser(ctx, es[0]); err != nil {
			t.Fatal(err)
		}
		if err := svc.UnassignUser(ctx, es[0]); err != nil {
			t.Fatalf("unassign twice: %v", err)
		}
		if n, _ := svc.Get(ctx, es[0]); !n.Route.IsDefault() {
			t.Fatalf("unassigned: %+v", n)
		}
		if _, err := svc.UserNumber(ctx, bob); !errors.Is(err, problem.ErrNotFound) {
			t.Fatalf("unassigned number still found: %v", err)
		}
		sip, _ := numbers.SIPRoute("sip:pbx.example.com")
		if err := svc.SetRoute(ctx, es[1], sip); err != nil {
			t.Fatal(err)
		}
		if err := svc.UnassignUser(ctx, es[1]); err != nil {
			t.Fatal(err)
		}
		if n, _ := svc.Get(ctx, es[1]); n.Route.String() != "sip:pbx.example.com" {
			t.Fatalf("unassign changed a SIP route: %+v", n)
		}
		wantProblem(t, "unassign unsold", svc.UnassignUser(ctx, unsold), problem.KindConflict, "phoneNumber")
		wantProblem(t, "unassign unknown", svc.UnassignUser(ctx, "+14253339876"), problem.KindNotFound, "phoneNumber")
		if err := svc.UnassignUser(ctx, "+1425"); !strings.Contains(err.Error(), "phoneNumber") || problem.KindOf(err) != problem.KindInvalid {
			t.Fatalf("unassign bad number: %v", err)
		}
	})
}
