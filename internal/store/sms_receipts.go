package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/telgw/telgw/internal/sms"
)

// MessagesUpdate writes several messages as MessageUpdate does: on PostgreSQL in one
// statement (UPDATE … FROM unnest of one array per column, as the receipts of a shared
// commit end hundreds of messages at once), on SQLite, whose statements cost no round trip,
// one statement each. A message that is not stored is an error.
func (t smsTx) MessagesUpdate(ctx context.Context, msgs []sms.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if t.tx.Dialect() != Postgres || len(msgs) == 1 {
		for _, m := range msgs {
			if err := t.MessageUpdate(ctx, m); err != nil {
				return err
			}
		}
		return nil
	}
	args, err := messagesUpdateArgs(msgs)
	if err != nil {
		return err
	}
	res, err := t.tx.Exec(ctx, messagesUpdateSQL, args...)
	if err != nil {
		return err
	}
	n := len(msgs)
	if got, _ := res.RowsAffected(); got != int64(n) {
		return fmt.Errorf("MessagesUpdate: %d of %d messages stored", got, n)
	}
	return nil
}

// messagesUpdateSQL is MessagesUpdate's statement on PostgreSQL: $1…$11 are one array per
// column (messagesUpdateArgs).
const messagesUpdateSQL = `UPDATE sms_messages AS m SET carrier = v.carrier, status = v.status, status_details = v.details,
		segments = v.segs, segments_succeeded = v.ok, segments_failed = v.failed, attempts = v.attempts,
		updated_at = v.updated, sent_at = v.sent, done_at = v.done
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
			$9::bigint[], $10::bigint[], $11::bigint[]) AS v(id, carrier, status, details, segs, ok, failed, attempts, updated, sent, done)
		WHERE m.id = v.id`

// messagesUpdateArgs are messagesUpdateSQL's arrays; a message given twice is an error.
func messagesUpdateArgs(msgs []sms.Message) ([]any, error) {
	n := len(msgs)
	var (
		ids, carriers, statuses, details = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		segs, ok, failed, attempts       = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		updated, sent, done              = make([]int64, n), make([]int64, n), make([]int64, n)
		seen                             = make(map[string]bool, n)
	)
	for i, m := range msgs {
		if seen[m.ID] {
			return nil, fmt.Errorf("MessagesUpdate: message %s given twice", m.ID)
		}
		seen[m.ID] = true
		ids[i], carriers[i], statuses[i], details[i] = m.ID, m.Carrier, string(m.Status), m.StatusDetails
		segs[i], ok[i], failed[i], attempts[i] = int64(m.Segments), int64(m.SegmentsSucceeded), int64(m.SegmentsFailed), int64(m.Attempts)
		updated[i], sent[i], done[i] = ms(m.UpdatedAt), msOrZero(m.SentAt), msOrZero(m.DoneAt)
	}
	return []any{ids, carriers, statuses, details, segs, ok, failed, attempts, updated, sent, done}, nil
}

// partsForReceiptsSQL reads the parts stored under ($1[i], $2[i]) with their messages,
// locking the messages in id order (as MessagesGetForUpdate does, so that concurrent
// batches lock in the same order). The parts' columns are renamed so that smsMessageCols
// name the message's.
const partsForReceiptsSQL = `SELECT p.pcarrier, p.pkey, p.pseq, p.pstate, p.pcreated, ` + smsMessageCols + `
	FROM sms_messages JOIN (SELECT carrier AS pcarrier, carrier_key AS pkey, message_id AS pmessage, seq AS pseq, state AS pstate,
			created_at AS pcreated
		FROM sms_parts WHERE (carrier, carrier_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))) AS p ON p.pmessage = sms_messages.id
	ORDER BY sms_messages.id FOR UPDATE OF sms_messages`

// PartsForReceipts looks a batch of receipts' parts up and locks their messages
// (sms.Tx): on PostgreSQL in one statement (partsForReceiptsSQL), on SQLite, whose
// statements cost no round trip and whose writers hold the whole database, with
// PartsByKeys per carrier and MessagesGetForUpdate.
func (t smsTx) PartsForReceipts(ctx context.Context, keys []sms.PartKey) ([]sms.Part, []sms.Message, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	if t.tx.Dialect() != Postgres {
		byCarrier := map[string][]string{}
		var carriers []string
		for _, k := range keys {
			if _, ok := byCarrier[k.Carrier]; !ok {
				carriers = append(carriers, k.Carrier)
			}
			byCarrier[k.Carrier] = append(byCarrier[k.Carrier], k.Key)
		}
		var parts []sms.Part
		var ids []string
		for _, c := range carriers {
			ps, err := t.PartsByKeys(ctx, c, byCarrier[c])
			if err != nil {
				return nil, nil, err
			}
			for _, p := range ps {
				parts = append(parts, p)
				ids = append(ids, p.MessageID)
			}
		}
		slices.Sort(ids)
		msgs, err := t.MessagesGetForUpdate(ctx, slices.Compact(ids))
		return parts, msgs, err
	}
	carriers, ks := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		carriers[i], ks[i] = k.Carrier, k.Key
	}
	// Not planned per run (customPlan): receipts come once their messages were sent, so the
	// generic plan is made on tables that already hold them, and planning each batch's
	// statements cost a sixth of the receipts' rate on PostgreSQL.
	rows, err := t.tx.Query(ctx, partsForReceiptsSQL, carriers, ks)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type row struct {
		p       sms.Part
		created int64
	}
	var found []row
	var msgs []sms.Message
	for rows.Next() {
		var r row
		var m sms.Message
		var pseq int64
		dest := []any{&r.p.Carrier, &r.p.Key, &pseq, &r.p.State, &r.created}
		m, err := scanSMSMessage(rowWith{rows, dest})
		if err != nil {
			return nil, nil, err
		}
		r.p.Seq, r.p.MessageID = int(pseq), m.ID
		found = append(found, r)
		if len(msgs) == 0 || msgs[len(msgs)-1].ID != m.ID {
			msgs = append(msgs, m)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// Newest first, as PartsByKeys.
	slices.SortStableFunc(found, func(a, b row) int { return cmp.Compare(b.created, a.created) })
	parts := make([]sms.Part, len(found))
	for i, r := range found {
		parts[i] = r.p
	}
	return parts, msgs, nil
}

// rowWith scans the columns before a message's (dest) and then the message's.
type rowWith struct {
	row  Row
	dest []any
}

// Scan implements Row.
func (r rowWith) Scan(dest ...any) error {
	return r.row.Scan(append(r.dest, dest...)...)
}

// ReceiptsRecord writes parts' final states and the messages they changed (sms.Tx): on
// PostgreSQL in one statement (the parts' UPDATE … FROM unnest as a common table expression
// of messagesUpdateSQL), on SQLite with PartsSetState and MessagesUpdate. A message that is
// not stored is an error.
func (t smsTx) ReceiptsRecord(ctx context.Context, parts []sms.Part, msgs []sms.Message) error {
	if t.tx.Dialect() != Postgres || len(parts) == 0 {
		if err := t.PartsSetState(ctx, parts); err != nil {
			return err
		}
		return t.MessagesUpdate(ctx, msgs)
	}
	args, err := messagesUpdateArgs(msgs)
	if err != nil {
		return err
	}
	carriers, keys, states := make([]string, len(parts)), make([]string, len(parts)), make([]string, len(parts))
	for i, p := range parts {
		carriers[i], keys[i], states[i] = p.Carrier, p.Key, p.State
	}
	res, err := t.tx.Exec(ctx, `WITH parts AS (UPDATE sms_parts AS p SET state = v.state
		FROM unnest($12::text[], $13::text[], $14::text[]) AS v(carrier, key, state)
		WHERE p.carrier = v.carrier AND p.carrier_key = v.key RETURNING 1)
		`+messagesUpdateSQL, append(args, carriers, keys, states)...)
	if err != nil {
		return err
	}
	if got, _ := res.RowsAffected(); got != int64(len(msgs)) {
		return fmt.Errorf("ReceiptsRecord: %d of %d messages stored", got, len(msgs))
	}
	return nil
}
