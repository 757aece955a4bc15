package store

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/telgw/telgw/internal/sms"
)

// MessagesClaim takes a batch of queued messages for a carrier's sender and leases them to it
// (sms.Store).
//
// A message is due when its carrier matches, its retry time has come, it is not leased (never,
// or the lease expired or was ended) and no older message to the same destination is still
// queued: that keeps each destination's messages in accept order, across batches and nodes (a
// leased message is still queued, so it holds its destination's later messages back).
//
// The claim is one statement, committed at once: the rows are picked and leased (lease_owner,
// lease_until) by an UPDATE, so no transaction stays open while the sender submits. On
// PostgreSQL the pick locks its rows FOR UPDATE SKIP LOCKED, so concurrent claims of several
// nodes skip each other's rows, and a row another claim leased meanwhile fails the lease
// condition when PostgreSQL re-checks it. On SQLite the statement is a write transaction of
// its own, in the writers' turn.
func (db *DB) MessagesClaim(ctx context.Context, p sms.ClaimParams) ([]sms.Queued, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	q := claimSQL(db.dialect)
	type row struct {
		seq int64
		q   sms.Queued
	}
	scan := func(r Row) (row, error) {
		var out row
		m, err := scanSMSMessage(scanBefore{r, []any{&out.seq}, []any{&out.q.OptedOut}})
		out.q.Message = m
		return out, err
	}
	args := []any{p.Carrier, ms(p.Now), p.Limit, p.Owner, ms(p.Until)}
	var got []row
	var err error
	if db.dialect == Postgres {
		// Planned afresh on every claim (customPlan): a generic plan cached while the queue
		// was nearly empty scanned and sorted the whole queue on every claim once it had
		// grown; such claims took 110-170 ms at 20,000 queued.
		// On the pgx pool, as MessagesSentAlone: no database/sql layer converting each of
		// the claimed rows' columns.
		rows, qerr := db.pool.Query(ctx, q, customPlan(args...)...)
		if qerr != nil {
			return nil, qerr
		}
		got, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) { return scan(r) })
	} else {
		// In the writers' turn (InTx), rather than meeting them as a busy database.
		err = db.InTx(ctx, func(tx *Tx) error {
			rows, err := tx.QueryP(ctx, q, args...)
			got, err = scanRows(rows, err, scan)
			return err
		})
	}
	if err != nil || len(got) == 0 {
		return nil, err
	}
	// RETURNING gives the rows in no particular order.
	slices.SortFunc(got, func(a, b row) int { return int(a.seq - b.seq) })
	qs := make([]sms.Queued, len(got))
	for i, g := range got {
		qs[i] = g.q
	}
	return qs, nil
}

// claimSQL is MessagesClaim's statement in dialect d.
func claimSQL(d Dialect) string {
	cseq, eseq := "c.seq", "e.seq"
	if d == SQLite {
		cseq, eseq = "c.rowid", "e.rowid"
	}
	// A message is its destination's next when it is the oldest queued one to it: a probe of
	// the queue's (to_number, seq) index, the only way PostgreSQL can answer ORDER BY seq
	// LIMIT 1 for one destination. NOT EXISTS (an older one) was planned, with statistics
	// that expect few queued rows, as a scan of the whole index per candidate.
	pick := `SELECT c.id FROM sms_messages c WHERE c.status = 'queued' AND c.carrier = $1 AND c.next_attempt_at <= $2
		AND c.lease_until <= $2
		AND ` + cseq + ` = (SELECT ` + eseq + ` FROM sms_messages e WHERE e.to_number = c.to_number AND e.status = 'queued' ORDER BY ` + eseq + ` LIMIT 1)
		ORDER BY ` + cseq + ` LIMIT $3`
	if d == Postgres {
		// ARRAY(…) runs the pick once: an IN (subquery) may be planned as a join that runs it
		// again, taking more rows than the limit.
		// The lease is committed without waiting for its WAL flush (synchronous_commit off for
		// this statement's transaction only): it guards against a second sender, it is no data
		// to keep. PostgreSQL crashing before the flush loses at most leases, whose messages
		// are then claimed again, as after an outcome commit that failed. The outcome commit
		// that follows flushes the WAL up to it anyway.
		return `WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true))
			UPDATE sms_messages m SET lease_owner = $4, lease_until = $5 FROM lazy WHERE m.id = ANY(ARRAY(` + pick + `
			FOR UPDATE SKIP LOCKED)) RETURNING m.seq, ` + smsMessageColsM + `,
			EXISTS (SELECT 1 FROM sms_optouts o WHERE o.from_number = m.from_number AND o.to_number = m.to_number)`
	}
	// SQLite's RETURNING knows the table by its name only.
	return `UPDATE sms_messages SET lease_owner = $4, lease_until = $5 WHERE id IN (` + pick + `) RETURNING rowid, ` + smsMessageCols + `,
		EXISTS (SELECT 1 FROM sms_optouts o WHERE o.from_number = sms_messages.from_number AND o.to_number = sms_messages.to_number)`
}

// MessagesUnlease ends owner's leases of ids (sms.Store).
func (db *DB) MessagesUnlease(ctx context.Context, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	const set = `SET lease_owner = '', lease_until = 0`
	return db.InTx(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			_, err := tx.Exec(ctx, `UPDATE sms_messages m `+set+` FROM unnest($2::text[]) AS u(id)
				WHERE m.id = u.id AND `+queuedPG+` AND m.lease_owner = $1`, customPlan(owner, ids)...)
			return err
		}
		args, in := smsTx{tx}.inList("id", []any{owner}, ids)
		_, err := tx.ExecP(ctx, `UPDATE sms_messages `+set+` WHERE status = 'queued' AND lease_owner = $1 AND `+in, args...)
		return err
	})
}

// MessagesLeasesRecover ends the leases a node's earlier processes left (sms.Store). On
// PostgreSQL those whose owner starts with prefix; SQLite serves one node, so there every
// lease but keep's.
func (db *DB) MessagesLeasesRecover(ctx context.Context, prefix, keep string) (int, error) {
	q := `UPDATE sms_messages SET lease_owner = '', lease_until = 0 WHERE status = 'queued' AND lease_until > 0 AND lease_owner <> $1`
	args := []any{keep}
	if db.dialect == Postgres {
		q += ` AND starts_with(lease_owner, $2)`
		args = append(args, prefix)
	}
	var n int64
	err := db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err == nil {
			n, _ = res.RowsAffected()
		}
		return err
	})
	return int(n), err
}

// MessagesLeased locks the queued messages among ids still leased to owner and returns them
// (sms.Tx): on PostgreSQL a join of the id array (see MessagesMarkSent), in id order so that
// concurrent transactions lock in one order.
func (t smsTx) MessagesLeased(ctx context.Context, owner string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if t.tx.Dialect() == Postgres {
		rows, err := t.tx.Query(ctx, `SELECT m.id FROM sms_messages m JOIN unnest($2::text[]) AS u(id) ON m.id = u.id
			WHERE `+queuedPG+` AND m.lease_owner = $1 ORDER BY m.id FOR UPDATE OF m`, customPlan(owner, ids)...)
		return scanRows(rows, err, scanString)
	}
	args, in := t.inList("id", []any{owner}, ids)
	rows, err := t.tx.QueryP(ctx, `SELECT id FROM sms_messages WHERE status = 'queued' AND lease_owner = $1 AND `+in, args...)
	return scanRows(rows, err, scanString)
}

// MessagesSent records messages the carrier accepted, guarded by their lease (sms.Tx). On
// PostgreSQL one statement moves the messages (a join of the id array, see MessagesMarkSent)
// and inserts the parts of those it moved; on SQLite an UPDATE per segment count and attempts,
// then the parts.
func (t smsTx) MessagesSent(ctx context.Context, p sms.SentParams) ([]string, error) {
	if len(p.Sent) == 0 {
		return nil, nil
	}
	if t.tx.Dialect() == Postgres {
		q, args := messagesSentStmt(p)
		rows, err := t.tx.Query(ctx, q, args...)
		return scanRows(rows, err, scanString)
	}
	type group struct{ segments, attempts int }
	groups := map[group][]string{}
	var order []group
	for _, m := range p.Sent {
		g := group{m.Segments, m.Attempts}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], m.ID)
	}
	var moved []string
	for _, g := range order {
		args, in := t.inList("id", []any{g.segments, g.attempts, ms(p.At), p.Owner}, groups[g])
		rows, err := t.tx.QueryP(ctx, `UPDATE sms_messages SET status = 'sent', segments = $1, attempts = $2, sent_at = $3, updated_at = $3
			WHERE status = 'queued' AND lease_owner = $4 AND `+in+` RETURNING id`, args...)
		ids, err := scanRows(rows, err, scanString)
		if err != nil {
			return nil, err
		}
		moved = append(moved, ids...)
	}
	ok := make(map[string]bool, len(moved))
	for _, id := range moved {
		ok[id] = true
	}
	var parts []sms.Part
	for _, pt := range p.Parts {
		if ok[pt.MessageID] {
			parts = append(parts, pt)
		}
	}
	return moved, t.PartsAdd(ctx, parts)
}

// messagesSentPG is MessagesSent's statement on PostgreSQL (messagesSentArgs): it moves the
// messages (messagesMovePG) and inserts the parts of those it moved.
const messagesSentPG = `WITH sent AS (` + messagesMovePG + `),
	parts AS (INSERT INTO sms_parts (carrier, carrier_key, message_id, seq, state, created_at)
		SELECT p.carrier, p.carrier_key, p.message_id, p.seq, '', $10::bigint
		FROM unnest($6::text[], $7::text[], $8::text[], $9::int[]) AS p(carrier, carrier_key, message_id, seq)
		JOIN sent ON sent.id = p.message_id` + partsUpsert + `)
	SELECT id FROM sent`

// messagesMovePG moves messages $3 (with segments $4 and attempts $5) still queued and leased
// to $1 to sent at $2 (a join of the id array, see MessagesMarkSent) and returns their ids. On
// its own it records messages that keep no parts (none asked for a delivery report): without
// messagesSentPG's INSERT … ON CONFLICT it is cheaper to plan and to run.
const messagesMovePG = `UPDATE sms_messages m SET status = 'sent', segments = u.segments,
		attempts = u.attempts, sent_at = $2, updated_at = $2
		FROM unnest($3::text[], $4::int[], $5::int[]) AS u(id, segments, attempts)
		WHERE m.id = u.id AND ` + queuedPG + ` AND m.lease_owner = $1 RETURNING m.id`

// messagesSentStmt is the PostgreSQL statement that records p and its arguments, planned for
// them (customPlan): messagesSentPG, or messagesMovePG when p has no parts.
func messagesSentStmt(p sms.SentParams) (string, []any) {
	args := messagesSentArgs(p)
	if len(p.Parts) == 0 {
		return messagesMovePG, customPlan(args[:5]...)
	}
	return messagesSentPG, customPlan(args...)
}

// messagesSentArgs are messagesSentPG's arguments for p.
func messagesSentArgs(p sms.SentParams) []any {
	n := len(p.Sent)
	ids, segs, atts := make([]string, n), make([]int32, n), make([]int32, n)
	for i, m := range p.Sent {
		ids[i], segs[i], atts[i] = m.ID, int32(m.Segments), int32(m.Attempts)
	}
	parts := uniqParts(p.Parts)
	k := len(parts)
	pc, pk, pm, ps := make([]string, k), make([]string, k), make([]string, k), make([]int32, k)
	for i, pt := range parts {
		pc[i], pk[i], pm[i], ps[i] = pt.Carrier, pt.Key, pt.MessageID, int32(pt.Seq)
	}
	return []any{p.Owner, ms(p.At), ids, segs, atts, pc, pk, pm, ps, nowMS()}
}

// MessagesSentAlone is MessagesSent in a step of its own (sms.Store): on PostgreSQL its one
// statement on the pgx pool, committed by itself; on SQLite a write transaction.
func (db *DB) MessagesSentAlone(ctx context.Context, p sms.SentParams) ([]string, error) {
	if len(p.Sent) == 0 {
		return nil, nil
	}
	if db.dialect == Postgres {
		q, args := messagesSentStmt(p)
		rows, err := db.pool.Query(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var moved []string
	err := db.InTx(ctx, func(tx *Tx) error {
		var err error
		moved, err = smsTx{tx}.MessagesSent(ctx, p)
		return err
	})
	return moved, err
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

// scanBefore scans a row with columns before and after the ones its caller knows.
type scanBefore struct {
	row           Row
	before, after []any
}

func (r scanBefore) Scan(dest ...any) error {
	all := make([]any, 0, len(r.before)+len(dest)+len(r.after))
	all = append(append(append(all, r.before...), dest...), r.after...)
	return r.row.Scan(all...)
}

// customPlan prefixes a PostgreSQL statement's arguments so that pgx runs it unnamed
// (QueryExecModeCacheDescribe: one round trip, only its description cached), which PostgreSQL
// plans afresh for its arguments every time. It is for the statements that find rows of the
// growing SMS tables by a join of an id array: pgx's default prepared statement gets a
// generic plan after five runs, kept until the table is next analyzed, and one made while the
// table was nearly empty (a new database, or autovacuum off) hashes the whole queue index on
// every run; at 20,000 queued that was most of PostgreSQL's time per sent message. Their
// planning costs well under a millisecond.
func customPlan(args ...any) []any {
	return append([]any{pgx.QueryExecModeCacheDescribe}, args...)
}
