package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// numberAssignment covers assigning purchased numbers to communication users (a user route):
// the lookup of a user's number, reassigning, clearing, other routes and unsold numbers.
func numberAssignment(t *testing.T, db *store.DB) {
	ctx := context.Background()
	es := stock(t, db, "971", 4, nil)
	// Buy the first three for an application; the fourth stays unsold.
	s, o := search(3, "971", t0, time.Minute)
	s.Assignment = numbers.AssignApplication
	if _, err := db.NumberSearchCreate(ctx, s, o, t0); err != nil {
		t.Fatal(err)
	}
	if bought, err := db.NumberSearchPurchase(ctx, s.ID, op(numbers.OpPurchase, "", t0), t0); err != nil || len(bought) != 3 {
		t.Fatalf("purchase: %v %v", bought, err)
	}
	const alice = "8:acs:res-1_00000000-0000-4000-8000-00000000000a"
	const bob = "8:acs:res-1_00000000-0000-4000-8000-00000000000b"
	user := func(id string) numbers.Route {
		t.Helper()
		r, err := numbers.UserRoute(id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	numberOf := func(id string) (numbers.E164, error) {
		t.Helper()
		return db.NumberForUser(ctx, id)
	}
	if e, err := numberOf(alice); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("nobody assigned yet: %q %v", e, err)
	}

	// Assign: the route becomes the user, the assignmentType person.
	if err := db.NumberSetRoute(ctx, es[1], user(alice)); err != nil {
		t.Fatal(err)
	}
	n, err := db.NumberGet(ctx, es[1])
	if err != nil || n.Route.Kind() != numbers.RouteUser || n.Route.Target() != alice || n.Assignment != numbers.AssignPerson {
		t.Fatalf("assigned: %+v %v", n, err)
	}
	if n, _ := db.NumberGet(ctx, es[0]); n.Assignment != numbers.AssignApplication {
		t.Fatalf("unassigned neighbour changed: %+v", n)
	}
	if e, err := numberOf(alice); err != nil || e != es[1] {
		t.Fatalf("lookup: %q %v", e, err)
	}
	if e, err := numberOf(bob); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("other user: %q %v", e, err)
	}
	// A second number for the same user: the lookup answers the lowest.
	if err := db.NumberSetRoute(ctx, es[2], user(alice)); err != nil {
		t.Fatal(err)
	}
	if err := db.NumberSetRoute(ctx, es[0], user(alice)); err != nil {
		t.Fatal(err)
	}
	if e, err := numberOf(alice); err != nil || e != es[0] {
		t.Fatalf("lowest of several: %q %v", e, err)
	}

	// Reassign es[0] to bob: alice keeps the next one.
	if err := db.NumberSetRoute(ctx, es[0], user(bob)); err != nil {
		t.Fatal(err)
	}
	if e, err := numberOf(bob); err != nil || e != es[0] {
		t.Fatalf("reassigned: %q %v", e, err)
	}
	if e, err := numberOf(alice); err != nil || e != es[1] {
		t.Fatalf("after reassigning: %q %v", e, err)
	}

	// Clearing the route (or routing elsewhere) takes the number from its user; the
	// assignmentType stays as it was.
	if err := db.NumberSetRoute(ctx, es[0], numbers.Route{}); err != nil {
		t.Fatal(err)
	}
	if e, err := numberOf(bob); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("cleared: %q %v", e, err)
	}
	if n, _ := db.NumberGet(ctx, es[0]); !n.Route.IsDefault() || n.Assignment != numbers.AssignPerson {
		t.Fatalf("cleared: %+v", n)
	}
	sip, _ := numbers.SIPRoute("sip:pbx.example.com")
	if err := db.NumberSetRoute(ctx, es[1], sip); err != nil {
		t.Fatal(err)
	}
	if e, err := numberOf(alice); err != nil || e != es[2] {
		t.Fatalf("after routing es[1] to SIP: %q %v", e, err)
	}

	// Unsold and released numbers are never anyone's.
	if err := db.NumberSetRoute(ctx, es[3], user(bob)); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("assign unsold: %v", err)
	}
	if err := db.NumberSetRoute(ctx, "+19712009999", user(bob)); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("assign unknown: %v", err)
	}
	if err := db.NumberRelease(ctx, es[2], t0.Add(time.Hour), op(numbers.OpRelease, string(es[2]), t0)); err != nil {
		t.Fatal(err)
	}
	if e, err := numberOf(alice); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("released number still assigned: %q %v", e, err)
	}
}
