package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

var _ sms.Store = (*DB)(nil)

const smsMessageCols = `id, from_number, to_number, body, tag, delivery_report, validity_ms, carrier, status, status_details,
	segments, segments_succeeded, segments_failed, COALESCE(repeatability_id, ''), repeatability_first_sent, attempts,
	created_at, updated_at, sent_at, done_at, next_attempt_at, keyword_reply`

func scanSMSMessage(row Row) (sms.Message, error) {
	var m sms.Message
	var validity, created, updated, sent, done, next int64
	var status string
	err := row.Scan(&m.ID, &m.From, &m.To, &m.Text, &m.Tag, &m.DeliveryReport, &validity, &m.Carrier, &status, &m.StatusDetails,
		&m.Segments, &m.SegmentsSucceeded, &m.SegmentsFailed, &m.RepeatabilityRequestID, &m.RepeatabilityFirstSent, &m.Attempts,
		&created, &updated, &sent, &done, &next, &m.KeywordReply)
	if err != nil {
		return sms.Message{}, mapErr(err)
	}
	if next != 0 {
		m.NextAttempt = fromMS(next)
	}
	m.Status = sms.Status(status)
	m.Validity = time.Duration(validity) * time.Millisecond
	m.CreatedAt, m.UpdatedAt = fromMS(created), fromMS(updated)
	if sent != 0 {
		m.SentAt = fromMS(sent)
	}
	if done != 0 {
		m.DoneAt = fromMS(done)
	}
	return m, nil
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// placeholders returns "$from, $from+1, …" for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// SMSTx runs fn in one transaction (sms.Store).
func (db *DB) SMSTx(ctx context.Context, fn func(tx sms.Tx) error) error {
	return db.InTx(ctx, func(tx *Tx) error { return fn(smsTx{tx}) })
}

// MessageGet reads one message of the log.
func (db *DB) MessageGet(ctx context.Context, id string) (sms.Message, error) {
	return scanSMSMessage(db.QueryRow(ctx, `SELECT `+smsMessageCols+` FROM sms_messages WHERE id = $1`, id))
}

// MessagesGet reads the messages with the given ids.
func (db *DB) MessagesGet(ctx context.Context, ids []string) ([]sms.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.Query(ctx, `SELECT `+smsMessageCols+` FROM sms_messages WHERE id IN (`+placeholders(1, len(ids))+`)`, args...)
	return scanRows(rows, err, scanSMSMessage)
}

// MessageList lists the message log newest first.
func (db *DB) MessageList(ctx context.Context, f sms.MessageFilter) ([]sms.Message, error) {
	q := `SELECT ` + smsMessageCols + ` FROM sms_messages WHERE created_at < $1`
	before := int64(1<<62 - 1)
	if !f.Before.IsZero() {
		before = ms(f.Before)
	}
	args := []any{before}
	for _, c := range []struct{ col, v string }{{"from_number", f.From}, {"to_number", f.To}, {"status", string(f.Status)}} {
		if c.v != "" {
			args = append(args, c.v)
			q += ` AND ` + c.col + ` = $` + strconv.Itoa(len(args))
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := db.Query(ctx, q, args...)
	return scanRows(rows, err, scanSMSMessage)
}

// OptOutCheck reports which of tos opted out of from.
func (db *DB) OptOutCheck(ctx context.Context, from string, tos []string) (map[string]bool, error) {
	out := make(map[string]bool, len(tos))
	if len(tos) == 0 {
		return out, nil
	}
	for _, t := range tos {
		out[t] = false
	}
	args := []any{from}
	for _, t := range tos {
		args = append(args, t)
	}
	rows, err := db.Query(ctx, `SELECT to_number FROM sms_optouts WHERE from_number = $1 AND to_number IN (`+placeholders(2, len(tos))+`)`, args...)
	opted, err := scanRows(rows, err, scanString)
	if err != nil {
		return nil, err
	}
	for _, t := range opted {
		out[t] = true
	}
	return out, nil
}

// smsTx implements sms.Tx on a store transaction.
type smsTx struct{ tx *Tx }

// InsertJob enqueues a job in the transaction (sms.Tx's outbox).
func (t smsTx) InsertJob(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	return t.tx.InsertJob(ctx, args, opts)
}

// InsertJobs enqueues several jobs in the transaction in one statement.
func (t smsTx) InsertJobs(ctx context.Context, jobs []river.InsertManyParams) error {
	return t.tx.InsertJobs(ctx, jobs)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// smsInsertCols are the columns MessagesInsert writes.
const smsInsertCols = `id, from_number, to_number, body, tag, delivery_report, validity_ms, carrier, status, status_details,
	segments, segments_succeeded, segments_failed, repeatability_id, repeatability_first_sent, attempts, created_at, updated_at,
	sent_at, done_at, next_attempt_at, keyword_reply`

// MessagesInsert inserts messages: on PostgreSQL in one statement of one array per column
// (one query text, prepared once per connection, whatever the count), on SQLite with
// multi-row INSERTs of a few fixed sizes (cached prepared statements; at most 500 rows,
// 11,000 parameters, each).
func (t smsTx) MessagesInsert(ctx context.Context, msgs []sms.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if t.tx.Dialect() == Postgres {
		_, err := t.tx.Exec(ctx, smsInsertPG, pgMessageArgs(msgs)...)
		return mapErr(err)
	}
	_, err := t.insertSQLite(ctx, msgs, "")
	return err
}

// smsInsertPG inserts messages given as one array per column (pgMessageArgs).
const smsInsertPG = `INSERT INTO sms_messages (` + smsInsertCols + `) SELECT * FROM unnest($1::text[], $2::text[],
			$3::text[], $4::text[], $5::text[], $6::boolean[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::int[], $12::int[],
			$13::int[], $14::text[], $15::text[], $16::int[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[],
			$22::boolean[])`

// onRepeat leaves out a message whose repeatability id is taken (MessagesAccept). On
// PostgreSQL the unique index holds the non-NULL ids alone (migration 00150), and ON CONFLICT
// names its predicate to use it.
const (
	onRepeat   = ` ON CONFLICT (repeatability_id) DO NOTHING`
	onRepeatPG = ` ON CONFLICT (repeatability_id) WHERE repeatability_id IS NOT NULL DO NOTHING`
)

// pgMessageArgs are smsInsertPG's arguments for msgs: one array per column.
func pgMessageArgs(msgs []sms.Message) []any {
	n := len(msgs)
	var (
		id, from, to, body, tag, carrier, status, details, firstSent = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		rid                                          = make([]*string, n)
		dlr, kw                                      = make([]bool, n), make([]bool, n)
		validity, created, updated, sent, done, next = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		segments, succeeded, failed, attempts        = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	)
	for i, m := range msgs {
		id[i], from[i], to[i], body[i], tag[i], carrier[i], status[i], details[i], firstSent[i] =
			m.ID, m.From, m.To, m.Text, m.Tag, m.Carrier, string(m.Status), m.StatusDetails, m.RepeatabilityFirstSent
		if m.RepeatabilityRequestID != "" {
			rid[i] = &m.RepeatabilityRequestID
		}
		dlr[i], kw[i] = m.DeliveryReport, m.KeywordReply
		validity[i], created[i], updated[i] = m.Validity.Milliseconds(), ms(m.CreatedAt), ms(m.UpdatedAt)
		sent[i], done[i], next[i] = msOrZero(m.SentAt), msOrZero(m.DoneAt), msOrZero(m.NextAttempt)
		segments[i], succeeded[i], failed[i], attempts[i] = int32(m.Segments), int32(m.SegmentsSucceeded), int32(m.SegmentsFailed), int32(m.Attempts)
	}
	return []any{id, from, to, body, tag, dlr, validity, carrier, status, details, segments, succeeded, failed, rid,
		firstSent, attempts, created, updated, sent, done, next, kw}
}

// insertSQLite inserts msgs on SQLite with multi-row INSERTs of a few fixed sizes, each
// followed by suffix, and returns how many rows they inserted.
func (t smsTx) insertSQLite(ctx context.Context, msgs []sms.Message, suffix string) (int, error) {
	const cols = 22
	inserted := 0
	for len(msgs) > 0 {
		chunk := msgs[:t.tx.db.nextChunk(len(msgs), 500)]
		msgs = msgs[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO sms_messages (` + smsInsertCols + `) VALUES `)
		args := make([]any, 0, cols*len(chunk))
		for i, m := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(i*cols+1, cols) + ")")
			args = append(args, m.ID, m.From, m.To, m.Text, m.Tag, m.DeliveryReport, m.Validity.Milliseconds(), m.Carrier,
				string(m.Status), m.StatusDetails, m.Segments, m.SegmentsSucceeded, m.SegmentsFailed, nullIfEmpty(m.RepeatabilityRequestID),
				m.RepeatabilityFirstSent, m.Attempts, ms(m.CreatedAt), ms(m.UpdatedAt), msOrZero(m.SentAt), msOrZero(m.DoneAt),
				msOrZero(m.NextAttempt), m.KeywordReply)
		}
		q.WriteString(suffix)
		res, err := t.tx.ExecP(ctx, q.String(), args...)
		if err != nil {
			return inserted, mapErr(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return inserted, err
		}
		inserted += int(n)
	}
	return inserted, nil
}

// MessagesAccept stores accepted messages (sms.Store): every message whose repeatability id
// is free, in one durable step. On PostgreSQL that is one statement on the pgx pool in a
// transaction of its own (no BEGIN and COMMIT round trips, no database/sql layer); on SQLite
// a write transaction. The repeatability ids' holders are read only when some message was
// left out.
func (db *DB) MessagesAccept(ctx context.Context, msgs []sms.Message) (map[string]string, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	if db.dialect == Postgres {
		rids := repeatabilityIDs(msgs)
		q := smsInsertPG
		if len(rids) > 0 {
			// Only then: ON CONFLICT inserts each row speculatively, which costs PostgreSQL a
			// confirmation WAL record per row even when no id is given.
			q += onRepeatPG
		}
		tag, err := db.pool.Exec(ctx, q, pgMessageArgs(msgs)...)
		if err != nil {
			return nil, mapErr(err)
		}
		if int(tag.RowsAffected()) == len(msgs) {
			return nil, nil
		}
		rows, err := db.pool.Query(ctx, `SELECT repeatability_id, id FROM sms_messages WHERE repeatability_id = ANY($1::text[])`, rids)
		if err != nil {
			return nil, err
		}
		holders := map[string]string{}
		var rid, id string
		if _, err := pgx.ForEachRow(rows, []any{&rid, &id}, func() error { holders[rid] = id; return nil }); err != nil {
			return nil, err
		}
		return takenBy(msgs, holders)
	}
	var taken map[string]string
	err := db.InTx(ctx, func(tx *Tx) error {
		t := smsTx{tx}
		n, err := t.insertSQLite(ctx, msgs, onRepeat)
		if err != nil || n == len(msgs) {
			return err
		}
		rids := repeatabilityIDs(msgs)
		args, in := t.inList("repeatability_id", nil, rids)
		rows, err := tx.QueryP(ctx, `SELECT repeatability_id, id FROM sms_messages WHERE `+in, args...)
		pairs, err := scanRows(rows, err, func(r Row) ([2]string, error) {
			var p [2]string
			return p, r.Scan(&p[0], &p[1])
		})
		if err != nil {
			return err
		}
		holders := make(map[string]string, len(pairs))
		for _, p := range pairs {
			holders[p[0]] = p[1]
		}
		taken, err = takenBy(msgs, holders)
		return err
	})
	return taken, err
}

// repeatabilityIDs are the repeatability ids of msgs.
func repeatabilityIDs(msgs []sms.Message) []string {
	var rids []string
	for _, m := range msgs {
		if m.RepeatabilityRequestID != "" {
			rids = append(rids, m.RepeatabilityRequestID)
		}
	}
	return rids
}

// takenBy is MessagesAccept's answer: the holders of the repeatability ids some message of
// msgs did not get. A message left out whose id's holder is gone (removed meanwhile) gives
// problem.ErrConflict, for the caller to try again.
func takenBy(msgs []sms.Message, holders map[string]string) (map[string]string, error) {
	taken := map[string]string{}
	for _, m := range msgs {
		rid := m.RepeatabilityRequestID
		if rid == "" {
			continue
		}
		h, ok := holders[rid]
		if !ok {
			return nil, fmt.Errorf("%w: repeatabilityRequestId %s was taken and is gone", problem.ErrConflict, rid)
		}
		if h != m.ID {
			taken[rid] = h
		}
	}
	return taken, nil
}

// inList returns the SQL condition "col is one of vals" and its arguments appended to args:
// col = ANY($n) with one array on PostgreSQL, an IN list padded to a bucket on SQLite (so
// that the query comes in few shapes either way).
func (t smsTx) inList(col string, args []any, vals []string) ([]any, string) {
	if t.tx.Dialect() == Postgres {
		args = append(args, vals)
		return args, col + ` = ANY($` + strconv.Itoa(len(args)) + `::text[])`
	}
	args, ph := t.tx.db.inArgs(args, vals, vals[0])
	return args, col + ` IN (` + ph + `)`
}

func (t smsTx) MessagesByRepeatability(ctx context.Context, requestIDs []string) (map[string]sms.Message, error) {
	out := map[string]sms.Message{}
	if len(requestIDs) == 0 {
		return out, nil
	}
	args, in := t.inList("repeatability_id", nil, requestIDs)
	rows, err := t.tx.QueryP(ctx, `SELECT `+smsMessageCols+` FROM sms_messages WHERE `+in, args...)
	msgs, err := scanRows(rows, err, scanSMSMessage)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		out[m.RepeatabilityRequestID] = m
	}
	return out, nil
}

// On PostgreSQL MessagesMarkSent and MessagesRetry join the id array rather than test
// "status = 'queued' AND id = ANY($n)": pgx prepares the statement, and PostgreSQL's generic
// plan of that form ANDs a bitmap of the whole queue index (every queued message) with the
// primary key's, which was most of PostgreSQL's time at 1 recipient per request.

// queuedPG is the test that the message m, found by id, is still queued, written so that
// PostgreSQL cannot answer it from the queue's partial indexes (status = 'queued'), only check
// it on the rows the primary key finds. When the table's statistics were taken while few
// messages were queued (a new database, a log of millions sent, autovacuum behind a burst),
// the planner otherwise expects a dozen queued rows, scans the whole queue index and joins it
// to the id array in a nested loop: at 5,000 queued, one outcome commit of 96 messages
// compared 85,000 pairs, 20 ms and 170 µs of PostgreSQL's time per message moved (issue: SMS
// throughput).
const queuedPG = `m.status || '' = 'queued'`

func (t smsTx) MessagesMarkSent(ctx context.Context, ids []string, segments, attempts int, at time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	const set = `SET status = 'sent', segments = $1, attempts = $2, sent_at = $3, updated_at = $3`
	if t.tx.Dialect() == Postgres {
		rows, err := t.tx.Query(ctx, `UPDATE sms_messages m `+set+` FROM unnest($4::text[]) AS u(id)
			WHERE m.id = u.id AND `+queuedPG+` RETURNING m.id`, customPlan(segments, attempts, ms(at), ids)...)
		return scanRows(rows, err, scanString)
	}
	args, in := t.inList("id", []any{segments, attempts, ms(at)}, ids)
	rows, err := t.tx.QueryP(ctx, `UPDATE sms_messages `+set+` WHERE status = 'queued' AND `+in+` RETURNING id`, args...)
	return scanRows(rows, err, scanString)
}

func (t smsTx) MessagesRetry(ctx context.Context, ids []string, attempts int, next, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	const set = `SET attempts = $1, next_attempt_at = $2, updated_at = $3, lease_owner = '', lease_until = 0`
	if t.tx.Dialect() == Postgres {
		_, err := t.tx.Exec(ctx, `UPDATE sms_messages m `+set+` FROM unnest($4::text[]) AS u(id)
			WHERE m.id = u.id AND `+queuedPG, customPlan(attempts, ms(next), ms(at), ids)...)
		return err
	}
	args, in := t.inList("id", []any{attempts, ms(next), ms(at)}, ids)
	_, err := t.tx.ExecP(ctx, `UPDATE sms_messages `+set+` WHERE status = 'queued' AND `+in, args...)
	return err
}

func (t smsTx) MessageGetForUpdate(ctx context.Context, id string) (sms.Message, error) {
	q := `SELECT ` + smsMessageCols + ` FROM sms_messages WHERE id = $1`
	if t.tx.Dialect() == Postgres {
		q += ` FOR UPDATE`
	}
	return scanSMSMessage(t.tx.QueryRow(ctx, q, id))
}

func (t smsTx) MessageUpdate(ctx context.Context, m sms.Message) error {
	res, err := t.tx.Exec(ctx, `UPDATE sms_messages SET carrier = $2, status = $3, status_details = $4, segments = $5,
		segments_succeeded = $6, segments_failed = $7, attempts = $8, updated_at = $9, sent_at = $10, done_at = $11 WHERE id = $1`,
		m.ID, m.Carrier, string(m.Status), m.StatusDetails, m.Segments, m.SegmentsSucceeded, m.SegmentsFailed, m.Attempts,
		ms(m.UpdatedAt), msOrZero(m.SentAt), msOrZero(m.DoneAt))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return problem.ErrNotFound
	}
	return nil
}

// partsUpsert replaces an older part with the same carrier key (SMSCs reuse ids eventually).
const partsUpsert = ` ON CONFLICT (carrier, carrier_key) DO UPDATE SET message_id = excluded.message_id, seq = excluded.seq,
			state = excluded.state, created_at = excluded.created_at`

// uniqParts drops parts whose key a later part of the batch repeats (one statement may not
// update a row twice).
func uniqParts(parts []sms.Part) []sms.Part {
	seen := map[[2]string]int{}
	var uniq []sms.Part
	for _, p := range parts {
		k := [2]string{p.Carrier, p.Key}
		if i, ok := seen[k]; ok {
			uniq[i] = p
			continue
		}
		seen[k] = len(uniq)
		uniq = append(uniq, p)
	}
	return uniq
}

// PartsAdd upserts parts: on PostgreSQL in one statement of arrays, on SQLite with multi-row
// statements of a few fixed sizes up to 200 (a key repeated in the batch keeps its last part:
// one statement may not update a row twice).
func (t smsTx) PartsAdd(ctx context.Context, parts []sms.Part) error {
	now := nowMS()
	uniq := uniqParts(parts)
	const upsert = partsUpsert
	if len(uniq) > 0 && t.tx.Dialect() == Postgres {
		n := len(uniq)
		carrier, key, msg, state, seq, created := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int32, n), make([]int64, n)
		for i, p := range uniq {
			carrier[i], key[i], msg[i], state[i], seq[i], created[i] = p.Carrier, p.Key, p.MessageID, p.State, int32(p.Seq), now
		}
		_, err := t.tx.Exec(ctx, `INSERT INTO sms_parts (carrier, carrier_key, message_id, seq, state, created_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::bigint[])`+upsert,
			carrier, key, msg, seq, state, created)
		return mapErr(err)
	}
	for len(uniq) > 0 {
		chunk := uniq[:t.tx.db.nextChunk(len(uniq), 200)]
		uniq = uniq[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO sms_parts (carrier, carrier_key, message_id, seq, state, created_at) VALUES `)
		args := make([]any, 0, 6*len(chunk))
		for i, p := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(i*6+1, 6) + ")")
			args = append(args, p.Carrier, p.Key, p.MessageID, p.Seq, p.State, now)
		}
		q.WriteString(upsert)
		if _, err := t.tx.ExecP(ctx, q.String(), args...); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

func (t smsTx) PartByKey(ctx context.Context, carrier string, keys []string) (sms.Part, error) {
	if len(keys) == 0 {
		return sms.Part{}, problem.ErrNotFound
	}
	args := []any{carrier}
	for _, k := range keys {
		args = append(args, k)
	}
	var p sms.Part
	err := t.tx.QueryRow(ctx, `SELECT carrier, carrier_key, message_id, seq, state FROM sms_parts
		WHERE carrier = $1 AND carrier_key IN (`+placeholders(2, len(keys))+`) ORDER BY created_at DESC LIMIT 1`, args...).
		Scan(&p.Carrier, &p.Key, &p.MessageID, &p.Seq, &p.State)
	if errors.Is(err, sql.ErrNoRows) {
		return sms.Part{}, problem.ErrNotFound
	}
	return p, err
}

// PartsByKeys returns carrier's parts with the given keys, newest first.
func (t smsTx) PartsByKeys(ctx context.Context, carrier string, keys []string) ([]sms.Part, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := []any{carrier}
	for _, k := range keys {
		args = append(args, k)
	}
	rows, err := t.tx.Query(ctx, `SELECT carrier, carrier_key, message_id, seq, state FROM sms_parts
		WHERE carrier = $1 AND carrier_key IN (`+placeholders(2, len(keys))+`) ORDER BY created_at DESC`, args...)
	return scanRows(rows, err, func(r Row) (sms.Part, error) {
		var p sms.Part
		err := r.Scan(&p.Carrier, &p.Key, &p.MessageID, &p.Seq, &p.State)
		return p, err
	})
}

// PartsSetState records several parts' states, one statement per carrier and state.
func (t smsTx) PartsSetState(ctx context.Context, parts []sms.Part) error {
	groups := map[[2]string][]any{}
	var order [][2]string
	for _, p := range parts {
		g := [2]string{p.Carrier, p.State}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], p.Key)
	}
	for _, g := range order {
		keys := groups[g]
		args := append([]any{g[0], g[1]}, keys...)
		if _, err := t.tx.Exec(ctx, `UPDATE sms_parts SET state = $2 WHERE carrier = $1 AND carrier_key IN (`+
			placeholders(3, len(keys))+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}

// MessagesGetForUpdate reads and locks messages (in id order, so that concurrent batches
// lock in the same order).
func (t smsTx) MessagesGetForUpdate(ctx context.Context, ids []string) ([]sms.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT ` + smsMessageCols + ` FROM sms_messages WHERE id IN (` + placeholders(1, len(ids)) + `) ORDER BY id`
	if t.tx.Dialect() == Postgres {
		q += ` FOR UPDATE`
	}
	rows, err := t.tx.Query(ctx, q, args...)
	return scanRows(rows, err, scanSMSMessage)
}

func (t smsTx) PartSetState(ctx context.Context, p sms.Part) error {
	_, err := t.tx.Exec(ctx, `UPDATE sms_parts SET state = $3 WHERE carrier = $1 AND carrier_key = $2`, p.Carrier, p.Key, p.State)
	return err
}

func (t smsTx) OptOutSet(ctx context.Context, from, to string, optedOut bool, at time.Time) error {
	if !optedOut {
		_, err := t.tx.Exec(ctx, `DELETE FROM sms_optouts WHERE from_number = $1 AND to_number = $2`, from, to)
		return err
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO sms_optouts (from_number, to_number, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (from_number, to_number) DO NOTHING`, from, to, ms(at))
	return err
}
