package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/sms"
	"github.com/telgw/telgw/internal/store"
)

// SMSQueue runs the conformance cases of the outbound queue the SMS senders claim from
// (sms.Store.MessagesClaim) and the leases claims take.
func SMSQueue(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("ClaimOrder", func(t *testing.T) { smsClaimOrder(t, open(t)) })
	t.Run("ClaimRetryAndFinish", func(t *testing.T) { smsClaimRetry(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { smsConcurrentClaims(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { smsLeases(t, open(t), false) })
	t.Run("LeasesSentAlone", func(t *testing.T) { smsLeases(t, open(t), true) })
	t.Run("LeasesRecover", func(t *testing.T) { smsLeasesRecover(t, open(t)) })
	t.Run("InsertJobs", func(t *testing.T) { smsInsertJobs(t, open(t)) })
	t.Run("BulkReceipts", func(t *testing.T) { smsBulkReceipts(t, open(t)) })
	t.Run("BatchSizes", func(t *testing.T) { smsBatchSizes(t, open(t)) })
}

// smsBatchSizes: batches of odd sizes (SQLite cuts inserts into fixed sizes and pads IN lists
// to buckets; PostgreSQL sends arrays) insert, claim, exclude, mark and record parts exactly.
func smsBatchSizes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	var ms []sms.Message
	for i := range 301 {
		m := msg(fmt.Sprintf("b%03d", i), at)
		m.To = fmt.Sprintf("+1206%07d", i)
		m.DeliveryReport = i%2 == 0
		if i%7 == 0 {
			m.RepeatabilityRequestID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		}
		ms = append(ms, m)
	}
	insertMsgs(t, db, ms[:37]...)
	insertMsgs(t, db, ms[37:]...)
	// Another sender leases the first three; the claim takes the other 298, oldest first.
	if qs, err := db.MessagesClaim(ctx, claimP(at, 3, "n2#x")); err != nil || len(qs) != 3 {
		t.Fatal(claimIDs(qs), err)
	}
	qs, err := db.MessagesClaim(ctx, claimP(at, 500, "n1#x"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range ms[3:] {
		want = append(want, m.ID)
	}
	if got := claimIDs(qs); !slices.Equal(got, want) {
		t.Fatalf("claimed %d messages %v…, want the %d not leased in order", len(got), got[:min(5, len(got))], len(want))
	}
	for i, q := range qs {
		m := ms[slices.IndexFunc(ms, func(m sms.Message) bool { return m.ID == q.ID })]
		if q.To != m.To || q.DeliveryReport != m.DeliveryReport || q.RepeatabilityRequestID != m.RepeatabilityRequestID {
			t.Fatalf("claimed message %d: %+v, inserted %+v", i, q.Message, m)
		}
	}
	var parts []sms.Part
	for i, id := range want[:201] {
		parts = append(parts, sms.Part{MessageID: id, Seq: 1, Carrier: "smsc1", Key: fmt.Sprintf("k%d", i)})
	}
	var moved []string
	if err := db.SMSTx(ctx, func(tx sms.Tx) error {
		all := make([]string, len(ms))
		for i, m := range ms {
			all[i] = m.ID
		}
		held, err := tx.MessagesLeased(ctx, "n1#x", all)
		if err != nil {
			return err
		}
		slices.Sort(held)
		if !slices.Equal(held, want) {
			return fmt.Errorf("%d of the 301 messages leased to the claim, want 298", len(held))
		}
		if moved, err = tx.MessagesMarkSent(ctx, want[:201], 1, 1, at); err != nil {
			return err
		}
		if err := tx.MessagesRetry(ctx, want[201:], 1, at.Add(time.Minute), at); err != nil {
			return err
		}
		return tx.PartsAdd(ctx, parts)
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(moved)
	if !slices.Equal(moved, want[:201]) {
		t.Fatalf("marked %d sent, want 201", len(moved))
	}
	got, err := db.MessagesGet(ctx, want)
	if err != nil || len(got) != len(want) {
		t.Fatal(len(got), err)
	}
	for _, m := range got {
		sent := slices.Contains(want[:201], m.ID)
		if (m.Status == sms.StatusSent) != sent || (!sent && (m.Attempts != 1 || !m.NextAttempt.Equal(at.Add(time.Minute)))) {
			t.Fatalf("message %s after the batch: %+v", m.ID, m)
		}
	}
	var rids []string
	for _, m := range ms {
		if m.RepeatabilityRequestID != "" {
			rids = append(rids, m.RepeatabilityRequestID)
		}
	}
	rids = append(rids, "00000000-0000-4000-8000-999999999999") // never seen
	var rep map[string]sms.Message
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { rep, err = tx.MessagesByRepeatability(ctx, rids); return err }); err != nil || len(rep) != 43 {
		t.Fatalf("%d messages found by repeatability id, want 43: %v", len(rep), err)
	}
	if err := db.SMSTx(ctx, func(tx sms.Tx) error {
		ps, err := tx.PartsByKeys(ctx, "smsc1", []string{"k0", "k77", "k200", "k201"})
		if err != nil {
			return err
		}
		if len(ps) != 3 {
			return fmt.Errorf("found %d of the parts k0, k77, k200 (and no k201): %+v", len(ps), ps)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func insertMsgs(t *testing.T, db *store.DB, ms ...sms.Message) {
	t.Helper()
	ctx := context.Background()
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesInsert(ctx, ms) }); err != nil {
		t.Fatal(err)
	}
}

func claimIDs(qs []sms.Queued) []string {
	var out []string
	for _, q := range qs {
		out = append(out, q.ID)
	}
	return out
}

// smsClaimOrder: a claim takes the oldest due messages of its carrier, only the oldest queued
// one per destination, with the recipient's opt-out, and skips excluded ones.
func smsClaimOrder(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	var ms []sms.Message
	for i, to := range []string{"+1", "+2", "+1", "+3", "+2", "+4"} {
		m := msg(fmt.Sprintf("q%d", i), at)
		m.To = to
		ms = append(ms, m)
	}
	other := msg("other", at)
	other.Carrier, other.To = "smsc2", "+9"
	reply := msg("reply", at)
	reply.To, reply.KeywordReply = "+5", true
	insertMsgs(t, db, ms...)
	insertMsgs(t, db, other, reply)
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.OptOutSet(ctx, reply.From, "+3", true, at) }); err != nil {
		t.Fatal(err)
	}
	if cs, err := db.QueuedCarriers(ctx); err != nil || !slices.Equal(cs, []string{"smsc1", "smsc2"}) {
		t.Fatalf("queued carriers %v %v, want smsc1 and smsc2", cs, err)
	}
	qs, err := db.MessagesClaim(ctx, claimP(at, 10, "n1#x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := claimIDs(qs), []string{"q0", "q1", "q3", "q5", "reply"}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v (one per destination, oldest first)", got, want)
	}
	for _, q := range qs {
		if q.OptedOut != (q.To == "+3") || q.KeywordReply != (q.ID == "reply") || q.Text != "hi" || q.Status != sms.StatusQueued {
			t.Fatalf("claimed %+v", q)
		}
	}
	// While q0 and q1 are leased, their destinations' next messages wait too.
	if qs, err := db.MessagesClaim(ctx, claimP(at, 10, "n1#x")); err != nil || len(qs) != 0 {
		t.Fatalf("claimed %v %v while the oldest of each destination is leased", claimIDs(qs), err)
	}
	// Sending q0 and q1 makes q2 and q4 (their destinations' next) due; q3, q5 and the reply
	// are still leased.
	if err := db.SMSTx(ctx, func(tx sms.Tx) error {
		_, err := tx.MessagesMarkSent(ctx, []string{"q0", "q1"}, 1, 1, at)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	qs, err = db.MessagesClaim(ctx, claimP(at, 5, "n1#x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := claimIDs(qs), []string{"q2", "q4"}; !slices.Equal(got, want) {
		t.Fatalf("second claim %v, want %v", got, want)
	}
	if qs, err := db.MessagesClaim(ctx, sms.ClaimParams{Carrier: "nope", Now: at, Limit: 5, Owner: "n1#x", Until: at.Add(time.Minute)}); err != nil || len(qs) != 0 {
		t.Fatalf("claim of an idle carrier: %v %v", qs, err)
	}
}

// claimP claims up to limit messages of smsc1 at at for owner, leased for a minute.
func claimP(at time.Time, limit int, owner string) sms.ClaimParams {
	return sms.ClaimParams{Carrier: "smsc1", Now: at, Limit: limit, Owner: owner, Until: at.Add(time.Minute)}
}

// smsClaimRetry: a message held back after a transient failure is not due until its time
// (its lease ended), and holds its destination's later messages back too; an ended lease
// makes a message due at once.
func smsClaimRetry(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	a, b := msg("a", at), msg("b", at)
	insertMsgs(t, db, a, b)
	qs, err := db.MessagesClaim(ctx, claimP(at, 5, "n1#x"))
	if err != nil || len(qs) != 1 || qs[0].ID != "a" {
		t.Fatalf("claim %v %v", claimIDs(qs), err)
	}
	if err := db.MessagesUnlease(ctx, "n1#x", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	qs, err = db.MessagesClaim(ctx, claimP(at, 5, "n1#x"))
	if err != nil || len(qs) != 1 || qs[0].ID != "a" {
		t.Fatalf("claim after the lease ended %v %v", claimIDs(qs), err)
	}
	next := at.Add(4 * time.Second)
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.MessagesRetry(ctx, []string{"a"}, 3, next, at) }); err != nil {
		t.Fatal(err)
	}
	if qs, _ := db.MessagesClaim(ctx, claimP(next.Add(-time.Millisecond), 5, "n1#x")); len(qs) != 0 {
		t.Fatalf("claimed %v before the retry time", claimIDs(qs))
	}
	// The retry ended the lease: a is due at its retry time, not at the lease's end.
	qs, err = db.MessagesClaim(ctx, claimP(next, 5, "n1#x"))
	if err != nil || len(qs) != 1 || qs[0].ID != "a" || qs[0].Attempts != 3 || !qs[0].NextAttempt.Equal(next) {
		t.Fatalf("claim at the retry time: %+v %v", qs, err)
	}
}

// smsLeases: a leased message is not claimed again until its lease expires, then any sender
// may take it; outcomes are guarded by the lease's owner (MessagesLeased), and only the owner
// ends a lease. alone records the outcomes with Store.MessagesSentAlone instead of
// Tx.MessagesSent.
func smsLeases(t *testing.T, db *store.DB, alone bool) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	a, b, c := msg("a", at), msg("b", at), msg("c", at)
	c.To = "+14255550177"
	insertMsgs(t, db, a, b, c) // a and b go to one destination
	leased := func(owner string) []string {
		t.Helper()
		var ids []string
		if err := db.SMSTx(ctx, func(tx sms.Tx) error {
			var err error
			ids, err = tx.MessagesLeased(ctx, owner, []string{"a", "b", "c", "nope"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	qs, err := db.MessagesClaim(ctx, claimP(at, 1, "n1#x"))
	if err != nil || !slices.Equal(claimIDs(qs), []string{"a"}) {
		t.Fatalf("first claim %v %v", claimIDs(qs), err)
	}
	// Another node: a is leased (and holds b back), c is free.
	if qs, err := db.MessagesClaim(ctx, claimP(at.Add(30*time.Second), 5, "n2#y")); err != nil || !slices.Equal(claimIDs(qs), []string{"c"}) {
		t.Fatalf("claim beside a lease %v %v, want c", claimIDs(qs), err)
	}
	if got := leased("n1#x"); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("leased to n1#x: %v", got)
	}
	if got := leased("n2#y"); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("leased to n2#y: %v", got)
	}
	// Only the owner ends a lease.
	if err := db.MessagesUnlease(ctx, "n2#y", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if qs, _ := db.MessagesClaim(ctx, claimP(at, 5, "n2#y")); len(qs) != 0 {
		t.Fatalf("claimed %v after another owner's unlease", claimIDs(qs))
	}
	// Past its expiry a's lease no longer counts: n2 takes it (not b, still behind a), and
	// n1's outcome for a is refused by the guard.
	qs, err = db.MessagesClaim(ctx, claimP(at.Add(time.Minute), 5, "n2#y"))
	if err != nil || !slices.Equal(claimIDs(qs), []string{"a"}) {
		t.Fatalf("claim after the lease expired %v %v, want a", claimIDs(qs), err)
	}
	if got := leased("n1#x"); len(got) != 0 {
		t.Fatalf("n1#x still holds %v after its lease went to n2#y", got)
	}
	if got := leased("n2#y"); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("leased to n2#y: %v", got)
	}
	// Recording a as sent: refused to n1#x (no longer its lease: neither the message nor its
	// part is written), done for n2#y; a sent message is no longer leased to anyone, b is due.
	sent := func(owner string) []string {
		t.Helper()
		p := sms.SentParams{Owner: owner, At: at.Add(time.Second),
			Sent:  []sms.SentMessage{{ID: "a", Segments: 2, Attempts: 1}, {ID: "b", Segments: 1, Attempts: 1}},
			Parts: []sms.Part{{MessageID: "a", Seq: 1, Carrier: "smsc1", Key: "ka1"}, {MessageID: "a", Seq: 2, Carrier: "smsc1", Key: "ka2"}, {MessageID: "b", Seq: 1, Carrier: "smsc1", Key: "kb1"}}}
		if alone {
			moved, err := db.MessagesSentAlone(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			return moved
		}
		var moved []string
		if err := db.SMSTx(ctx, func(tx sms.Tx) error {
			var err error
			moved, err = tx.MessagesSent(ctx, p)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return moved
	}
	part := func(key string) (sms.Part, error) {
		var p sms.Part
		err := db.SMSTx(ctx, func(tx sms.Tx) error {
			var err error
			p, err = tx.PartByKey(ctx, "smsc1", []string{key})
			return err
		})
		return p, err
	}
	if moved := sent("n1#x"); len(moved) != 0 {
		t.Fatalf("n1#x recorded %v as sent after losing the lease", moved)
	}
	if _, err := part("ka1"); err == nil {
		t.Fatal("a part of a message whose lease was lost was recorded")
	}
	if moved := sent("n2#y"); !slices.Equal(moved, []string{"a"}) {
		t.Fatalf("n2#y recorded %v as sent, want a (b is not leased)", moved)
	}
	if p, err := part("ka2"); err != nil || p.MessageID != "a" || p.Seq != 2 {
		t.Fatalf("part ka2: %+v %v", p, err)
	}
	if _, err := part("kb1"); err == nil {
		t.Fatal("a part of a message not sent was recorded")
	}
	if m, err := db.MessageGet(ctx, "a"); err != nil || m.Status != sms.StatusSent || m.Segments != 2 || m.Attempts != 1 || !m.SentAt.Equal(at.Add(time.Second)) {
		t.Fatalf("a after MessagesSent: %+v %v", m, err)
	}
	if got := leased("n2#y"); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("leased to n2#y after a was sent: %v", got)
	}
	if qs, err := db.MessagesClaim(ctx, claimP(at.Add(time.Minute), 5, "n1#x")); err != nil || !slices.Equal(claimIDs(qs), []string{"b"}) {
		t.Fatalf("claim after a was sent %v %v, want b", claimIDs(qs), err)
	}
}

// smsLeasesRecover: a node starting again ends the leases its earlier processes left (owner
// prefix "<name>#"), not its own; on SQLite (one node) every other lease too.
func smsLeasesRecover(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	var ms []sms.Message
	for i := range 4 {
		m := msg(fmt.Sprintf("r%d", i), at)
		m.To = fmt.Sprintf("+1206000000%d", i)
		ms = append(ms, m)
	}
	insertMsgs(t, db, ms...)
	for _, owner := range []string{"n1#old", "n1#new", "n10#x", "n2#y"} {
		if qs, err := db.MessagesClaim(ctx, claimP(at, 1, owner)); err != nil || len(qs) != 1 {
			t.Fatalf("claim for %s: %v %v", owner, claimIDs(qs), err)
		}
	}
	n, err := db.MessagesLeasesRecover(ctx, "n1#", "n1#new")
	want, free := 1, []string{"r0"}
	if db.Dialect() == store.SQLite {
		want, free = 3, []string{"r0", "r2", "r3"}
	}
	if err != nil || n != want {
		t.Fatalf("recovered %d leases (%v), want %d", n, err, want)
	}
	if qs, err := db.MessagesClaim(ctx, claimP(at, 10, "n1#new")); err != nil || !slices.Equal(claimIDs(qs), free) {
		t.Fatalf("claim after recovery %v %v, want %v", claimIDs(qs), err, free)
	}
}

// smsConcurrentClaims: claims running at once never share a message, and every message is
// claimed once.
func smsConcurrentClaims(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	const n = 200
	var ms []sms.Message
	for i := range n {
		m := msg(fmt.Sprintf("c%03d", i), at)
		m.To = fmt.Sprintf("+1206%07d", i)
		ms = append(ms, m)
	}
	insertMsgs(t, db, ms...)
	var mu sync.Mutex
	seen := map[string]int{}
	// On PostgreSQL SKIP LOCKED and the lease re-check keep concurrent claims apart; on SQLite
	// each claim is a write transaction of its own.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		owner := fmt.Sprintf("n%d#x", w)
		wg.Go(func() {
			for {
				qs, err := db.MessagesClaim(ctx, claimP(at, 7, owner))
				if err == nil && len(qs) > 0 {
					mu.Lock()
					for _, q := range qs {
						seen[q.ID]++
					}
					mu.Unlock()
					err = db.SMSTx(ctx, func(tx sms.Tx) error {
						held, err := tx.MessagesLeased(ctx, owner, claimIDs(qs))
						if err != nil {
							return err
						}
						if len(held) != len(qs) {
							return fmt.Errorf("%s holds %d of the %d messages it claimed", owner, len(held), len(qs))
						}
						_, err = tx.MessagesMarkSent(ctx, held, 1, 1, at)
						return err
					})
				}
				if err != nil || len(qs) == 0 {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d of %d messages claimed", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("%s claimed %d times", id, c)
		}
	}
}

// smsInsertJobs: several jobs go in with one statement and commit with the transaction.
func smsInsertJobs(t *testing.T, db *store.DB) {
	ctx := context.Background()
	var js []river.InsertManyParams
	for i := range 3 {
		js = append(js, river.InsertManyParams{Args: jobs.PingArgs{Note: fmt.Sprint(i)}})
	}
	if err := db.SMSTx(ctx, func(tx sms.Tx) error { return tx.InsertJobs(ctx, js) }); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'telgw.ping'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d ping jobs (%v), want 3", n, err)
	}
}

// smsBulkReceipts: the bulk reads and writes a batch of receipts uses.
func smsBulkReceipts(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.UnixMilli(1_800_000_000_000).UTC()
	insertMsgs(t, db, msg("b1", at), msg("b2", at))
	err := db.SMSTx(ctx, func(tx sms.Tx) error {
		return tx.PartsAdd(ctx, []sms.Part{{MessageID: "b1", Seq: 1, Carrier: "smsc1", Key: "k1"}, {MessageID: "b1", Seq: 2, Carrier: "smsc1", Key: "k2"},
			{MessageID: "b2", Seq: 1, Carrier: "smsc1", Key: "k3"}, {MessageID: "b2", Seq: 1, Carrier: "smsc2", Key: "k1"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.SMSTx(ctx, func(tx sms.Tx) error {
		ps, err := tx.PartsByKeys(ctx, "smsc1", []string{"k1", "k3", "nope"})
		if err != nil {
			return err
		}
		if len(ps) != 2 {
			return fmt.Errorf("parts %+v, want k1 and k3 of smsc1", ps)
		}
		for _, p := range ps {
			if p.Carrier != "smsc1" || (p.Key == "k1") != (p.MessageID == "b1") {
				return fmt.Errorf("part %+v", p)
			}
		}
		if err := tx.PartsSetState(ctx, []sms.Part{{Carrier: "smsc1", Key: "k1", State: "delivered"},
			{Carrier: "smsc1", Key: "k2", State: "failed"}, {Carrier: "smsc1", Key: "k3", State: "delivered"}}); err != nil {
			return err
		}
		ms, err := tx.MessagesGetForUpdate(ctx, []string{"b2", "b1", "nope"})
		if err != nil {
			return err
		}
		if len(ms) != 2 || ms[0].ID != "b1" || ms[1].ID != "b2" {
			return fmt.Errorf("messages %v, want b1 and b2", ms)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.SMSTx(ctx, func(tx sms.Tx) error {
		for _, w := range []struct{ carrier, key, state string }{{"smsc1", "k1", "delivered"}, {"smsc1", "k2", "failed"}, {"smsc1", "k3", "delivered"}, {"smsc2", "k1", ""}} {
			p, err := tx.PartByKey(ctx, w.carrier, []string{w.key})
			if err != nil || p.State != w.state {
				t.Errorf("%s/%s: %+v %v, want state %q", w.carrier, w.key, p, err, w.state)
			}
		}
		return nil
	})
}
