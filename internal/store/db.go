// Package store implements every domain's store interface on SQL, once, for two dialects:
// SQLite (the embedded default, pure Go modernc.org/sqlite) and PostgreSQL (pgx/v5 pool).
// Queries are written with $N placeholders; DB rewrites them for SQLite. Dialect-specific
// statements (row locks, COPY) are small branches on Dialect.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/telgw/telgw/internal/problem"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is a connection pool to either store, with the placeholder rewrite applied.
type DB struct {
	sql     *sql.DB
	pool    *pgxpool.Pool // nil on SQLite
	dialect Dialect
	rewrite sync.Map // query → rewritten query (SQLite)
	// wmu serialises this process's SQLite write transactions in Go: waiting on SQLite's busy
	// handler instead sleeps in steps of up to 100ms, which queued writers (the SMS accept
	// batches, the senders' outcome commits) would all pay.
	wmu sync.Mutex
	// jobs inserts River jobs inside this store's transactions (Tx.InsertJob). It is
	// insert-only: internal/jobs builds the clients that work them.
	jobs *river.Client[*sql.Tx]
	// stmts caches SQLite prepared statements of hot queries (stmtcache.go).
	stmts stmtCache
	// notify limits the insert notifications of InsertJobs' own statement (jobs_insert.go).
	notify notifyLimiter
}

// Options tunes Open.
type Options struct {
	// URL is empty for SQLite (in DataDir) or a postgres:// URL.
	URL string
	// DataDir holds telgw.db for SQLite; Open makes it 0700 and the database files 0600.
	DataDir string
	// MaxConns caps the pool; 0 picks a default per dialect.
	MaxConns int
}

// Open connects to the store selected by opts. It does not migrate.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return openSQLite(opts)
	}
	return openPostgres(ctx, opts)
}

// PrivateDir creates dir (mode 0700) or makes an existing one 0700: it holds the database and
// the connection string, which carries the access key. Every start applies it, so a directory
// loosened by hand, by a backup restore or by an older version is closed again.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: make it 0700: %w", dir, err)
	}
	return nil
}

// PrivateFiles makes those of paths that exist 0600 (owner read and write only).
func PrivateFiles(paths ...string) error {
	for _, p := range paths {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s 0600: %w", p, err)
		}
	}
	return nil
}

// sqliteFiles are the database file and the ones SQLite keeps beside it.
func sqliteFiles(path string) []string {
	return []string{path, path + "-wal", path + "-shm", path + "-journal"}
}

func openSQLite(opts Options) (*DB, error) {
	if err := PrivateDir(opts.DataDir); err != nil {
		return nil, err
	}
	path := filepath.Join(opts.DataDir, "telgw.db")
	// SQLite creates a missing database 0644 and its -wal and -shm files with the database
	// file's mode: create it 0600 first and close up what an earlier start left open.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	_ = f.Close()
	if err := PrivateFiles(sqliteFiles(path)...); err != nil {
		return nil, err
	}
	// WAL lets readers run beside the one writer; busy_timeout waits for the writer instead of
	// failing; _txlock=immediate takes the write lock at BEGIN, so every transaction is
	// serialised against other writers and read-then-write is atomic.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	n := opts.MaxConns
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// The first connection created -wal and -shm; make sure of their mode.
	if err := PrivateFiles(sqliteFiles(path)...); err != nil {
		_ = db.Close()
		return nil, err
	}
	return newDB(db, nil, SQLite)
}

func openPostgres(ctx context.Context, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	} else if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	return newDB(stdlib.OpenDBFromPool(pool), pool, Postgres)
}

// newDB wraps an open pool and builds its insert-only River client: database/sql on both
// dialects, so InsertJob runs on the very *sql.Tx that writes the domain's rows (on
// PostgreSQL its pg_notify wakes the pgx working clients when the transaction commits).
//
// The client has no Workers bundle, which is what makes it insert-only, and River then skips
// its unknown-kind check: a job of a kind no node works is stored, and the working client
// fails it as unknown. That is what a rolling upgrade needs (an older node leaves a newer
// kind to a newer node); domains insert only kinds they register.
func newDB(sdb *sql.DB, pool *pgxpool.Pool, d Dialect) (*DB, error) {
	db := &DB{sql: sdb, pool: pool, dialect: d}
	var err error
	cfg := &river.Config{Logger: slog.New(slog.DiscardHandler)}
	if d == SQLite {
		db.jobs, err = river.NewClient(riversqlite.New(sdb), cfg)
	} else {
		db.jobs, err = river.NewClient(riverdatabasesql.New(sdb), cfg)
	}
	if err != nil {
		_ = sdb.Close()
		if pool != nil {
			pool.Close()
		}
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	return db, nil
}

// Close releases the pool.
func (db *DB) Close() error {
	err := db.sql.Close()
	db.closeStmts()
	if db.pool != nil {
		db.pool.Close()
	}
	return err
}

// Dialect reports which engine this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// SQL returns the database/sql handle (for River's drivers and migrations).
func (db *DB) SQL() *sql.DB { return db.sql }

// Pool returns the pgx pool on PostgreSQL, nil on SQLite.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks the store answers (used by /readyz).
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

var placeholder = regexp.MustCompile(`\$(\d+)`)

// Q returns query in this dialect's placeholder syntax.
func (db *DB) Q(query string) string {
	if db.dialect != SQLite {
		return query
	}
	if q, ok := db.rewrite.Load(query); ok {
		return q.(string)
	}
	q := placeholder.ReplaceAllString(query, "?$1")
	if inOrder(query) {
		// Anonymous parameters: SQLite looks a numbered one's name up in a list per bind,
		// which is quadratic in a multi-row INSERT's thousands of parameters.
		q = placeholder.ReplaceAllString(query, "?")
	}
	db.rewrite.Store(query, q)
	return q
}

// inOrder reports whether query's placeholders are $1, $2, … each once and in order, so that
// anonymous ? parameters bind the same arguments.
func inOrder(query string) bool {
	for i, m := range placeholder.FindAllStringSubmatch(query, -1) {
		if m[1] != strconv.Itoa(i+1) {
			return false
		}
	}
	return true
}

// Querier is what both *sql.DB and *sql.Tx offer; store methods run on either.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Exec runs a statement outside a transaction.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, db.Q(query), args...)
}

// Query runs a query outside a transaction.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.Q(query), args...)
}

// Row is a single-row result: *sql.Row, or pgx's row on PostgreSQL outside transactions.
type Row interface {
	Scan(dest ...any) error
}

// QueryRow runs a single-row query outside a transaction. On PostgreSQL it goes straight to the
// pgx pool (no database/sql layer): these are the hot reads (token issue, number lookups).
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	if db.pool != nil {
		return db.pool.QueryRow(ctx, query, args...)
	}
	return db.sql.QueryRowContext(ctx, db.Q(query), args...)
}

// Tx is a transaction with the dialect's placeholder rewrite.
type Tx struct {
	db *DB
	tx *sql.Tx
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.db.Q(query), args...)
}

// Query runs a query in the transaction.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.db.Q(query), args...)
}

// QueryRow runs a single-row query in the transaction.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.db.Q(query), args...)
}

// InsertJob enqueues a River job inside the transaction: the job becomes visible to the
// workers exactly when the transaction commits, and vanishes with it on rollback. It is the
// outbox every domain's transaction interface offers (sms.Tx, events.JobInserter).
func (t *Tx) InsertJob(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := t.db.jobs.InsertTx(ctx, t.tx, args, opts); err != nil {
		return fmt.Errorf("insert job %s: %w", args.Kind(), err)
	}
	return nil
}

// InsertJobs enqueues several River jobs inside the transaction in one statement (InsertJob
// for a batch). Jobs with no more than a queue, a priority and max attempts go through
// telgw's own statements (insertPlainJobs), the others through River.
func (t *Tx) InsertJobs(ctx context.Context, jobs []river.InsertManyParams) error {
	if len(jobs) > 0 {
		var err error
		if jobs, err = t.insertPlainJobs(ctx, jobs); err != nil {
			return err
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := t.db.jobs.InsertManyTx(ctx, t.tx, jobs); err != nil {
		return fmt.Errorf("insert %d jobs: %w", len(jobs), err)
	}
	return nil
}

// InsertJob enqueues a River job in a transaction of its own: for jobs that belong to no
// rows (an IncomingCall event, a mid-call callback), so *DB is an events.JobInserter too.
func (db *DB) InsertJob(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	return db.InTx(ctx, func(tx *Tx) error { return tx.InsertJob(ctx, args, opts) })
}

// Dialect reports which engine the transaction runs on.
func (t *Tx) Dialect() Dialect { return t.db.dialect }

// InTx runs fn in a transaction, committing when fn returns nil. On SQLite the transaction takes
// the write lock at BEGIN; on PostgreSQL it runs at READ COMMITTED and fn takes row locks.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) (err error) {
	if db.dialect == SQLite {
		db.wmu.Lock()
		defer db.wmu.Unlock()
	}
	stx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err = fn(&Tx{db: db, tx: stx}); err != nil {
		return err
	}
	if err = stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// mapErr turns driver errors into problem sentinels: no rows → ErrNotFound, unique violations
// → ErrConflict. Other errors pass through.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return problem.ErrNotFound
	}
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %v", problem.ErrConflict, err)
	}
	return err
}

func isForeignKeyViolation(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}
