package store

import (
	"context"
	"fmt"
	"time"

	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/problem"
)

var _ cluster.Store = (*DB)(nil)

const nodeCols = `id, name, sip_addr, http_addr, version, started_at, heartbeat_at, expires_at, draining, calls, registrations`

func scanNode(r Row) (cluster.Node, error) {
	var n cluster.Node
	var started, beat, exp int64
	err := r.Scan(&n.ID, &n.Name, &n.SIPAddr, &n.HTTPAddr, &n.Version, &started, &beat, &exp, &n.Draining, &n.Calls, &n.Registrations)
	n.Started, n.Heartbeat, n.Expires = time.UnixMilli(started), time.UnixMilli(beat), time.UnixMilli(exp)
	return n, err
}

// NodeHeartbeat inserts or refreshes a node's row.
func (db *DB) NodeHeartbeat(ctx context.Context, n cluster.Node) error {
	_, err := db.Exec(ctx, `INSERT INTO cluster_nodes (`+nodeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, sip_addr = excluded.sip_addr, http_addr = excluded.http_addr,
		version = excluded.version, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
		draining = excluded.draining, calls = excluded.calls, registrations = excluded.registrations`,
		n.ID, n.Name, n.SIPAddr, n.HTTPAddr, n.Version, n.Started.UnixMilli(), n.Heartbeat.UnixMilli(), n.Expires.UnixMilli(),
		n.Draining, n.Calls, n.Registrations)
	if err != nil {
		return fmt.Errorf("node heartbeat: %w", err)
	}
	return nil
}

// NodeLeave removes a stopping node, its bindings and its leases.
func (db *DB) NodeLeave(ctx context.Context, id string) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM cluster_bindings WHERE node_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cluster_leases SET node_id = '', expires_at = 0 WHERE node_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM cluster_nodes WHERE id = $1`, id)
		return err
	})
}

// Nodes lists the live nodes, oldest first.
func (db *DB) Nodes(ctx context.Context, now time.Time) ([]cluster.Node, error) {
	rows, err := db.Query(ctx, `SELECT `+nodeCols+` FROM cluster_nodes WHERE expires_at > $1 ORDER BY started_at, id`, now.UnixMilli())
	return scanRows(rows, err, scanNode)
}

// NodesSweep deletes long-dead nodes with their bindings, and expired bindings.
func (db *DB) NodesSweep(ctx context.Context, now, before time.Time) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM cluster_nodes WHERE expires_at < $1`, before.UnixMilli()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM cluster_bindings WHERE expires_at <= $1
			OR node_id NOT IN (SELECT id FROM cluster_nodes)`, now.UnixMilli())
		return err
	})
}

// BindingsPut replaces a node's bindings of one identity.
func (db *DB) BindingsPut(ctx context.Context, nodeID, identity string, bs []cluster.Binding) error {
	return db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM cluster_bindings WHERE identity = $1 AND node_id = $2`, identity, nodeID); err != nil {
			return err
		}
		for _, b := range bs {
			if _, err := tx.Exec(ctx, `INSERT INTO cluster_bindings (identity, node_id, bkey, contact, user_agent, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (identity, node_id, bkey) DO UPDATE SET contact = excluded.contact,
				user_agent = excluded.user_agent, expires_at = excluded.expires_at`,
				identity, nodeID, b.Key, b.Contact, b.UserAgent, b.Expires.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

// BindingHolders lists the live, not draining nodes with a live binding of identity.
func (db *DB) BindingHolders(ctx context.Context, identity string, now time.Time) ([]cluster.Node, error) {
	rows, err := db.Query(ctx, `SELECT `+nodeCols+` FROM cluster_nodes n WHERE n.expires_at > $2 AND n.draining = FALSE
		AND EXISTS (SELECT 1 FROM cluster_bindings b WHERE b.identity = $1 AND b.node_id = n.id AND b.expires_at > $2)
		ORDER BY n.started_at, n.id`, identity, now.UnixMilli())
	return scanRows(rows, err, scanNode)
}

// LeaseAcquire takes a free slot of p.Name. On PostgreSQL concurrent nodes skip each other's
// locked candidate rows (FOR UPDATE SKIP LOCKED) instead of queueing on them; on SQLite the
// transaction holds the write lock from BEGIN.
func (db *DB) LeaseAcquire(ctx context.Context, p cluster.LeaseParams) (int, error) {
	if p.Slots <= 0 || p.Name == "" || p.NodeID == "" {
		return 0, problem.Invalid("lease", "a lease needs a name, a node and at least one slot")
	}
	now := p.Now.UnixMilli()
	lock := ""
	if db.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var slot int
	err := db.InTx(ctx, func(tx *Tx) error {
		for i := range p.Slots {
			if _, err := tx.Exec(ctx, `INSERT INTO cluster_leases (name, slot) VALUES ($1, $2) ON CONFLICT (name, slot) DO NOTHING`, p.Name, i); err != nil {
				return err
			}
		}
		if p.MaxPerNode > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM cluster_leases WHERE name = $1 AND slot < $2 AND node_id = $3 AND expires_at > $4`,
				p.Name, p.Slots, p.NodeID, now).Scan(&n); err != nil {
				return err
			}
			if n >= p.MaxPerNode {
				return problem.ErrConflict
			}
		}
		err := tx.QueryRow(ctx, `UPDATE cluster_leases SET node_id = $1, expires_at = $2 WHERE name = $3 AND slot = (
			SELECT slot FROM cluster_leases WHERE name = $3 AND slot < $4 AND (node_id = '' OR expires_at <= $5)
			ORDER BY slot LIMIT 1`+lock+`) RETURNING slot`, p.NodeID, p.Until.UnixMilli(), p.Name, p.Slots, now).Scan(&slot)
		if err = mapErr(err); err == problem.ErrNotFound {
			return problem.ErrConflict
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("acquire lease %s: %w", p.Name, err)
	}
	return slot, nil
}

func scanLease(r Row) (cluster.Lease, error) {
	var l cluster.Lease
	var exp int64
	err := r.Scan(&l.Name, &l.Slot, &l.NodeID, &exp)
	l.Expires = time.UnixMilli(exp)
	return l, err
}

// LeaseRenew extends the leases nodeID still holds.
func (db *DB) LeaseRenew(ctx context.Context, nodeID string, now, until time.Time) ([]cluster.Lease, error) {
	rows, err := db.Query(ctx, `UPDATE cluster_leases SET expires_at = $1 WHERE node_id = $2 AND expires_at > $3
		RETURNING name, slot, node_id, expires_at`, until.UnixMilli(), nodeID, now.UnixMilli())
	return scanRows(rows, err, scanLease)
}

// LeaseRelease frees nodeID's slot.
func (db *DB) LeaseRelease(ctx context.Context, name string, slot int, nodeID string) error {
	_, err := db.Exec(ctx, `UPDATE cluster_leases SET node_id = '', expires_at = 0 WHERE name = $1 AND slot = $2 AND node_id = $3`, name, slot, nodeID)
	return err
}

// Leases lists the held leases.
func (db *DB) Leases(ctx context.Context, now time.Time) ([]cluster.Lease, error) {
	rows, err := db.Query(ctx, `SELECT name, slot, node_id, expires_at FROM cluster_leases WHERE node_id <> '' AND expires_at > $1
		ORDER BY name, slot`, now.UnixMilli())
	return scanRows(rows, err, scanLease)
}
