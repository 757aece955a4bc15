package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// plainJobsSQL inserts River jobs from one array per column and wakes each queue's working
// clients as River's own insert does (pg_notify on <schema>.river_insert, which the pgx
// clients listen to), in one round trip. The columns are those River's JobInsertFastMany
// writes for a job without unique options; created_at, scheduled_at and the rest take
// River's table defaults (now()).
const plainJobsSQL = `WITH ins AS (
	INSERT INTO river_job (args, kind, max_attempts, priority, queue, state, metadata, tags)
	SELECT v.args::jsonb, v.kind, v.max_attempts, v.priority, v.queue, 'available', '{}', '{}'
	FROM unnest($1::text[], $2::text[], $3::smallint[], $4::smallint[], $5::text[]) AS v(args, kind, max_attempts, priority, queue)
	RETURNING 1)
SELECT pg_notify(current_schema() || '.river_insert', json_build_object('queue', q)::text) FROM unnest($6::text[]) AS q`

// plainJobSQLite inserts one River job on SQLite as River's riversqlite driver does for a job
// without unique options (times as datetime('now', 'subsec'), JSON as JSONB), through the
// statement cache: River's own insert encodes every job's args into one JSON document that
// SQLite parses back, and prepares its statement afresh each time.
const plainJobSQLite = `INSERT INTO river_job (args, created_at, kind, max_attempts, metadata, priority, queue, scheduled_at, state, tags)
	VALUES (jsonb($1), datetime('now', 'subsec'), $2, $3, jsonb('{}'), $4, $5, datetime('now', 'subsec'), 'available', jsonb('[]'))`

// notifyEvery is how often a queue's insert notification is sent at most (River's insert
// client limits it the same way, to its FetchCooldown): a worker woken fetches every job
// available, and idle workers poll anyway.
const notifyEvery = 100 * time.Millisecond

// notifyLimiter remembers when each queue was last notified.
type notifyLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports the queues of qs to notify now, noting them as notified.
func (l *notifyLimiter) due(qs []string, now time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	out := []string{}
	for _, q := range qs {
		if now.Sub(l.last[q]) >= notifyEvery {
			l.last[q] = now
			out = append(out, q)
		}
	}
	return out
}

// plainJob reports whether River's insert would store j with only its args, kind, queue,
// priority and max attempts set: no unique options, schedule, tags, metadata or pending
// state, and no options of the args' own (JobArgsWithInsertOpts).
func plainJob(j river.InsertManyParams) bool {
	o := j.InsertOpts
	if o == nil || o.Queue == "" || o.MaxAttempts <= 0 || o.Priority < 0 || o.Priority > 4 || o.Pending ||
		!o.ScheduledAt.IsZero() || o.Tags != nil || len(o.Metadata) > 0 || !uniqueEmpty(o.UniqueOpts) {
		return false
	}
	_, own := j.Args.(river.JobArgsWithInsertOpts)
	return !own
}

// uniqueEmpty reports whether u asks for no uniqueness.
func uniqueEmpty(u river.UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && u.ByState == nil && !u.ExcludeKind
}

// insertPlainJobs writes the plain jobs among jobs (plainJob) and returns the others, for
// River. On PostgreSQL they go in one statement of native arrays (plainJobsSQL): River's
// database/sql driver passes its arrays through lib/pq's text encoding, which pgx then parses
// back, and for the webhook deliveries of a shared SMS commit (up to 256 KiB of events per
// job) that was a third of telgw's CPU. On SQLite each goes in a cached statement
// (plainJobSQLite).
func (t *Tx) insertPlainJobs(ctx context.Context, jobs []river.InsertManyParams) ([]river.InsertManyParams, error) {
	var (
		rest                 []river.InsertManyParams
		args, kinds, queues  []string
		attempts, priorities []int16
		seenQueue            = map[string]bool{}
		queueList            []string
	)
	for _, j := range jobs {
		if !plainJob(j) {
			rest = append(rest, j)
			continue
		}
		var b []byte
		var err error
		if m, ok := j.Args.(json.Marshaler); ok {
			b, err = m.MarshalJSON() // PostgreSQL checks it is JSON; json.Marshal would compact it again
		} else {
			b, err = json.Marshal(j.Args)
		}
		if err != nil {
			return nil, fmt.Errorf("encode job %s: %w", j.Args.Kind(), err)
		}
		if t.db.dialect == SQLite {
			if _, err := t.ExecP(ctx, plainJobSQLite, string(b), j.Args.Kind(), j.InsertOpts.MaxAttempts, max(j.InsertOpts.Priority, 1),
				j.InsertOpts.Queue); err != nil {
				return nil, fmt.Errorf("insert job %s: %w", j.Args.Kind(), err)
			}
			continue
		}
		args, kinds, queues = append(args, string(b)), append(kinds, j.Args.Kind()), append(queues, j.InsertOpts.Queue)
		attempts = append(attempts, int16(min(j.InsertOpts.MaxAttempts, 32767)))
		priorities = append(priorities, int16(max(j.InsertOpts.Priority, 1)))
		if !seenQueue[j.InsertOpts.Queue] {
			seenQueue[j.InsertOpts.Queue] = true
			queueList = append(queueList, j.InsertOpts.Queue)
		}
	}
	if len(args) == 0 {
		return rest, nil
	}
	notify := t.db.notify.due(queueList, time.Now())
	rows, err := t.tx.QueryContext(ctx, plainJobsSQL, args, kinds, attempts, priorities, queues, notify)
	if err != nil {
		return nil, fmt.Errorf("insert %d jobs: %w", len(args), err)
	}
	for rows.Next() {
	}
	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return nil, fmt.Errorf("insert %d jobs: %w", len(args), err)
	}
	return rest, nil
}
