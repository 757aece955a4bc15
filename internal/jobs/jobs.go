// Package jobs works River jobs, the durable queue behind SMS sending and webhook delivery, on
// either store. Domains register workers on Workers before New; they enqueue through their
// store transaction's InsertJob (internal/store owns an insert-only River client), so a job
// exists exactly when its rows do.
//
// On PostgreSQL the working client uses the pgx pool (LISTEN/NOTIFY, FOR UPDATE SKIP LOCKED
// job claims shared by every node); on SQLite it uses River's SQLite driver, polling.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/telgw/telgw/internal/problem"
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
	// QueuePoll overrides FetchPollInterval for the named queues (a queue whose jobs must
	// start within milliseconds, such as an IncomingCall while the caller hears ringing).
	QueuePoll map[string]time.Duration
	// JobTimeout cancels a job running longer (workers may override it). Default 30s.
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay "running" before River assumes its node died
	// (kill -9) and makes it available again; it must exceed JobTimeout. Default
	// JobTimeout + 15s, so work in flight at a crash resumes within a minute.
	RescueAfter time.Duration
}

// Runner works jobs.
type Runner struct {
	c client
}

// client is what Runner needs of River's Client, whatever its transaction type.
type client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobRetry(ctx context.Context, id int64) (*rivertype.JobRow, error)
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
		qc := river.QueueConfig{MaxWorkers: n}
		if poll := cfg.QueuePoll[name]; poll > 0 {
			qc.FetchPollInterval, qc.FetchCooldown = poll, min(poll/4, cfg.FetchPollInterval/4)
		}
		queues[name] = qc
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
	var (
		c   client
		err error
	)
	if db.Dialect() == store.Postgres {
		c, err = river.NewClient(riverpgxv5.New(db.Pool()), base())
	} else {
		c, err = river.NewClient(riversqlite.New(db.SQL()), base())
	}
	if err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	return &Runner{c: c}, nil
}

// Run starts working jobs and blocks until ctx ends, then stops gracefully: running jobs get
// drainTimeout to finish before they are cancelled (and retried later, by any node).
func (r *Runner) Run(ctx context.Context, drainTimeout time.Duration) error {
	if err := r.c.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting (SIGTERM during start-up): nothing ran, nothing to drain
		}
		return fmt.Errorf("start river: %w", err)
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	stopErr := r.c.Stop(stopCtx)
	if errors.Is(stopErr, context.DeadlineExceeded) {
		hard, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		return r.c.StopAndCancel(hard)
	}
	return stopErr
}

// Jobs lists the newest jobs of kind, at most limit, whatever their state: the operator's
// view of a queue (the console's webhook deliveries).
func (r *Runner) Jobs(ctx context.Context, kind string, limit int) ([]*rivertype.JobRow, error) {
	res, err := r.c.JobList(ctx, river.NewJobListParams().Kinds(kind).OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit))
	if err != nil {
		return nil, fmt.Errorf("list %s jobs: %w", kind, err)
	}
	return res.Jobs, nil
}

// RetryNow makes job id, which must be of kind, available to run at once (a failed job
// waiting for its next attempt, or a discarded one, which gets one more attempt); a running
// job is left alone. problem.ErrNotFound when there is no such job of that kind.
func (r *Runner) RetryNow(ctx context.Context, kind string, id int64) error {
	j, err := r.c.JobGet(ctx, id)
	if errors.Is(err, river.ErrNotFound) || (err == nil && j.Kind != kind) {
		return problem.NotFound("id", "no %s job %d", kind, id)
	}
	if err != nil {
		return fmt.Errorf("get job %d: %w", id, err)
	}
	if _, err := r.c.JobRetry(ctx, id); err != nil {
		return fmt.Errorf("retry job %d: %w", id, err)
	}
	return nil
}
