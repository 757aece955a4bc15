package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

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
