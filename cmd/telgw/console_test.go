package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/console"
	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/store"
)

// TestConsoleLink: `telgw console link` stores a single-use link under the primary key's
// fingerprint and prints BASE/console/link#SECRET; -ttl bounds it.
func TestConsoleLink(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TELGW_DATA_DIR", dir)
	t.Setenv("TELGW_DATABASE_URL", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"console", "link", "-ttl", "2m"}, &out, &errOut); code != 0 {
		t.Fatalf("console link: %d %q", code, errOut.String())
	}
	m := regexp.MustCompile(`^http://127\.0\.0\.1:\d+/console/link#([A-Za-z0-9_-]{43})\n$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output %q", out.String())
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ring, err := keys.NewRing(ctx, db, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ConsoleTokenTake(ctx, console.HashSecret(m[1]), console.KindLink, time.Now().Add(3*time.Minute)); err == nil {
		t.Fatal("link usable past its -ttl")
	}
	tok, err := db.ConsoleTokenTake(ctx, console.HashSecret(m[1]), console.KindLink, time.Now())
	if err != nil || tok.KeyFP != console.KeyFingerprint(ring.Current().Primary) {
		t.Fatalf("stored link %+v, %v", tok, err)
	}
	for _, args := range [][]string{{"console"}, {"console", "link", "-ttl", "2h"}} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "telgw console") {
			t.Errorf("%v: %d %q, want usage error", args, code, errOut.String())
		}
	}
}
