package store

import (
	"context"

	"github.com/telgw/telgw/internal/keys"
)

var _ keys.Store = (*DB)(nil)

// SettingGet reads a setting; problem.ErrNotFound when absent.
func (db *DB) SettingGet(ctx context.Context, key string) (string, error) {
	var v string
	err := db.QueryRow(ctx, `SELECT value FROM settings WHERE key = $1`, key).Scan(&v)
	return v, mapErr(err)
}

// SettingPut writes a setting, replacing any value.
func (db *DB) SettingPut(ctx context.Context, key, value string) error {
	_, err := db.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, nowMS())
	return err
}

// SettingPutIfAbsent writes a setting only if none exists.
func (db *DB) SettingPutIfAbsent(ctx context.Context, key, value string) error {
	_, err := db.Exec(ctx, `INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO NOTHING`, key, value, nowMS())
	return err
}
