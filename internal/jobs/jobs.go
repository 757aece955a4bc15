// Package jobs wires River, the durable job runner behind the SMS queue and webhook delivery,
// onto either store. Domains register workers on Workers before Start; they enqueue with InsertTx
// inside the same *sql.Tx that writes their rows, so a job exists exactly when its data does.
//
// On PostgreSQL the working client uses the pgx pool (LISTEN/NOTIFY, FOR UPDATE SKIP LOCKED
// job claims shared by every node) and transactional inserts go through River's database/sql
// driver on the same database; on SQLite one database/sql client does both.
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/telgw/telgw/internal/store"
)

// Config tunes the runner.
type Config struct {
	// Queues maps queue name → max concurrent workers on this node. Default {"default": 10}.
	Queues map[string]int
	// Logger receives River's logs.
	Logger *slog.Logger
	// FetchPollInterval is how often idle workers poll (SQLite, or when notifications lag).
	// Default 100ms.
	FetchPollInterval time.Duration
	// JobTimeout cancels a job running longer (workers may override it). Default 30s.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay "running" before River assumes its node died
	// (kill -9) and makes it available again; it must exceed JobTimeout. Default
	// JobTimeout + 15s, so work in flight at a crash resumes within a minute.
	RescueAfter time.Duration
}

// Runner inserts and works jobs.
type Runner struct {
	pg   *river.Client[pgx.Tx]  // PostgreSQL worker client
	sqlc *river.Client[*sql.Tx] // SQLite worker client, or PostgreSQL insert-only client
}

// NewWorkers returns a worker registry for domains to fill with river.AddWorker. It holds the
// Ping worker already, so a runner always has one worker and can start.
func NewWorkers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &PingWorker{})
	return w
}

// PingArgs is a job that does nothing: tests and readiness probes use it to see jobs flow.
type PingArgs struct {
	// Note is free text, echoed in logs.
	Note string `json:"note"`
}

// Kind implements river.JobArgs.
func (PingArgs) Kind() string { return "telgw.ping" }

// PingWorker works PingArgs.
type PingWorker struct {
	river.WorkerDefaults[PingArgs]
}

// Work implements river.Worker.
func (*PingWorker) Work(context.Context, *river.Job[PingArgs]) error { return nil }

// New builds a Runner on db with the registered workers.
func New(db *store.DB, workers *river.Workers, cfg Config) (*Runner, error) {
	if cfg.Queues == nil {
		cfg.Queues = map[string]int{river.QueueDefault: 10}
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 30 * time.Second
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		cfg.RescueAfter = cfg.JobTimeout + 15*time.Second
	}
	if cfg.FetchPollInterval == 0 {
		cfg.FetchPollInterval = 100 * time.Millisecond
	}
	queues := map[string]river.QueueConfig{}
	for name, n := range cfg.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	base := func() *river.Config {
		return &river.Config{
			Logger:               cfg.Logger,
			Workers:              workers,
			Queues:               queues,
			FetchPollInterval:    cfg.FetchPollInterval,
			FetchCooldown:        cfg.FetchPollInterval / 4,
			JobTimeout:           cfg.JobTimeout,
			RescueStuckJobsAfter: cfg.RescueAfter,
		}
	}
	r := &Runner{}
	var err error
	if db.Dialect() == store.Postgres {
		if r.pg, err = river.NewClient(riverpgxv5.New(db.Pool()), base()); err != nil {
			return nil, fmt.Errorf("river: %w", err)
		}
		// Insert-only: no Queues, no Workers needed for inserting.
		if r.sqlc, err = river.NewClient(riverdatabasesql.New(db.SQL()), &river.Config{Logger: cfg.Logger, Workers: workers}); err != nil {
			return nil, fmt.Errorf("river: %w", err)
		}
		return r, nil
	}
	if r.sqlc, err = river.NewClient(riversqlite.New(db.SQL()), base()); err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	return r, nil
}

// InsertTx enqueues a job inside tx; it becomes visible when tx commits.
func (r *Runner) InsertTx(ctx context.Context, tx *store.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return r.sqlc.InsertTx(ctx, tx.SQL(), args, opts)
}

// Insert enqueues a job on its own.
func (r *Runner) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	if r.pg != nil {
		return r.pg.Insert(ctx, args, opts)
	}
	return r.sqlc.Insert(ctx, args, opts)
}

// Run starts working jobs and blocks until ctx ends, then stops gracefully: running jobs get
// drainTimeout to finish before they are cancelled (and retried later, by any node).
func (r *Runner) Run(ctx context.Context, drainTimeout time.Duration) error {
	start := func(c interface{ Start(context.Context) error }) error { return c.Start(ctx) }
	var err error
	if r.pg != nil {
		err = start(r.pg)
	} else {
		err = start(r.sqlc)
	}
	if err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	var stopErr error
	if r.pg != nil {
		stopErr = r.pg.Stop(stopCtx)
	} else {
		stopErr = r.sqlc.Stop(stopCtx)
	}
	if errors.Is(stopErr, context.DeadlineExceeded) {
		hard, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		if r.pg != nil {
			return r.pg.StopAndCancel(hard)
		}
		return r.sqlc.StopAndCancel(hard)
	}
	return stopErr
}
