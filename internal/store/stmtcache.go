package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// stmtCache keeps SQLite prepared statements of the hot queries (the SMS accept inserts, the
// senders' claims and outcome writes). modernc.org/sqlite prepares every statement database/sql
// hands it afresh, and parsing was a sixth of telgw's CPU under SMS load; a *sql.Stmt is
// prepared once per connection and reused (Tx.StmtContext reuses it on the transaction's
// connection). PostgreSQL needs none of this: pgx caches prepared statements per connection
// by query text.
//
// A statement is prepared in the background the first time its query is seen (that run
// executes it unprepared): preparing needs a connection of its own, which a writer holding
// SQLite's write lock must not wait for. Queries must come in few shapes (IN lists padded to
// buckets, multi-row inserts chunked to fixed sizes); past maxCachedStmts the rest run
// unprepared.
type stmtCache struct {
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
	wg      sync.WaitGroup
}

const maxCachedStmts = 256

// cachedStmt returns the prepared statement of q (already in the dialect's syntax), or nil
// when it is not prepared (yet). SQLite only.
func (db *DB) cachedStmt(q string) *sql.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	c := &db.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[q]; st != nil {
		return st
	}
	if c.pending[q] || len(c.m)+len(c.pending) >= maxCachedStmts {
		return nil
	}
	if c.m == nil {
		c.m, c.pending = map[string]*sql.Stmt{}, map[string]bool{}
	}
	c.pending[q] = true
	c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := db.sql.PrepareContext(ctx, q)
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, q)
		if err == nil {
			c.m[q] = st
		}
	})
	return nil
}

// closeStmts waits for the statements being prepared (Close has closed the pool, so they end
// at once) and closes the cached ones.
func (db *DB) closeStmts() {
	db.stmts.wg.Wait()
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	for _, st := range db.stmts.m {
		_ = st.Close()
	}
	db.stmts.m = nil
}

// ExecP is Exec through the statement cache (on SQLite; Exec on PostgreSQL).
func (t *Tx) ExecP(ctx context.Context, query string, args ...any) (sql.Result, error) {
	q := t.db.Q(query)
	if st := t.db.cachedStmt(q); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryP is Query through the statement cache (on SQLite; Query on PostgreSQL).
func (t *Tx) QueryP(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := t.db.Q(query)
	if st := t.db.cachedStmt(q); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, q, args...)
}

// QueryP is Query through the statement cache (on SQLite; Query on PostgreSQL).
func (db *DB) QueryP(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	q := db.Q(query)
	if st := db.cachedStmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return db.sql.QueryContext(ctx, q, args...)
}

// inBuckets are the lengths IN lists are padded to on SQLite, so that a cached statement
// serves every list up to its length.
var inBuckets = []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192}

// padIn returns n rounded up to its bucket (n itself past the last).
func padIn(n int) int {
	for _, b := range inBuckets {
		if n <= b {
			return b
		}
	}
	return n
}

// inArgs appends vals to args, padded with copies of pad to padIn(len(vals)) on SQLite (a
// repeated value in an IN list changes nothing), and returns the new args and the
// placeholder list for them, numbered from len(args)+1.
func (db *DB) inArgs(args []any, vals []string, pad string) ([]any, string) {
	n := len(vals)
	if db.dialect == SQLite {
		n = padIn(n)
	}
	from := len(args) + 1
	for i := range n {
		if i < len(vals) {
			args = append(args, vals[i])
		} else {
			args = append(args, pad)
		}
	}
	return args, placeholders(from, n)
}

// chunkSizes are the row counts multi-row inserts are cut into on SQLite (largest first), so
// that their statements come in few shapes.
var chunkSizes = []int{256, 128, 64, 32, 16, 8, 4, 2, 1}

// nextChunk is how many of n rows the next multi-row insert of at most max rows takes.
func (db *DB) nextChunk(n, max int) int {
	n = min(n, max)
	if db.dialect != SQLite {
		return n
	}
	for _, c := range chunkSizes {
		if c <= n {
			return c
		}
	}
	return n
}
