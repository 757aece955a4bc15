package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/store"
)

// TestSIPCredentialsRealm: `telgw sip credentials add` goes through the same service as the
// REST edge, so with sip.realm set the stored HA1s are for that realm (the SIP edge challenges
// with it) and bad input is refused the same way. It used to hard-code the realm "telgw", so
// such credentials never authenticated.
func TestSIPCredentialsRealm(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TELGW_DATA_DIR", dir)
	t.Setenv("TELGW_DATABASE_URL", "")
	t.Setenv("TELGW_SIP_REALM", "pbx.example.com")
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, bought, unsold := buyOneOfTwo(ctx, t, db)
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"sip", "credentials"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, errOut := cli("add", "alice", "correct-horse", bought); code != 0 || !strings.Contains(out, "credential alice") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	c, err := db.SIPCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := calls.HA1("MD5", "alice", "pbx.example.com", "correct-horse"); c.HA1MD5 != want {
		t.Errorf("HA1 MD5 %s, want the one for realm pbx.example.com %s", c.HA1MD5, want)
	}
	if want := calls.HA1("SHA-256", "alice", "pbx.example.com", "correct-horse"); c.HA1SHA256 != want {
		t.Errorf("HA1 SHA-256 %s, want the one for realm pbx.example.com %s", c.HA1SHA256, want)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unsold number", []string{"add", "bob", "correct-horse", unsold}, "numbers[0]"},
		{"short password", []string{"add", "bob", "short", bought}, "password"},
		{"bad username", []string{"add", "b@b", "correct-horse", bought}, "username"},
		{"not a number", []string{"add", "bob", "correct-horse", "pizza"}, "numbers[0]"},
	} {
		if code, _, errOut := cli(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q, want 2 naming %s", tc.name, code, errOut, tc.want)
		}
	}
	if code, out, _ := cli("list"); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errOut := cli("delete", "alice"); code != 0 {
		t.Fatalf("delete: %d %q", code, errOut)
	}
}
