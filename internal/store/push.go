package store

import (
	"context"

	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/push"
)

var _ push.Store = (*DB)(nil)

// PushDeviceUpsert registers a device token, moving it to identity if another had it.
func (db *DB) PushDeviceUpsert(ctx context.Context, d push.Device) error {
	_, err := db.Exec(ctx, `INSERT INTO push_devices (platform, token, identity_id, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, token) DO UPDATE SET identity_id = excluded.identity_id, created_at = excluded.created_at`,
		string(d.Platform), d.Token, d.Identity, ms(d.CreatedAt))
	if isForeignKeyViolation(err) {
		return problem.NotFound("identity", "identity %q does not exist", d.Identity)
	}
	return mapErr(err)
}

// PushDeviceDelete removes an identity's device token.
func (db *DB) PushDeviceDelete(ctx context.Context, identity string, p push.Platform, token string) error {
	res, err := db.Exec(ctx, `DELETE FROM push_devices WHERE platform = $1 AND token = $2 AND identity_id = $3`, string(p), token, identity)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// PushDevicesFor lists an identity's device tokens.
func (db *DB) PushDevicesFor(ctx context.Context, identity string) ([]push.Device, error) {
	rows, err := db.Query(ctx, `SELECT platform, token, identity_id, created_at FROM push_devices WHERE identity_id = $1 ORDER BY created_at`, identity)
	return scanRows(rows, err, func(row Row) (push.Device, error) {
		var d push.Device
		var p string
		var created int64
		if err := row.Scan(&p, &d.Token, &d.Identity, &created); err != nil {
			return d, err
		}
		d.Platform, d.CreatedAt = push.Platform(p), fromMS(created)
		return d, nil
	})
}
