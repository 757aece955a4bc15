package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/telgw/telgw/internal/sms"
)

// MessagesClaim takes a batch of queued messages for a carrier's sender (sms.Store).
//
// A message is due when its carrier matches, its retry time has come and no older message to
// the same destination is still queued: that keeps each destination's messages in accept
// order, across batches and nodes (an older message in flight elsewhere is still queued).
//
// On PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED in a transaction the claim keeps
// open while the sender submits, and Finish records the outcomes in that same transaction:
// other nodes skip the rows, one commit ends the batch, and a node killed mid-batch leaves
// nothing claimed (its connection closes, the transaction rolls back, the rows are queued
// again). SQLite serves one node, whose sender excludes what it has in flight itself: the
// read takes no lock and Finish writes in a transaction of its own.
func (db *DB) MessagesClaim(ctx context.Context, p sms.ClaimParams) ([]sms.Queued, sms.Claim, error) {
	if p.Limit <= 0 {
		return nil, nil, nil
	}
	seq, eseq := "m.seq", "e.seq"
	if db.dialect == SQLite {
		seq, eseq = "m.rowid", "e.rowid"
	}
	var q strings.Builder
	q.WriteString(`SELECT ` + smsMessageColsM + `,
		EXISTS (SELECT 1 FROM sms_optouts o WHERE o.from_number = m.from_number AND o.to_number = m.to_number)
		FROM sms_messages m WHERE m.status = 'queued' AND m.carrier = $1 AND m.next_attempt_at <= $2
		AND NOT EXISTS (SELECT 1 FROM sms_messages e WHERE e.to_number = m.to_number AND e.status = 'queued' AND ` + eseq + ` < ` + seq + `)`)
	args := []any{p.Carrier, ms(p.Now)}
	if db.dialect == SQLite {
		if len(p.Exclude) > 0 {
			var ph string
			args, ph = db.inArgs(args, p.Exclude, p.Exclude[0])
			q.WriteString(` AND m.id NOT IN (` + ph + `)`)
		}
		args = append(args, p.Limit)
		q.WriteString(` ORDER BY ` + seq + ` LIMIT $` + strconv.Itoa(len(args)))
		rows, err := db.QueryP(ctx, q.String(), args...)
		qs, err := scanRows(rows, err, scanQueued)
		if err != nil || len(qs) == 0 {
			return nil, nil, err
		}
		return qs, sqliteClaim{db}, nil
	}
	// One query text whatever the exclusions (pgx prepares it once per connection); the
	// sender's exclusions are locked by its own claims anyway.
	exclude := p.Exclude
	if exclude == nil {
		exclude = []string{}
	}
	args = append(args, p.Limit, exclude)
	q.WriteString(` AND NOT (m.id = ANY($4::text[])) ORDER BY ` + seq + ` LIMIT $3 FOR UPDATE OF m SKIP LOCKED`)
	// The claim outlives a cancelled ctx (shutdown): what was submitted is still recorded.
	stx, err := db.sql.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{db: db, tx: stx}
	rows, err := tx.Query(ctx, q.String(), args...)
	qs, err := scanRows(rows, err, scanQueued)
	if err != nil || len(qs) == 0 {
		_ = stx.Rollback()
		return nil, nil, err
	}
	return qs, &pgClaim{tx: tx}, nil
}

// QueuedCarriers lists the carriers of queued messages (sms.Store).
func (db *DB) QueuedCarriers(ctx context.Context) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT DISTINCT carrier FROM sms_messages WHERE status = 'queued' ORDER BY carrier`)
	return scanRows(rows, err, scanString)
}

// smsMessageColsM is smsMessageCols qualified with the alias m.
const smsMessageColsM = `m.id, m.from_number, m.to_number, m.body, m.tag, m.delivery_report, m.validity_ms, m.carrier, m.status,
	m.status_details, m.segments, m.segments_succeeded, m.segments_failed, COALESCE(m.repeatability_id, ''), m.repeatability_first_sent,
	m.attempts, m.created_at, m.updated_at, m.sent_at, m.done_at, m.next_attempt_at, m.keyword_reply`

func scanQueued(row Row) (sms.Queued, error) {
	var q sms.Queued
	m, err := scanSMSMessage(scanAlso{row, []any{&q.OptedOut}})
	q.Message = m
	return q, err
}

// scanAlso scans a row with columns after the ones its caller knows.
type scanAlso struct {
	row   Row
	extra []any
}

func (r scanAlso) Scan(dest ...any) error { return r.row.Scan(append(dest, r.extra...)...) }

// pgClaim holds the claimed rows' locks in its transaction until Finish or Release.
type pgClaim struct {
	tx   *Tx
	done bool
}

func (c *pgClaim) Finish(ctx context.Context, fn func(tx sms.Tx) error) error {
	if c.done {
		return fmt.Errorf("claim already ended")
	}
	c.done = true
	if err := fn(smsTx{c.tx}); err != nil {
		_ = c.tx.tx.Rollback()
		return err
	}
	if err := c.tx.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (c *pgClaim) Release() {
	if !c.done {
		c.done = true
		_ = c.tx.tx.Rollback()
	}
}

// sqliteClaim is the single node's claim: nothing is locked; Finish writes in its own
// transaction.
type sqliteClaim struct{ db *DB }

func (c sqliteClaim) Finish(ctx context.Context, fn func(tx sms.Tx) error) error {
	return c.db.InTx(ctx, func(tx *Tx) error { return fn(smsTx{tx}) })
}

func (sqliteClaim) Release() {}
