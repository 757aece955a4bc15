package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// TestWebhookJobResumes runs a coalesced delivery job of 30 events through the runner on both
// stores, to a subscriber that answers 500 to the first POST of the events whose id ends in 0, 3, 6 or 9: each event
// arrives, and the retry posts only the refused ones (the job's resumable cursor survives the
// failed attempt in the store), so none arrives twice.
func TestWebhookJobResumes(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		db := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		got, refused := map[string]int{}, map[string]bool{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := events.Verify("s", r.Header, body, time.Now(), time.Minute); err != nil {
				t.Errorf("signature: %v", err)
			}
			var evs []events.Event
			_ = json.Unmarshal(body, &evs)
			mu.Lock()
			defer mu.Unlock()
			id := evs[0].ID
			if id[len(id)-1]%3 == 0 && !refused[id] {
				refused[id] = true
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			got[id]++
		}))
		defer srv.Close()
		if err := db.SubscriptionPut(ctx, events.Subscription{ID: "s1", URL: srv.URL, Secret: "s", Source: "api", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		d := events.NewDispatcher(events.Config{Store: db, Guard: &events.Guard{AllowPrivate: true}, Workers: 4})
		if err := d.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		workers := jobs.NewWorkers()
		d.Register(workers)
		r, err := jobs.New(db, workers, jobs.Config{FetchPollInterval: 20 * time.Millisecond,
			Queues: map[string]int{river.QueueDefault: 1, events.QueueWebhooks: 4}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, 5*time.Second) }()
		defer func() { cancel(); <-done }()

		rec := &recordTx{}
		for i := range 30 {
			ev, err := events.New(fmt.Sprintf("e%02d", i), "/telgw", "sms", events.TypeSMSReceived, time.Now(), events.SMSReceivedData{MessageID: fmt.Sprint(i)})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.PublishTx(ctx, rec, ev); err != nil {
				t.Fatal(err)
			}
		}
		batch := events.Coalesce(rec.jobs)
		if len(batch) != 1 {
			t.Fatalf("%d jobs, want 1", len(batch))
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertJobs(ctx, batch) }); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			js, err := r.Jobs(ctx, events.DeliverArgs{}.Kind(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(js) == 1 && js[0].State == rivertype.JobStateCompleted {
				if js[0].Attempt != 2 {
					t.Errorf("completed at attempt %d, want 2", js[0].Attempt)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("jobs %+v", js)
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := range 30 {
			if id := fmt.Sprintf("e%02d", i); got[id] != 1 {
				t.Errorf("event %s delivered %d times, want 1", id, got[id])
			}
		}
		if len(refused) != 12 { // ids ending in 0, 3, 6 or 9
			t.Errorf("%d refused, want 12", len(refused))
		}
	})
}

// recordTx collects jobs as a shared commit does before its one insert.
type recordTx struct{ jobs []river.InsertManyParams }

func (t *recordTx) InsertJob(_ context.Context, a river.JobArgs, o *river.InsertOpts) error {
	t.jobs = append(t.jobs, river.InsertManyParams{Args: a, InsertOpts: o})
	return nil
}

// TestWebhookJobSnoozed: jobs beyond an endpoint's share of the workers are snoozed, and a
// snoozed job still delivers its events when it runs again (River must not take the snoozed
// attempt for a finished step).
func TestWebhookJobSnoozed(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		db := open(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		got := map[string]int{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			var evs []events.Event
			_ = json.Unmarshal(body, &evs)
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				got[e.ID]++
			}
		}))
		defer srv.Close()
		if err := db.SubscriptionPut(ctx, events.Subscription{ID: "s1", URL: srv.URL, Secret: "s", Source: "api", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		// Two workers: the endpoint may hold one of them, so of four jobs three wait.
		d := events.NewDispatcher(events.Config{Store: db, Guard: &events.Guard{AllowPrivate: true}, Workers: 2, Concurrency: 1})
		if err := d.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		workers := jobs.NewWorkers()
		d.Register(workers)
		r, err := jobs.New(db, workers, jobs.Config{FetchPollInterval: 20 * time.Millisecond,
			Queues: map[string]int{river.QueueDefault: 1, events.QueueWebhooks: 2}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, 5*time.Second) }()
		defer func() { cancel(); <-done }()
		var all []river.InsertManyParams
		for j := range 4 {
			rec := &recordTx{}
			for i := range 3 {
				ev, err := events.New(fmt.Sprintf("j%d-e%d", j, i), "/telgw", "sms", events.TypeSMSReceived, time.Now(), events.SMSReceivedData{})
				if err != nil {
					t.Fatal(err)
				}
				if err := d.PublishTx(ctx, rec, ev); err != nil {
					t.Fatal(err)
				}
			}
			all = append(all, events.Coalesce(rec.jobs)...)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertJobs(ctx, all) }); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			js, err := r.Jobs(ctx, events.DeliverArgs{}.Kind(), 10)
			if err != nil {
				t.Fatal(err)
			}
			completed, snoozed := 0, 0
			for _, j := range js {
				if j.State == rivertype.JobStateCompleted {
					completed++
				}
				if strings.Contains(string(j.Metadata), "snoozes") {
					snoozed++
				}
			}
			if completed == 4 {
				if snoozed == 0 {
					t.Error("no job was snoozed")
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of 4 jobs completed", completed)
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 12 {
			t.Errorf("%d events delivered, want 12: %v", len(got), got)
		}
		for id, n := range got {
			if n != 1 {
				t.Errorf("event %s delivered %d times", id, n)
			}
		}
	})
}
