package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// TestQueuePlansPG: PostgreSQL plans the queue's statements by their indexes when its
// statistics were taken while nothing was queued (a log of sent messages, analyzed) and then
// thousands are: the outcome statement finds its messages by primary key, not by a scan of the
// queue's partial indexes, and the claim probes each candidate's destination in
// (to_number, seq) instead of scanning the whole index per candidate. Both plans cost a
// message hundreds of microseconds at 5,000 queued (issue: SMS throughput).
func TestQueuePlansPG(t *testing.T) {
	db := storetest.OpenPostgres(t)
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const rows = `INSERT INTO sms_messages (id, from_number, to_number, body, carrier, status, created_at, updated_at)
		SELECT '%s' || i, '+14255550100', '+1206' || lpad(i::text, 7, '0'), 'hi', 'smsc1', '%s', i, i
		FROM generate_series(1, %d) i`
	exec(fmt.Sprintf(rows, "s", "sent", 20000))
	exec(`ANALYZE sms_messages`)
	exec(fmt.Sprintf(rows, "q", "queued", 5000))

	explain := func(q string, args ...any) string {
		t.Helper()
		r, err := db.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var b strings.Builder
		for r.Next() {
			var line string
			if err := r.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}

	ids, segs := make([]string, 100), make([]int32, 100)
	for i := range ids {
		ids[i], segs[i] = fmt.Sprintf("q%d", 2*i+1), 1
	}
	plan := explain(store.MessagesMovePG, "n1#x", int64(1), ids, segs, segs)
	if strings.Contains(plan, "sms_messages_queue") || !strings.Contains(plan, "sms_messages_pkey") {
		t.Errorf("the outcome statement does not find its messages by primary key:\n%s", plan)
	}
	plan = explain(store.ClaimSQL(store.Postgres), "smsc1", int64(1), 100, "n1#x", int64(2))
	if !strings.Contains(plan, "Index Cond: (to_number = c.to_number)") {
		t.Errorf("the claim does not probe each destination's oldest queued message:\n%s", plan)
	}
}
