// Package e2e runs telgw as users do — the real binary, `telgw serve` — against real peers:
// the official ACS SDKs from npm, SIPp, an SMSC, PostgreSQL. Shared helpers live here.
package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/testnode"
)

var telgwBin string

func TestMain(m *testing.M) {
	var err error
	if telgwBin, err = testnode.Bin(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// goleak fails the run when a goroutine outlives the tests, then Cleanup removes the build.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		testnode.Cleanup()
		os.Exit(code)
	}))
}

// inCI reports whether missing peers must fail rather than skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// requirePeer skips (or, in CI, fails) when a peer program is missing.
func requirePeer(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if inCI() {
		t.Fatalf("%s is missing (CI=true: peers are required; run .ci/run)", what)
	}
	t.Skipf("%s is missing; run .ci/run to install test peers", what)
}

// requireNodePeers checks node and test/peers/node_modules.
func requireNodePeers(t testing.TB) string {
	t.Helper()
	_, err := exec.LookPath("node")
	requirePeer(t, err == nil, "node")
	dir, _ := filepath.Abs("../peers")
	_, err = os.Stat(filepath.Join(dir, "node_modules"))
	requirePeer(t, err == nil, "test/peers/node_modules (npm ci in test/peers)")
	return dir
}

// PostgresURL creates a fresh database for this test and drops it afterwards.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TELGW_TEST_PG")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	db, err := sql.Open("pgx", admin)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if inCI() {
			t.Fatalf("PostgreSQL unreachable at %s (CI=true): %v", admin, err)
		}
		t.Skipf("PostgreSQL unreachable at %s: %v", admin, err)
	}
	name := fmt.Sprintf("telgw_e2e_%d", time.Now().UnixNano())
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		_ = db.Close()
	})
	i := strings.LastIndex(admin, "/")
	return admin[:i+1] + name
}

// Telgw is a running `telgw serve` (the shared harness, internal/testnode).
type Telgw = testnode.Node

// Options configures StartTelgw.
type Options struct {
	// Postgres selects a fresh PostgreSQL database instead of SQLite.
	Postgres bool
	// DataDir reuses a data directory (restart tests); default a new temp dir.
	DataDir string
	// DatabaseURL reuses a database (restart tests).
	DatabaseURL string
	// Env adds TELGW_* variables.
	Env []string
}

// StartTelgw runs `telgw serve` on ports the kernel picks and waits until /readyz answers.
func StartTelgw(t testing.TB, o Options) *Telgw {
	t.Helper()
	if o.Postgres && o.DatabaseURL == "" {
		o.DatabaseURL = PostgresURL(t)
	}
	return testnode.Start(t, testnode.Options{Bin: telgwBin, DataDir: o.DataDir, DatabaseURL: o.DatabaseURL, Env: o.Env})
}

// RunNode runs a node test file in test/peers with env, failing the test on failure.
func RunNode(t testing.TB, file string, env ...string) string {
	t.Helper()
	dir := requireNodePeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	return string(out)
}
