package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/store"
)

// smsMessagesUpdate: MessagesUpdate writes every field MessageUpdate writes, for each of
// several messages in one call, leaves the others alone, and fails (rolling back) when a
// message is not stored.
func smsMessagesUpdate(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	var ms []sms.Message
	for i := range 5 {
		ms = append(ms, msg(fmt.Sprintf("u%d", i), at))
	}
	insertMsgs(t, db, ms...)
	var upd []sms.Message
	for i, m := range ms[:4] {
		m.Carrier, m.Status, m.StatusDetails = "smsc2", sms.StatusDelivered, fmt.Sprintf("details %d", i)
		m.Segments, m.SegmentsSucceeded, m.SegmentsFailed, m.Attempts = 3, 2, 1, i+1
		m.UpdatedAt, m.SentAt, m.DoneAt = at.Add(time.Second), at.Add(2*time.Second), at.Add(3*time.Second)
		if i == 3 {
			m.Status, m.DoneAt = sms.StatusSent, time.Time{}
		}
		upd = append(upd, m)
	}
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesUpdate(ctx, upd) }); err != nil {
		t.Fatal(err)
	}
	for i, want := range upd {
		got, err := db.MessageGet(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Carrier != want.Carrier || got.Status != want.Status || got.StatusDetails != want.StatusDetails ||
			got.Segments != 3 || got.SegmentsSucceeded != 2 || got.SegmentsFailed != 1 || got.Attempts != i+1 ||
			!got.UpdatedAt.Equal(want.UpdatedAt) || !got.SentAt.Equal(want.SentAt) || !got.DoneAt.Equal(want.DoneAt) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if got, _ := db.MessageGet(ctx, "u4"); got.Status != sms.StatusQueued || got.Carrier != "smsc1" {
		t.Errorf("untouched message changed: %+v", got)
	}
	bad := append([]sms.Message{upd[0]}, msg("nope", at))
	bad[0].StatusDetails = "rolled back"
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesUpdate(ctx, bad) }); err == nil {
		t.Fatal("update of a message not stored succeeded")
	}
	if got, _ := db.MessageGet(ctx, "u0"); got.StatusDetails != "details 0" {
		t.Errorf("failed update not rolled back: %q", got.StatusDetails)
	}
}

// smsReceiptsBatch: PartsForReceipts reads the parts stored under the given (carrier, key)
// pairs, newest first within a carrier, with each of their messages once; ReceiptsRecord
// writes the parts' states and the messages together, and rolls both back when a message is
// not stored.
func smsReceiptsBatch(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	r1 := msg("r1", at)
	r1.Segments = 2
	insertMsgs(t, db, r1, msg("r2", at), msg("r3", at))
	add := func(ps ...sms.Part) {
		t.Helper()
		if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.PartsAdd(ctx, ps) }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Millisecond) // the next parts are newer
	}
	add(sms.Part{MessageID: "r2", Seq: 1, Carrier: "smsc1", Key: "k3"})
	add(sms.Part{MessageID: "r1", Seq: 1, Carrier: "smsc1", Key: "k1"}, sms.Part{MessageID: "r1", Seq: 2, Carrier: "smsc1", Key: "k2"})
	add(sms.Part{MessageID: "r3", Seq: 1, Carrier: "smsc2", Key: "k1"})
	keys := []sms.PartKey{{Carrier: "smsc1", Key: "k3"}, {Carrier: "smsc1", Key: "k1"}, {Carrier: "smsc2", Key: "k1"}, {Carrier: "smsc1", Key: "nope"}, {Carrier: "smsc1", Key: "k2"}}
	err := db.SMSTx(ctx, func(tx sms.Tx) error {
		ps, ms, err := tx.PartsForReceipts(ctx, keys)
		if err != nil {
			return err
		}
		var got []string
		for _, p := range ps {
			if p.Carrier == "smsc1" {
				got = append(got, fmt.Sprintf("%s:%s:%d", p.Key, p.MessageID, p.Seq))
			} else if p.Key != "k1" || p.MessageID != "r3" || p.Seq != 1 || p.State != "" {
				return fmt.Errorf("smsc2 part %+v", p)
			}
		}
		// k1 and k2 were added together: either order; both before the older k3.
		if len(ps) != 4 || len(got) != 3 || got[2] != "k3:r2:1" || !slices.Contains(got, "k1:r1:1") || !slices.Contains(got, "k2:r1:2") {
			return fmt.Errorf("parts %v (%d in all), want k1 and k2 of r1, then k3 of r2, and smsc2's k1", got, len(ps))
		}
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
			if m.ID == "r1" && m.Segments != 2 {
				return fmt.Errorf("message r1 read with %d segments", m.Segments)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"r1", "r2", "r3"}) {
			return fmt.Errorf("messages %v, want r1, r2 and r3 once each", ids)
		}
		m1, m2 := ms[slices.IndexFunc(ms, func(m sms.Message) bool { return m.ID == "r1" })], ms[slices.IndexFunc(ms, func(m sms.Message) bool { return m.ID == "r2" })]
		m1.SegmentsSucceeded, m1.UpdatedAt = 1, at.Add(time.Second)
		m2.Status, m2.SegmentsFailed, m2.StatusDetails, m2.DoneAt, m2.UpdatedAt = sms.StatusFailed, 1, "failed", at.Add(time.Second), at.Add(time.Second)
		return tx.ReceiptsRecord(ctx, []sms.Part{{Carrier: "smsc1", Key: "k1", MessageID: "r1", State: "delivered"},
			{Carrier: "smsc1", Key: "k3", MessageID: "r2", State: "failed"}}, []sms.Message{m1, m2})
	})
	if err != nil {
		t.Fatal(err)
	}
	states := func() map[sms.PartKey]string {
		t.Helper()
		out := map[sms.PartKey]string{}
		err := db.SMSTx(ctx, func(tx sms.Tx) error {
			ps, _, err := tx.PartsForReceipts(ctx, keys)
			for _, p := range ps {
				out[sms.PartKey{Carrier: p.Carrier, Key: p.Key}] = p.State
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := map[sms.PartKey]string{{Carrier: "smsc1", Key: "k1"}: "delivered", {Carrier: "smsc1", Key: "k2"}: "",
		{Carrier: "smsc1", Key: "k3"}: "failed", {Carrier: "smsc2", Key: "k1"}: ""}
	if got := states(); !maps.Equal(got, want) {
		t.Errorf("part states %v, want %v", got, want)
	}
	if m, _ := db.MessageGet(ctx, "r1"); m.SegmentsSucceeded != 1 || m.Status != sms.StatusQueued {
		t.Errorf("r1 = %+v", m)
	}
	if m, _ := db.MessageGet(ctx, "r2"); m.Status != sms.StatusFailed || m.SegmentsFailed != 1 || m.StatusDetails != "failed" || !m.DoneAt.Equal(at.Add(time.Second)) {
		t.Errorf("r2 = %+v", m)
	}
	if m, _ := db.MessageGet(ctx, "r3"); m.Status != sms.StatusQueued || m.SegmentsSucceeded+m.SegmentsFailed != 0 {
		t.Errorf("r3 = %+v", m)
	}
	err = db.SMSTx(ctx, func(tx sms.Tx) error {
		return tx.ReceiptsRecord(ctx, []sms.Part{{Carrier: "smsc1", Key: "k2", MessageID: "r1", State: "delivered"}}, []sms.Message{msg("nope", at)})
	})
	if err == nil {
		t.Fatal("ReceiptsRecord of a message not stored succeeded")
	}
	if got := states(); !maps.Equal(got, want) {
		t.Errorf("failed ReceiptsRecord not rolled back: part states %v, want %v", got, want)
	}
}

// smsInsertJobsPlain: jobs with a queue, a priority and max attempts (which PostgreSQL
// inserts with a statement of its own) are stored as River stores them, beside jobs with
// more options in the same call; a rolled-back transaction keeps none.
func smsInsertJobsPlain(t *testing.T, db *store.DB) {
	ctx := context.Background()
	js := []river.InsertManyParams{
		{Args: jobs.PingArgs{Note: "plain"}, InsertOpts: &river.InsertOpts{Queue: "q1", MaxAttempts: 7, Priority: 2}},
		{Args: jobs.PingArgs{Note: "tagged"}, InsertOpts: &river.InsertOpts{Queue: "q1", MaxAttempts: 7, Tags: []string{"tag1"}}},
		{Args: jobs.PingArgs{Note: `"quoted" \ {braces}`}, InsertOpts: &river.InsertOpts{Queue: "q2", MaxAttempts: 3}},
	}
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.InsertJobs(ctx, js) }); err == nil {
		_ = db.SMSTx(ctx, func(tx sms.Tx) error {
			if err := tx.InsertJobs(ctx, js); err != nil {
				return err
			}
			return errors.New("roll back")
		})
	} else {
		t.Fatal(err)
	}
	argsText := "args::text"
	if db.Dialect() == store.SQLite {
		argsText = "json(args)" // River keeps args as JSONB there
	}
	rows, err := db.Query(ctx, `SELECT `+argsText+`, queue, max_attempts, priority, state, attempt FROM river_job WHERE kind = 'telgw.ping' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var args, queue, state string
		var maxAttempts, priority, attempt int
		if err := rows.Scan(&args, &queue, &maxAttempts, &priority, &state, &attempt); err != nil {
			t.Fatal(err)
		}
		var a jobs.PingArgs
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			t.Fatalf("args %q: %v", args, err)
		}
		got = append(got, fmt.Sprintf("%s %s %d %d %s %d", a.Note, queue, maxAttempts, priority, state, attempt))
	}
	slices.Sort(got)
	want := []string{`"quoted" \ {braces} q2 3 1 available 0`, "plain q1 7 2 available 0", "tagged q1 7 1 available 0"}
	if !slices.Equal(got, want) {
		t.Errorf("jobs:\n got %q\nwant %q", got, want)
	}
}
