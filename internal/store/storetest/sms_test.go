package storetest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telgw/telgw/internal/store"
)

func TestSMSSQLite(t *testing.T) {
	SMS(t, func(t *testing.T) *store.DB {
		db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestSMSPostgres runs the suite on a fresh database per case at TELGW_TEST_PG (default
// postgres://postgres@127.0.0.1:5432/postgres). Unreachable: skipped, or failed with CI=true.
func TestSMSPostgres(t *testing.T) {
	base := os.Getenv("TELGW_TEST_PG")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/postgres"
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL unreachable at %s: %v", base, err)
		}
		t.Skipf("skipping: PostgreSQL unreachable at %s: %v", base, err)
	}
	defer admin.Close(ctx)
	SMS(t, func(t *testing.T) *store.DB {
		name := fmt.Sprintf("telgw_smstest_%d", time.Now().UnixNano())
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		cfg, _ := pgx.ParseConfig(base)
		url := fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, name)
		if cfg.Password != "" {
			url = fmt.Sprintf("postgres://%s:%s@%s:%d/%s", cfg.User, cfg.Password, cfg.Host, cfg.Port, name)
		}
		db, err := store.Open(ctx, store.Options{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = db.Close()
			_, _ = admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		})
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	})
}
