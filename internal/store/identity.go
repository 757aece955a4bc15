package store

import (
	"context"
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
