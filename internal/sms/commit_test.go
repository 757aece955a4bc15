package sms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms/receipt"
)

// countingStore counts transactions and can hold the first one open.
type countingStore struct {
	*memStore
	mu   sync.Mutex
	txs  int
	hold chan struct{} // closed: transactions run
}

func (s *countingStore) SMSTx(ctx context.Context, fn func(tx Tx) error) error {
	s.mu.Lock()
	s.txs++
	first := s.txs == 1
	s.mu.Unlock()
	if first {
		<-s.hold
	}
	return s.memStore.SMSTx(ctx, fn)
}

// TestCommitterGroups: requests arriving while a commit runs share the next transaction, and
// its messages go in one insert; a failing item fails alone.
func TestCommitterGroups(t *testing.T) {
	t.Parallel()
	st := &countingStore{memStore: newMemStore(), hold: make(chan struct{})}
	c := &committer{store: st, parallel: 1, maxItems: 100}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		first <- c.do(ctx, 1, func(tx Tx) error { return tx.MessagesInsert(ctx, []Message{{ID: "first", Status: StatusQueued}}) })
	}()
	for {
		st.mu.Lock()
		n := st.txs
		st.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Ten more arrive while the first commit is held; one of them fails.
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Go(func() {
			errs[i] = c.do(ctx, 1, func(tx Tx) error {
				if i == 3 {
					return problem.ErrConflict
				}
				return tx.MessagesInsert(ctx, []Message{{ID: fmt.Sprint("m", i), Status: StatusQueued}})
			})
		})
	}
	for {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 10 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(st.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 3) != errors.Is(err, problem.ErrConflict) {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	// One held transaction, one shared by the ten (which failed), then ten alone.
	if st.txs != 12 {
		t.Fatalf("%d transactions, want 12", st.txs)
	}
	if len(st.msgs) != 10 {
		t.Fatalf("%d messages stored, want 10", len(st.msgs))
	}
}

// TestReceiptsInOneTransaction: receipts applied together match their parts as one at a time
// would, a repeat in the same batch counts once, and unknown ids are held.
func TestReceiptsInOneTransaction(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	res, _ := f.svc.Send(ctx, SendRequest{From: us, Message: "hi", DeliveryReport: true, Recipients: []Recipient{{To: them}, {To: "+14255550101"}}})
	f.sendDue(t)
	a, _ := f.store.MessageGet(ctx, res[0].MessageID)
	b, _ := f.store.MessageGet(ctx, res[1].MessageID)
	if a.Status != StatusSent || b.Status != StatusSent {
		t.Fatalf("not sent: %+v %+v", a, b)
	}
	var prs []*pendingReceipt
	f.store.mu.Lock()
	for _, p := range f.store.parts {
		st := receipt.StateDelivered
		if p.MessageID == b.ID && p.Seq == 2 {
			st = receipt.StateUndeliverable
		}
		prs = append(prs, &pendingReceipt{r: Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: p.Key, State: st}}})
	}
	f.store.mu.Unlock()
	prs = append(prs, &pendingReceipt{r: prs[0].r}, &pendingReceipt{r: Receipt{Carrier: "c1", Receipt: receipt.Receipt{ID: "FFFF", State: receipt.StateDelivered}}})
	if err := f.store.SMSTx(ctx, func(tx Tx) error { return f.svc.applyReceiptsTx(ctx, tx, prs) }); err != nil {
		t.Fatal(err)
	}
	for i, pr := range prs {
		if pr.found != (i < len(prs)-1) {
			t.Errorf("receipt %d (%s): found %v", i, pr.r.ID, pr.found)
		}
	}
	a, _ = f.store.MessageGet(ctx, a.ID)
	b, _ = f.store.MessageGet(ctx, b.ID)
	if a.Status != StatusDelivered || a.SegmentsSucceeded != 2 || b.Status != StatusFailed || b.SegmentsSucceeded != 1 || b.SegmentsFailed != 1 {
		t.Fatalf("after receipts: %+v\n%+v", a, b)
	}
}

// TestSenderRun: the sender started by Run sends every queued message, several batches at a
// time within the in-flight tokens, and messages to one recipient in the order they were
// accepted.
func TestSenderRun(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	c := windowCarrier{&scriptCarrier{name: "c1", errs: map[string]error{}}, 4}
	svc := New(Config{Store: st, Events: &memEvents{}, Carriers: []Carrier{c}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	for i := range 10 {
		for _, to := range []string{them, fmt.Sprintf("+142555502%02d", i)} {
			if _, err := svc.Send(ctx, SendRequest{From: us, Message: fmt.Sprint(i), Recipients: []Recipient{{To: to}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.got)
		c.mu.Unlock()
		if n == 20 && len(queuedIn(st)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 submitted", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, o := range c.got {
		if o.To == them {
			if o.Text != fmt.Sprint(next) {
				t.Fatalf("message %q to %s submitted when %d was due: %+v", o.Text, them, next, c.got)
			}
			next++
		}
	}
	if cap(svc.inflight) != 4 || len(svc.inflight) != 0 {
		t.Fatalf("in-flight tokens %d of %d still taken", len(svc.inflight), cap(svc.inflight))
	}
}

func queuedIn(st *memStore) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for id, m := range st.msgs {
		if m.Status == StatusQueued {
			out = append(out, id)
		}
	}
	return out
}

// TestStrayCarrier: messages queued for a carrier that is no longer configured fail with a
// delivery report saying so; others stay queued.
func TestStrayCarrier(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	now := time.Now()
	gone := Message{ID: "g1", From: us, To: them, Text: "x", Carrier: "gone", Status: StatusQueued, DeliveryReport: true, CreatedAt: now, UpdatedAt: now}
	gone2 := gone
	gone2.ID = "g2" // same destination: due once g1 is settled
	kept := Message{ID: "k1", From: us, To: them, Text: "x", Carrier: "c1", Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
	if err := f.store.SMSTx(ctx, func(tx Tx) error { return tx.MessagesInsert(ctx, []Message{gone, gone2, kept}) }); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.failStraysOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"g1", "g2"} {
		m, _ := f.store.MessageGet(ctx, id)
		if m.Status != StatusFailed || !strings.Contains(m.StatusDetails, `"gone"`) {
			t.Fatalf("%s: %+v", id, m)
		}
	}
	if m, _ := f.store.MessageGet(ctx, "k1"); m.Status != StatusQueued {
		t.Fatalf("message of a configured carrier: %+v", m)
	}
	if n := len(f.events.ofType(events.TypeSMSDeliveryReportReceived)); n != 2 {
		t.Fatalf("%d delivery reports, want 2", n)
	}
}

// MessagesAccept implements Store on the in-memory store: messages whose repeatability id is
// taken are left out and their holders returned.
func (s *memStore) MessagesAccept(_ context.Context, ms []Message) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	holders := map[string]string{}
	for _, o := range s.msgs {
		if o.RepeatabilityRequestID != "" {
			holders[o.RepeatabilityRequestID] = o.ID
		}
	}
	taken := map[string]string{}
	for _, m := range ms {
		if rid := m.RepeatabilityRequestID; rid != "" {
			if h, ok := holders[rid]; ok {
				taken[rid] = h
				continue
			}
			holders[rid] = m.ID
		}
		s.msgs[m.ID] = m
		s.seq[m.ID] = len(s.seq) + 1
	}
	return taken, nil
}

// TestSendRepeatConcurrent: requests carrying one repeatabilityRequestId at once, whichever
// shared commits they land in, queue one message; every answer names it, all but one
// "rejected". A second recipient of one request with the same id is rejected too.
func TestSendRepeatConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(nil)
	ctx := context.Background()
	rid, first := "0f8fad5b-d9cb-469f-a165-70867728950e", "Tue, 26 Mar 2019 16:06:51 GMT"
	res := make([][]SendResult, 20)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			var err error
			res[i], err = f.svc.Send(ctx, SendRequest{From: us, Message: "hi", Recipients: []Recipient{
				{To: them, RepeatabilityRequestID: rid, RepeatabilityFirstSent: first},
				{To: them, RepeatabilityRequestID: strings.ToUpper(rid), RepeatabilityFirstSent: first}}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if q := f.queued(false); len(q) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q))
	}
	id, accepted := f.queued(false)[0].ID, 0
	for _, r := range res {
		for j, x := range r {
			if x.MessageID != id || !x.Successful() {
				t.Fatalf("result %+v, want message %s", x, id)
			}
			if x.RepeatabilityResult == "accepted" {
				accepted++
				if j != 0 {
					t.Fatalf("second recipient accepted: %+v", r)
				}
			}
		}
	}
	if accepted != 1 {
		t.Fatalf("%d accepted, want 1", accepted)
	}
}

// poisonStore refuses any MessagesAccept holding a message with text "bad".
type poisonStore struct{ *memStore }

func (s poisonStore) MessagesAccept(ctx context.Context, ms []Message) (map[string]string, error) {
	for _, m := range ms {
		if m.Text == "bad" {
			return nil, errors.New("refused")
		}
	}
	return s.memStore.MessagesAccept(ctx, ms)
}

// TestCommitAcceptsAlone: when a shared accept fails, each request's messages are stored
// alone, so only the bad one fails.
func TestCommitAcceptsAlone(t *testing.T) {
	t.Parallel()
	st := poisonStore{newMemStore()}
	c := &committer{store: st, parallel: 1, maxItems: 100}
	var batch []*commitItem
	for i, text := range []string{"a", "bad", "c"} {
		batch = append(batch, &commitItem{msgs: []Message{{ID: fmt.Sprint("m", i), Text: text, Status: StatusQueued}}, rows: 1, done: make(chan error, 1)})
	}
	c.commit(context.Background(), batch)
	for i, it := range batch {
		if err := <-it.done; (err != nil) != (i == 1) {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if len(st.msgs) != 2 {
		t.Fatalf("%d messages stored, want 2", len(st.msgs))
	}
}
