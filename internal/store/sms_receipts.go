package store

import (
	"context"
	"fmt"

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
	n := len(msgs)
	var (
		ids, carriers, statuses, details = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		segs, ok, failed, attempts       = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		updated, sent, done              = make([]int64, n), make([]int64, n), make([]int64, n)
		seen                             = make(map[string]bool, n)
	)
	for i, m := range msgs {
		if seen[m.ID] {
			return fmt.Errorf("MessagesUpdate: message %s given twice", m.ID)
		}
		seen[m.ID] = true
		ids[i], carriers[i], statuses[i], details[i] = m.ID, m.Carrier, string(m.Status), m.StatusDetails
		segs[i], ok[i], failed[i], attempts[i] = int64(m.Segments), int64(m.SegmentsSucceeded), int64(m.SegmentsFailed), int64(m.Attempts)
		updated[i], sent[i], done[i] = ms(m.UpdatedAt), msOrZero(m.SentAt), msOrZero(m.DoneAt)
	}
	res, err := t.tx.Exec(ctx, `UPDATE sms_messages AS m SET carrier = v.carrier, status = v.status, status_details = v.details,
		segments = v.segs, segments_succeeded = v.ok, segments_failed = v.failed, attempts = v.attempts,
		updated_at = v.updated, sent_at = v.sent, done_at = v.done
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
			$9::bigint[], $10::bigint[], $11::bigint[]) AS v(id, carrier, status, details, segs, ok, failed, attempts, updated, sent, done)
		WHERE m.id = v.id`, ids, carriers, statuses, details, segs, ok, failed, attempts, updated, sent, done)
	if err != nil {
		return err
	}
	if got, _ := res.RowsAffected(); got != int64(n) {
		return fmt.Errorf("MessagesUpdate: %d of %d messages stored", got, n)
	}
	return nil
}
