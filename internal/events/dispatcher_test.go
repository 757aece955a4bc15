package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/problem"
)

// memTx is a JobInserter recording what was inserted.
type memTx struct{ jobs []river.JobArgs }

func (t *memTx) InsertJob(_ context.Context, args river.JobArgs, _ *river.InsertOpts) error {
	t.jobs = append(t.jobs, args)
	return nil
}

// publish publishes one SMSReceived event in a fresh transaction and returns the
// subscriptions it was enqueued for.
func publish(t *testing.T, d *Dispatcher) []string {
	t.Helper()
	ev, err := New("e1", "/telgw", "sms", TypeSMSReceived, time.Now(), SMSReceivedData{MessageID: "m1"}, "+14255550100")
	if err != nil {
		t.Fatal(err)
	}
	tx := &memTx{}
	if err := d.PublishTx(context.Background(), tx, ev); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, j := range tx.jobs {
		ids = append(ids, j.(DeliverArgs).SubscriptionID)
	}
	return ids
}

// TestSubscriptionLifecycle: the operator's list, delete and enable go through the
// dispatcher, which reloads its cache, so the next event already follows the change.
func TestSubscriptionLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &memStore{}
	for _, id := range []string{"a", "b"} {
		if err := st.SubscriptionPut(ctx, Subscription{ID: id, URL: "https://example.com/" + id}); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDispatcher(Config{Store: st})
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if subs, err := d.List(ctx); err != nil || len(subs) != 2 {
		t.Fatalf("List = %v, %v", subs, err)
	}
	if got := publish(t, d); len(got) != 2 {
		t.Fatalf("published to %v, want a and b", got)
	}
	if err := d.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, d); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after delete published to %v, want b", got)
	}
	if err := d.Delete(ctx, "a"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	// A 410 disabled b (the worker's path); Enable brings it back.
	if err := st.SubscriptionSetDisabled(ctx, "b", true, "410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, d); len(got) != 0 {
		t.Fatalf("disabled subscription got %v", got)
	}
	if err := d.Enable(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got := publish(t, d); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after enable published to %v, want b", got)
	}
	if err := d.Enable(ctx, "gone"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("enable unknown = %v, want ErrNotFound", err)
	}
}
