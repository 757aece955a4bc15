package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telgw/telgw/internal/store"
)

// PostgresAdminURL is the server the suite creates its databases on: TELGW_TEST_PG, default
// postgres://postgres@127.0.0.1:5432/postgres.
func PostgresAdminURL() string {
	if u := os.Getenv("TELGW_TEST_PG"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres"
}

var dbSeq atomic.Int64

// NewPostgresDatabase creates a fresh, empty database and returns its URL; it is dropped when
// the test ends. When PostgreSQL does not answer the test is skipped, or failed when CI=true
// (CI must never skip the PostgreSQL half of the suite silently).
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	base := PostgresAdminURL()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	admin, err := pgx.Connect(cctx, base)
	cancel()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable at %s (CI=true, not skipping): %v", base, err)
		}
		t.Skipf("skipping: PostgreSQL unreachable at %s: %v", base, err)
	}
	name := fmt.Sprintf("telgw_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000, dbSeq.Add(1))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(context.Background())
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// OpenPostgres opens and migrates a fresh PostgreSQL database for the test.
func OpenPostgres(t testing.TB) *store.DB {
	t.Helper()
	return open(t, store.Options{URL: NewPostgresDatabase(t)})
}

// OpenSQLite opens and migrates a fresh SQLite database in a temp dir.
func OpenSQLite(t testing.TB) *store.DB {
	t.Helper()
	return open(t, store.Options{DataDir: t.TempDir()})
}

// Dialects runs fn once per store dialect, each in a subtest named after it.
func Dialects(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, OpenSQLite) })
	t.Run("postgres", func(t *testing.T) { fn(t, OpenPostgres) })
}

func open(t testing.TB, o store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(strings.TrimSpace(err.Error()))
	}
	return db
}
