package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/policy"
)

// TestPolicySharedByNodes: two nodes on one PostgreSQL; a kill switch set over the REST API on
// one node reaches the other within policy.refresh; bad input gets ACS errors naming the field.
func TestPolicySharedByNodes(t *testing.T) {
	db := PostgresURL(t)
	env := []string{"TELGW_POLICY_REFRESH=200ms"}
	a := StartTelgw(t, Options{DatabaseURL: db, Env: env})
	b := StartTelgw(t, Options{DatabaseURL: db, Env: env})
	ca, cb := NewClient(t, a.ConnString), NewClient(t, b.ConnString)

	var p policy.Config
	r := ca.Do(t, "GET", "/telgw/policy", nil)
	if r.Status != 200 {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &p)
	if !slices.Contains(p.Block, "+1900") || !slices.Contains(p.Block, "+1976") || p.Defaults.ConcurrentCalls != 10 {
		t.Fatalf("default policy %+v", p)
	}
	if r := ca.Do(t, "PUT", "/telgw/policy/credentials/acme", `{"disabled":true}`); r.Status != 200 {
		t.Fatalf("kill switch: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var q policy.Config
		cb.Do(t, "GET", "/telgw/policy", nil).JSON(t, &q)
		if q.Credentials["acme"].Disabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node b never saw the kill switch: %+v", q)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		target             string
	}{
		{"PUT", "/telgw/policy", `{"block":["1900"]}`, 400, "block[0]"},
		{"PUT", "/telgw/policy", `{"defaults":{"smsPerDay":-1}}`, 400, "defaults.smsPerDay"},
		{"PUT", "/telgw/policy", `{"block":`, 400, "body"},
		{"PUT", "/telgw/policy/numbers/14155550100", `{}`, 400, `numbers["14155550100"]`},
		{"PUT", "/telgw/policy/trunks/x", `{}`, 404, "kind"},
		{"DELETE", "/telgw/policy/users/nobody", "", 404, "id"},
	} {
		r := ca.Do(t, tc.method, tc.path, tc.body)
		if r.Status != tc.status {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, r.Status, r.Body)
		}
		if _, target, _ := r.ErrorCode(t); target != tc.target {
			t.Errorf("%s %s %s: target %q, want %q", tc.method, tc.path, tc.body, target, tc.target)
		}
	}
	// A policy put without "block" keeps the shipped list.
	var q policy.Config
	if r := ca.Do(t, "PUT", "/telgw/policy", `{"defaults":{"concurrentCalls":3},"credentials":{"acme":{"disabled":true}}}`); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	} else if r.JSON(t, &q); !slices.Contains(q.Block, "+1900") || q.Defaults.ConcurrentCalls != 3 {
		t.Fatalf("put result %+v", q)
	}
	if r := ca.Do(t, "DELETE", "/telgw/policy/credentials/acme", ""); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := ca.Do(t, "GET", "/telgw/policy/usage", nil); r.Status != 200 {
		t.Fatalf("usage: %d %s", r.Status, r.Body)
	}
	r = ca.Do(t, "GET", "/telgw/policy", nil, func(req *http.Request) { req.Header.Del("Authorization") })
	if r.Status != 401 {
		t.Fatalf("unauthenticated: %d", r.Status)
	}
}
