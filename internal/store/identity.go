package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
)

// Compile-time checks that DB implements the domain stores.
var (
	_ identity.Store = (*DB)(nil)
)

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
func nowMS() int64             { return time.Now().UnixMilli() }

// IdentityCreate inserts an identity.
func (db *DB) IdentityCreate(ctx context.Context, id identity.Identity) error {
	_, err := db.Exec(ctx, `INSERT INTO identities (id, created_at, token_generation) VALUES ($1, $2, $3)`,
		id.ID, ms(id.CreatedAt), id.TokenGeneration)
	return mapErr(err)
}

// IdentityGet reads an identity.
func (db *DB) IdentityGet(ctx context.Context, id string) (identity.Identity, error) {
	var out identity.Identity
	var created int64
	err := db.QueryRow(ctx, `SELECT id, created_at, token_generation FROM identities WHERE id = $1`, id).
		Scan(&out.ID, &created, &out.TokenGeneration)
	if err != nil {
		return identity.Identity{}, mapErr(err)
	}
	out.CreatedAt = fromMS(created)
	return out, nil
}

// IdentityDelete removes an identity.
func (db *DB) IdentityDelete(ctx context.Context, id string) error {
	res, err := db.Exec(ctx, `DELETE FROM identities WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// IdentityRevokeTokens bumps the identity's token generation.
func (db *DB) IdentityRevokeTokens(ctx context.Context, id string) (int64, error) {
	var gen int64
	err := db.QueryRow(ctx, `UPDATE identities SET token_generation = token_generation + 1 WHERE id = $1 RETURNING token_generation`, id).Scan(&gen)
	return gen, mapErr(err)
}

// IdentityDigestAdd records voip tokens' digest HA1s with one multi-row INSERT (all or
// nothing); now and then (one call in 16) it first drops their identities' expired ones.
// Callers batch concurrent tokens (identity.Service group-commits), so one commit serves many.
func (db *DB) IdentityDigestAdd(ctx context.Context, cs ...identity.DigestCredential) error {
	if len(cs) == 0 {
		return nil
	}
	if rand.IntN(16) == 0 {
		for _, c := range cs {
			if _, err := db.Exec(ctx, `DELETE FROM token_credentials WHERE identity_id = $1 AND expires_at < $2`, c.Identity, nowMS()); err != nil {
				return err
			}
		}
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO token_credentials (identity_id, token_id, generation, ha1_md5, ha1_sha256, expires_at) VALUES `)
	args := make([]any, 0, 6*len(cs))
	for i, c := range cs {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
		args = append(args, c.Identity, c.TokenID, c.Generation, c.HA1MD5, c.HA1SHA256, ms(c.ExpiresAt))
	}
	var err error
	if db.dialect == SQLite {
		// An autocommit write on SQLite starts deferred and contends for the lock in the busy
		// handler's sleeps; a transaction takes the write lock at BEGIN (_txlock=immediate).
		err = db.InTx(ctx, func(tx *Tx) error {
			_, err := tx.Exec(ctx, q.String(), args...)
			return err
		})
	} else {
		_, err = db.Exec(ctx, q.String(), args...)
	}
	if isForeignKeyViolation(err) {
		return problem.ErrNotFound
	}
	return mapErr(err)
}

// IdentityDigests lists the unexpired digest credentials of the identity's current generation.
func (db *DB) IdentityDigests(ctx context.Context, id string, now time.Time) ([]identity.DigestCredential, error) {
	rows, err := db.Query(ctx, `SELECT c.token_id, c.generation, c.ha1_md5, c.ha1_sha256, c.expires_at
		FROM token_credentials c JOIN identities i ON i.id = c.identity_id AND i.token_generation = c.generation
		WHERE c.identity_id = $1 AND c.expires_at > $2`, id, ms(now))
	return scanRows(rows, err, func(row Row) (identity.DigestCredential, error) {
		c := identity.DigestCredential{Identity: id}
		var exp int64
		if err := row.Scan(&c.TokenID, &c.Generation, &c.HA1MD5, &c.HA1SHA256, &exp); err != nil {
			return c, err
		}
		c.ExpiresAt = fromMS(exp)
		return c, nil
	})
}
