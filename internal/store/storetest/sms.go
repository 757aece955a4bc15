package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/store"
)

// SMS runs the SMS and webhook store conformance cases against a fresh database from open.
func SMS(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("MessageLifecycle", func(t *testing.T) { smsMessageLifecycle(t, open(t)) })
	t.Run("Repeatability", func(t *testing.T) { smsRepeatability(t, open(t)) })
	t.Run("Accept", func(t *testing.T) { smsAccept(t, open(t)) })
	t.Run("Parts", func(t *testing.T) { smsParts(t, open(t)) })
	t.Run("InboundParts", func(t *testing.T) { SMSParts(t, open) })
	t.Run("OptOuts", func(t *testing.T) { smsOptOuts(t, open(t)) })
	t.Run("ConcurrentReceipts", func(t *testing.T) { smsConcurrentUpdates(t, open(t)) })
	t.Run("Webhooks", func(t *testing.T) { webhooks(t, open(t)) })
	t.Run("Queue", func(t *testing.T) { SMSQueue(t, open) })
	t.Run("MessagesUpdate", func(t *testing.T) { smsMessagesUpdate(t, open(t)) })
	t.Run("ReceiptsBatch", func(t *testing.T) { smsReceiptsBatch(t, open(t)) })
	t.Run("InsertJobsPlain", func(t *testing.T) { smsInsertJobsPlain(t, open(t)) })
}

func msg(id string, at time.Time) sms.Message {
	return sms.Message{ID: id, From: "+14255550100", To: "+14255550199", Text: "hi", Tag: "t", DeliveryReport: true,
		Validity: time.Hour, Carrier: "smsc1", Status: sms.StatusQueued, CreatedAt: at, UpdatedAt: at}
}

func smsMessageLifecycle(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	for i := range 3 {
		m := msg(fmt.Sprintf("m%d", i), at.Add(time.Duration(i)*time.Second))
		if i == 2 {
			m.To = "+14255550111"
		}
		if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{m}) }); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.MessageGet(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	want := msg("m1", at.Add(time.Second))
	if got != want {
		t.Fatalf("MessageGet = %+v\nwant %+v", got, want)
	}
	if _, err := db.MessageGet(ctx, "nope"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("missing message: %v", err)
	}
	err = db.SMSTx(ctx, func(tx sms.Tx) error {
		m, err := tx.MessageGetForUpdate(ctx, "m1")
		if err != nil {
			return err
		}
		m.Status, m.Segments, m.SentAt, m.UpdatedAt, m.Attempts = sms.StatusSent, 2, at.Add(time.Minute), at.Add(time.Minute), 3
		return tx.MessageUpdate(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = db.MessageGet(ctx, "m1")
	if got.Status != sms.StatusSent || got.Segments != 2 || !got.SentAt.Equal(at.Add(time.Minute)) || got.Attempts != 3 || !got.DoneAt.IsZero() {
		t.Fatalf("after update: %+v", got)
	}
	many, err := db.MessagesGet(ctx, []string{"m0", "m2", "nope"})
	if err != nil || len(many) != 2 {
		t.Fatalf("MessagesGet: %v %v", ids(many), err)
	}
	// MessagesMarkSent moves only queued messages.
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		if moved, err := tx.MessagesMarkSent(ctx, []string{"m0", "nope"}, 3, 1, at); err != nil || len(moved) != 1 || moved[0] != "m0" {
			t.Fatalf("mark queued sent: %v %v", moved, err)
		}
		if moved, err := tx.MessagesMarkSent(ctx, []string{"m0"}, 3, 1, at); err != nil || len(moved) != 0 {
			t.Fatalf("mark sent twice: %v %v", moved, err)
		}
		return nil
	})
	if m, _ := db.MessageGet(ctx, "m0"); m.Status != sms.StatusSent || m.Segments != 3 || !m.SentAt.Equal(at) {
		t.Fatalf("after MarkSent: %+v", m)
	}
	list, err := db.MessageList(ctx, sms.MessageFilter{Limit: 10})
	if err != nil || len(list) != 3 || list[0].ID != "m2" || list[2].ID != "m0" {
		t.Fatalf("list all: %v %v", ids(list), err)
	}
	list, _ = db.MessageList(ctx, sms.MessageFilter{To: "+14255550199", Status: sms.StatusSent})
	if len(list) != 2 || list[0].ID != "m1" {
		t.Fatalf("list filtered: %v", ids(list))
	}
	list, _ = db.MessageList(ctx, sms.MessageFilter{Before: at.Add(1500 * time.Millisecond), Limit: 1})
	if len(list) != 1 || list[0].ID != "m1" {
		t.Fatalf("list paged: %v", ids(list))
	}
}

func ids(ms []sms.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func smsRepeatability(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.Now()
	a, b := msg("a", at), msg("b", at)
	a.RepeatabilityRequestID, b.RepeatabilityRequestID = "r1", "r1"
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{a}) }); err != nil {
		t.Fatal(err)
	}
	err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{b}) })
	if !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("second insert under one repeatability id: %v", err)
	}
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		got, err := tx.MessagesByRepeatability(ctx, []string{"r1", "r2"})
		if err != nil || len(got) != 1 || got["r1"].ID != "a" {
			t.Fatalf("by repeatability: %+v %v", got, err)
		}
		return nil
	})
	// A batch with a conflicting row inserts nothing.
	c1, c2 := msg("c1", at), msg("c2", at)
	c2.RepeatabilityRequestID = "r1"
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{c1, c2}) }); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("batch with a repeated id: %v", err)
	}
	if _, err := db.MessageGet(ctx, "c1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("half a batch was inserted: %v", err)
	}
	// Messages without repeatability ids never conflict.
	for _, id := range []string{"c", "d"} {
		if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{msg(id, at)}) }); err != nil {
			t.Fatal(err)
		}
	}
}

func smsParts(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.Now()
	err := db.SMSTx(ctx, func(tx sms.Tx) error {
		for _, id := range []string{"m1", "m2"} {
			if err := tx.MessagesInsert(ctx, []sms.Message{msg(id, at)}); err != nil {
				return err
			}
		}
		return tx.PartsAdd(ctx, []sms.Part{{MessageID: "m2", Seq: 1, Carrier: "c", Key: "1a"}, {MessageID: "m1", Seq: 2, Carrier: "c", Key: "1b"},
			{MessageID: "m1", Seq: 1, Carrier: "c", Key: "1a"}}) // a key twice in one batch: the last wins
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		p, err := tx.PartByKey(ctx, "c", []string{"26", "1a"})
		if err != nil || p.MessageID != "m1" || p.Seq != 1 {
			t.Fatalf("PartByKey: %+v %v", p, err)
		}
		if _, err := tx.PartByKey(ctx, "other", []string{"1a"}); !errors.Is(err, problem.ErrNotFound) {
			t.Fatalf("other carrier: %v", err)
		}
		p.State = "delivered"
		return tx.PartSetState(ctx, p)
	})
	// An SMSC reusing an id moves the key to the newer message.
	time.Sleep(2 * time.Millisecond)
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		return tx.PartsAdd(ctx, []sms.Part{{MessageID: "m2", Seq: 1, Carrier: "c", Key: "1a"}})
	})
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		p, err := tx.PartByKey(ctx, "c", []string{"1a"})
		if err != nil || p.MessageID != "m2" || p.State != "" {
			t.Fatalf("reused key: %+v %v", p, err)
		}
		return nil
	})
}

func smsOptOuts(t *testing.T, db *store.DB) {
	ctx := context.Background()
	set := func(to string, out bool) {
		if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.OptOutSet(ctx, "+1000", to, out, time.Now()) }); err != nil {
			t.Fatal(err)
		}
	}
	set("+2", true)
	set("+2", true) // idempotent
	set("+3", true)
	set("+3", false)
	got, err := db.OptOutCheck(ctx, "+1000", []string{"+2", "+3", "+4"})
	if err != nil || !got["+2"] || got["+3"] || got["+4"] || len(got) != 3 {
		t.Fatalf("OptOutCheck = %v %v", got, err)
	}
	if got, _ := db.OptOutCheck(ctx, "+9999", []string{"+2"}); got["+2"] {
		t.Fatal("opt-out leaked to another sender")
	}
}

// smsConcurrentUpdates applies receipts to one message from many goroutines: with the row
// lock (PostgreSQL) or the writer lock (SQLite), no increment is lost.
func smsConcurrentUpdates(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, []sms.Message{msg("m", time.Now())}) }); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			errs <- db.SMSTx(ctx, func(tx sms.Tx) error {
				m, err := tx.MessageGetForUpdate(ctx, "m")
				if err != nil {
					return err
				}
				m.SegmentsSucceeded++
				return tx.MessageUpdate(ctx, m)
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m, _ := db.MessageGet(ctx, "m"); m.SegmentsSucceeded != n {
		t.Fatalf("segments succeeded = %d, want %d", m.SegmentsSucceeded, n)
	}
}

func webhooks(t *testing.T, db *store.DB) {
	ctx := context.Background()
	s := events.Subscription{ID: "w1", URL: "http://127.0.0.1:9/x", Secret: "s", EventTypes: []string{events.TypeSMSReceived},
		Source: "config", CreatedAt: time.UnixMilli(1_800_000_000_000).UTC()}
	if err := db.SubscriptionPut(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := db.SubscriptionSetDisabled(ctx, "w1", true, "410"); err != nil {
		t.Fatal(err)
	}
	// Re-applying configuration keeps the subscription disabled, and takes new batching
	// settings.
	s.URL = "http://127.0.0.1:9/y"
	s.MaxEventsPerBatch, s.PreferredBatchSizeInKilobytes = 50, 128
	if err := db.SubscriptionPut(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := db.SubscriptionGet(ctx, "w1")
	if err != nil || !got.Disabled || got.DisabledReason != "410" || got.URL != s.URL || got.Secret != "s" ||
		len(got.EventTypes) != 1 || len(got.PhoneNumbers) != 0 || !got.CreatedAt.Equal(s.CreatedAt) ||
		got.MaxEventsPerBatch != 50 || got.PreferredBatchSizeInKilobytes != 128 {
		t.Fatalf("SubscriptionGet = %+v %v", got, err)
	}
	if err := db.SubscriptionSetDisabled(ctx, "w1", false, ""); err != nil {
		t.Fatal(err)
	}
	list, err := db.SubscriptionList(ctx)
	if err != nil || len(list) != 1 || list[0].Disabled {
		t.Fatalf("SubscriptionList = %+v %v", list, err)
	}
	if err := db.SubscriptionDelete(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	if err := db.SubscriptionDelete(ctx, "w1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := db.SubscriptionGet(ctx, "w1"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}

// smsAccept: MessagesAccept stores every message whose repeatability id is free, in one
// step, and names the holders of the others: earlier messages, or an earlier message of the
// same call; concurrent accepts of one id store it once.
func smsAccept(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	// Without repeatability ids nothing is taken (and at sizes past SQLite's chunks).
	var plain []sms.Message
	for i := range 300 {
		plain = append(plain, msg(fmt.Sprintf("p%03d", i), at))
	}
	if taken, err := db.MessagesAccept(ctx, plain); err != nil || len(taken) != 0 {
		t.Fatalf("accept without repeatability ids: %v %v", taken, err)
	}
	if got, err := db.MessageGet(ctx, "p299"); err != nil || got != plain[299] {
		t.Fatalf("stored %+v %v\nwant %+v", got, err, plain[299])
	}
	a := msg("a", at)
	a.RepeatabilityRequestID, a.RepeatabilityFirstSent = "r1", "Thu, 01 Jan 2026 00:00:00 GMT"
	if taken, err := db.MessagesAccept(ctx, []sms.Message{a}); err != nil || len(taken) != 0 {
		t.Fatalf("first accept: %v %v", taken, err)
	}
	if got, _ := db.MessageGet(ctx, "a"); got != a {
		t.Fatalf("stored %+v\nwant %+v", got, a)
	}
	// b repeats a; c is new; d repeats c within the call; e has no id.
	b, c, d, e := msg("b", at), msg("c", at), msg("d", at), msg("e", at)
	b.RepeatabilityRequestID, c.RepeatabilityRequestID, d.RepeatabilityRequestID = "r1", "r2", "r2"
	taken, err := db.MessagesAccept(ctx, []sms.Message{b, c, d, e})
	if err != nil {
		t.Fatal(err)
	}
	if taken["r1"] != "a" || taken["r2"] != "c" || len(taken) != 2 {
		t.Fatalf("taken = %v, want r1→a, r2→c", taken)
	}
	for id, want := range map[string]bool{"b": false, "c": true, "d": false, "e": true} {
		if _, err := db.MessageGet(ctx, id); (err == nil) != want {
			t.Fatalf("message %s stored: %v, want %v", id, err == nil, want)
		}
	}
	// Concurrent accepts of one new id: one stores it, the others name it.
	var wg sync.WaitGroup
	got := make([]map[string]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			m := msg(fmt.Sprint("x", i), at)
			m.RepeatabilityRequestID = "r3"
			got[i], errs[i] = db.MessagesAccept(ctx, []sms.Message{m})
		})
	}
	wg.Wait()
	stored := ""
	for i := range 8 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i]["r3"] == "" {
			if stored != "" {
				t.Fatalf("r3 stored twice: %s and x%d", stored, i)
			}
			stored = fmt.Sprint("x", i)
		}
	}
	for i := range 8 {
		if h := got[i]["r3"]; h != "" && h != stored {
			t.Fatalf("accept x%d: holder %s, stored %s", i, h, stored)
		}
	}
	if stored == "" {
		t.Fatal("r3 stored by none")
	}
}
