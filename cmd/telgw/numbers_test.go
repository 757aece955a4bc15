package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// TestNumbersAssign runs `telgw numbers assign|unassign` against a store holding purchased
// numbers and a communication user, on SQLite and on PostgreSQL.
func TestNumbersAssign(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { numbersAssign(t, store.Options{DataDir: t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { numbersAssign(t, store.Options{URL: storetest.NewPostgresDatabase(t)}) })
}

func numbersAssign(t *testing.T, o store.Options) {
	ctx := context.Background()
	t.Setenv("TELGW_DATA_DIR", o.DataDir)
	t.Setenv("TELGW_DATABASE_URL", o.URL)
	if o.DataDir == "" {
		t.Setenv("TELGW_DATA_DIR", t.TempDir())
	}
	db, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const alice = "8:acs:res-1_00000000-0000-4000-8000-00000000000a"
	const ghost = "8:acs:res-1_00000000-0000-4000-8000-0000000000ff"
	if err := db.IdentityCreate(ctx, identity.Identity{ID: alice, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	svc, bought, unsold := buyOneOfTwo(ctx, t, db)

	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"numbers"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := cli("assign", bought, alice); code != 0 || !strings.Contains(out, "assigned to "+alice) {
		t.Fatalf("assign: %d %q %q", code, out, errOut)
	}
	if got, err := svc.UserNumber(ctx, alice); err != nil || got != bought {
		t.Fatalf("after assign: %q %v", got, err)
	}
	code, out, errOut := cli("show", bought)
	var shown struct{ Route, AssignmentType string }
	if err := json.Unmarshal([]byte(out), &shown); code != 0 || err != nil || shown.Route != "user:"+alice || shown.AssignmentType != "person" {
		t.Fatalf("show: %d %q %q %v", code, out, errOut, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing user", []string{"assign", bought}, 2, "usage"},
		{"extra argument", []string{"unassign", bought, alice}, 2, "usage"},
		{"malformed user", []string{"assign", bought, "alice"}, 2, "communicationUser"},
		{"unknown user", []string{"assign", bought, ghost}, 1, "does not exist"},
		{"unsold number", []string{"assign", unsold, alice}, 1, "not purchased"},
		{"bad number", []string{"unassign", "425"}, 1, "phoneNumber"},
	} {
		if code, out, errOut := cli(tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: %d %q %q; want %d and %q", tc.name, code, out, errOut, tc.code, tc.want)
		}
	}
	for range 2 {
		if code, out, errOut := cli("unassign", bought); code != 0 || !strings.Contains(out, "assigned to no user") {
			t.Fatalf("unassign: %d %q %q", code, out, errOut)
		}
	}
	if got, err := svc.UserNumber(ctx, alice); err == nil {
		t.Fatalf("after unassign: %q", got)
	}
}

// buyOneOfTwo imports +14252000000 and +14252000001 and buys one of them (search, purchase):
// it returns the numbers service, the bought number and the unsold one.
func buyOneOfTwo(ctx context.Context, t *testing.T, db *store.DB) (*numbers.Service, string, string) {
	t.Helper()
	svc := numbers.New(numbers.Config{Store: db})
	if _, err := svc.ImportRange(ctx, "+14252000000:+14252000001", numbers.ImportInput{}); err != nil {
		t.Fatal(err)
	}
	qty := 1
	se, op, err := svc.Search(ctx, numbers.SearchRequest{CountryCode: "US", Type: "geographic", Assignment: "application",
		Calling: "inbound+outbound", SMS: "inbound+outbound", Quantity: &qty})
	if err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("search: %+v %v", op, err)
	}
	if op, err := svc.Purchase(ctx, se.ID); err != nil || op.Status != numbers.OpSucceeded {
		t.Fatalf("purchase: %+v %v", op, err)
	}
	bought := string(se.Numbers[0])
	unsold := "+14252000000"
	if bought == unsold {
		unsold = "+14252000001"
	}
	return svc, bought, unsold
}
