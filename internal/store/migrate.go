package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// riverMigrateLockID is the PostgreSQL advisory lock River's migrations run under
// (crc32 of "telgw river migrate"); goose's own runs under lock.DefaultLockID.
const riverMigrateLockID int64 = 0x43ea52d7

// Migrate applies telgw's versioned migrations (goose, files in migrations/<dialect>/) and
// River's own schema. It is idempotent and safe to run from several nodes starting at once:
// on PostgreSQL goose and then River each hold a session-level advisory lock while they
// migrate, so the nodes take turns and all but the first find nothing left to do. (SQLite is
// one node's file; its write lock serialises.)
func (db *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/"+string(db.dialect))
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.dialect == Postgres {
		dialect = goose.DialectPostgres
		// Poll for the lock every second, for up to 10 minutes (a long migration on another
		// node); goose releases it when Up returns, and PostgreSQL when a dead node's
		// session ends.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
		if err != nil {
			return fmt.Errorf("migrations lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.sql, sub, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := db.migrateRiver(ctx); err != nil {
		return fmt.Errorf("migrate river: %w", err)
	}
	return nil
}

func (db *DB) migrateRiver(ctx context.Context) error {
	if db.dialect == Postgres {
		m, err := rivermigrate.New(riverpgxv5.New(db.pool), nil)
		if err != nil {
			return err
		}
		// River applies each version in its own transaction (some add enum values a later
		// statement uses), so the lock is session-level, on a connection of its own outside
		// the pool (which River's migrations use, even when it holds one connection).
		// Closing the session releases the lock.
		conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, riverMigrateLockID); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}
	m, err := rivermigrate.New(riversqlite.New(db.sql), nil)
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

// MigrationVersion reports the newest applied telgw migration.
func (db *DB) MigrationVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.QueryRow(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	return v, err
}
