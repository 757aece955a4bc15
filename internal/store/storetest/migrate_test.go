package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/telgw/telgw/internal/store"
)

// TestConcurrentMigrate starts several nodes on one fresh PostgreSQL database at once, each
// with its own pool, as a cluster does after a deploy: every Migrate succeeds and each goose
// and River migration is applied exactly once. Unserialised, the nodes collide only now and
// then (duplicate catalog rows), so it takes a few rounds.
func TestConcurrentMigrate(t *testing.T) {
	for round := range 6 {
		if !t.Run(fmt.Sprint("round", round), concurrentMigrate) {
			return
		}
	}
}

func concurrentMigrate(t *testing.T) {
	const nodes = 6
	url := NewPostgresDatabase(t)
	ctx := context.Background()
	dbs := make([]*store.DB, nodes)
	for i := range dbs {
		db, err := store.Open(ctx, store.Options{URL: url, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		dbs[i] = db
	}
	errs := make([]error, nodes)
	var start, done sync.WaitGroup
	start.Add(1)
	for i, db := range dbs {
		done.Go(func() {
			start.Wait()
			errs[i] = db.Migrate(ctx)
		})
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Migrate: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	db := dbs[0]
	var rows, versions int
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions {
		t.Fatalf("goose_db_version has %d rows for %d versions: a migration ran more than once", rows, versions)
	}
	if err := db.QueryRow(ctx, `SELECT count(*), count(DISTINCT (line, version)) FROM river_migration`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows == 0 || rows != versions {
		t.Fatalf("river_migration has %d rows for %d versions", rows, versions)
	}
	// A later start finds nothing to do.
	if err := dbs[1].Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
