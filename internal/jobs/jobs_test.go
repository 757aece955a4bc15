package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/jobs"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type failArgs struct{}

func (failArgs) Kind() string { return "telgw.test.fail" }

type failWorker struct {
	river.WorkerDefaults[failArgs]
	runs *atomic.Int32
}

func (w *failWorker) Work(context.Context, *river.Job[failArgs]) error {
	w.runs.Add(1)
	return errors.New("peer said no")
}

// TestListAndRetryNow: a job that failed for good is listed with its error, and RetryNow
// (only for its own kind) runs it again at once.
func TestListAndRetryNow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	workers := jobs.NewWorkers()
	river.AddWorker(workers, &failWorker{runs: &runs})
	r, err := jobs.New(db, workers, jobs.Config{FetchPollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	defer func() { cancel(); <-done }()
	if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertJob(ctx, failArgs{}, &river.InsertOpts{MaxAttempts: 1}) }); err != nil {
		t.Fatal(err)
	}
	job := waitJob(t, r, func(j *rivertype.JobRow) bool { return j.State == rivertype.JobStateDiscarded })
	if len(job.Errors) != 1 || job.Errors[0].Error != "peer said no" {
		t.Fatalf("errors %+v", job.Errors)
	}
	if err := r.RetryNow(ctx, "telgw.ping", job.ID); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("retry as another kind: %v, want ErrNotFound", err)
	}
	if err := r.RetryNow(ctx, "telgw.test.fail", 1<<40); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("retry of no job: %v, want ErrNotFound", err)
	}
	if err := r.RetryNow(ctx, "telgw.test.fail", job.ID); err != nil {
		t.Fatal(err)
	}
	waitJob(t, r, func(j *rivertype.JobRow) bool { return j.State == rivertype.JobStateDiscarded && j.Attempt == 2 })
	if runs.Load() != 2 {
		t.Fatalf("worker ran %d times, want 2", runs.Load())
	}
}

func waitJob(t *testing.T, r *jobs.Runner, ok func(*rivertype.JobRow) bool) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		js, err := r.Jobs(context.Background(), "telgw.test.fail", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(js) == 1 && ok(js[0]) {
			return js[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs %+v", js)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueuePoll: a queue with its own poll interval (shorter than the default cooldown) is a
// valid River configuration and works its jobs.
func TestQueuePoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := store.Open(ctx, store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	workers := jobs.NewWorkers()
	river.AddWorker(workers, &failWorker{runs: &runs})
	r, err := jobs.New(db, workers, jobs.Config{Queues: map[string]int{river.QueueDefault: 1, "fast": 1},
		QueuePoll: map[string]time.Duration{"fast": 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	defer func() { cancel(); <-done }()
	if err := db.InsertJob(ctx, failArgs{}, &river.InsertOpts{Queue: "fast", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	waitJob(t, r, func(j *rivertype.JobRow) bool { return j.State == rivertype.JobStateDiscarded && j.Queue == "fast" })
}
