package store

import (
	"context"
	"time"

	"github.com/telgw/telgw/internal/console"
)

var _ console.Store = (*DB)(nil)

// ConsoleTokenPut inserts a console session or sign-in link.
func (db *DB) ConsoleTokenPut(ctx context.Context, t console.Token) error {
	_, err := db.Exec(ctx, `INSERT INTO console_tokens (hash, kind, csrf, key_fp, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.Hash, t.Kind, t.CSRF, t.KeyFP, ms(t.CreatedAt), ms(t.ExpiresAt))
	return mapErr(err)
}

// ConsoleTokenGet reads a live console token.
func (db *DB) ConsoleTokenGet(ctx context.Context, hash, kind string, now time.Time) (console.Token, error) {
	return scanConsoleToken(db.QueryRow(ctx, `SELECT hash, kind, csrf, key_fp, created_at, expires_at
		FROM console_tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3`, hash, kind, ms(now)))
}

// ConsoleTokenTake deletes and returns a live console token: one statement, so of
// concurrent takers exactly one sees the row.
func (db *DB) ConsoleTokenTake(ctx context.Context, hash, kind string, now time.Time) (console.Token, error) {
	return scanConsoleToken(db.QueryRow(ctx, `DELETE FROM console_tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3
		RETURNING hash, kind, csrf, key_fp, created_at, expires_at`, hash, kind, ms(now)))
}

// ConsoleTokenDelete removes a console token.
func (db *DB) ConsoleTokenDelete(ctx context.Context, hash string) error {
	_, err := db.Exec(ctx, `DELETE FROM console_tokens WHERE hash = $1`, hash)
	return err
}

// ConsoleTokenSweep deletes expired console tokens.
func (db *DB) ConsoleTokenSweep(ctx context.Context, now time.Time) (int, error) {
	res, err := db.Exec(ctx, `DELETE FROM console_tokens WHERE expires_at <= $1`, ms(now))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func scanConsoleToken(row Row) (console.Token, error) {
	var t console.Token
	var created, expires int64
	if err := row.Scan(&t.Hash, &t.Kind, &t.CSRF, &t.KeyFP, &created, &expires); err != nil {
		return console.Token{}, mapErr(err)
	}
	t.CreatedAt, t.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	return t, nil
}
