package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/problem"
)

// Store keeps subscriptions (internal/store implements it).
type Store interface {
	// SubscriptionList returns every subscription, enabled or not.
	SubscriptionList(ctx context.Context) ([]Subscription, error)
	// SubscriptionGet returns one subscription or problem.ErrNotFound.
	SubscriptionGet(ctx context.Context, id string) (Subscription, error)
	// SubscriptionPut inserts or replaces s; replacing keeps the stored Disabled state unless
	// s.Disabled is set.
	SubscriptionPut(ctx context.Context, s Subscription) error
	// SubscriptionDelete removes a subscription or returns problem.ErrNotFound.
	SubscriptionDelete(ctx context.Context, id string) error
	// SubscriptionSetDisabled disables (with a reason) or re-enables a subscription.
	SubscriptionSetDisabled(ctx context.Context, id string, disabled bool, reason string) error
}

// JobInserter is a store transaction that enqueues River jobs: a job inserted through it
// commits or rolls back with the transaction's rows (the outbox). internal/store's Tx
// implements it, and so does every domain's transaction interface that embeds it (sms.Tx).
type JobInserter interface {
	InsertJob(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
}

// Config configures a Dispatcher.
type Config struct {
	// Store keeps subscriptions (required).
	Store Store
	// Guard keeps subscriber URLs off internal addresses, at creation and at dial time.
	// Nil refuses internal addresses (the zero Guard).
	Guard *Guard
	// Client posts deliveries. Default: telgw's own HTTP/1.1 client (h1.go) for the
	// deliveries and Guard.Client for the validation handshake, both with a 10s timeout,
	// guarded at dial time, redirects not followed. A Client given here posts everything and
	// bypasses the dial-time check (tests only).
	Client *http.Client
	// Logger receives delivery failures. Default discards.
	Logger *slog.Logger
	// MaxAttempts bounds deliveries of one event to one subscriber. Default 100 (with
	// MaxBackoff 60s: about an hour and a half of retries).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts, which doubles from 1s. Default 60s.
	MaxBackoff time.Duration
	// Refresh is how often the subscription cache reloads (other nodes may change it).
	// Default 5s.
	Refresh time.Duration
	// Registerer receives the delivery metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Workers is how many workers this node runs on QueueWebhooks (the runner's queue size,
	// internal/app sets both from webhooks.workers): one endpoint's jobs hold at most half of
	// them, so a slow subscriber cannot starve the others. Default DefaultWorkers.
	Workers int
	// Concurrency bounds the POSTs in flight from this node to one endpoint (scheme and
	// host). Default DefaultConcurrency.
	Concurrency int
}

// Defaults of Config.Workers and Config.Concurrency.
const (
	DefaultWorkers     = 20
	DefaultConcurrency = 32
)

// Dispatcher fans events out to matching subscriptions as durable River jobs and works them.
type Dispatcher struct {
	cfg        Config
	log        *slog.Logger
	subs       atomic.Pointer[[]Subscription]
	deliveries *prometheus.CounterVec
	latency    prometheus.Histogram
	jobCap     int // jobs in flight per endpoint
	// h1 posts deliveries unless Config.Client was given.
	h1 *h1Client

	epMu      sync.Mutex
	endpoints map[string]*endpoint
}

// NewDispatcher builds a Dispatcher.
func NewDispatcher(cfg Config) *Dispatcher {
	if cfg.Guard == nil {
		cfg.Guard = &Guard{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	var h1 *h1Client
	if cfg.Client == nil {
		h1 = newH1Client(cfg.Guard, 10*time.Second, cfg.Concurrency)
		cfg.Client = cfg.Guard.Client(10 * time.Second)
		// Keep a connection per POST in flight to an endpoint (keep-alive), not Client's 8:
		// otherwise every POST beyond them dials anew (and leaves a TIME_WAIT socket).
		if tr, ok := cfg.Client.Transport.(*http.Transport); ok {
			tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, cfg.Concurrency)
			tr.MaxIdleConns = max(tr.MaxIdleConns, 4*cfg.Concurrency)
			tr.DisableCompression = true // answers are discarded: no Accept-Encoding, no gzip reader
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 100
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, jobCap: max(1, cfg.Workers/2), endpoints: map[string]*endpoint{}, h1: h1,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "telgw_webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: ok, retry, gone, blocked (internal address refused), expired (an IncomingCall past the ring timeout)."}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telgw_webhook_delivery_seconds",
			Help: "Webhook POST latency.", Buckets: prometheus.DefBuckets}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(d.deliveries, d.latency)
	}
	return d
}

// Register adds the delivery worker to workers.
func (d *Dispatcher) Register(workers *river.Workers) {
	river.AddWorker(workers, &deliverWorker{d: d})
}

// ConfigID is the stable id of a subscription defined in configuration.
func ConfigID(url string) string {
	h := sha256.Sum256([]byte(url))
	return "cfg-" + hex.EncodeToString(h[:8])
}

// SyncConfig stores the configured subscriptions (keeping a 410-disabled one disabled) and
// loads the cache. A subscriber URL the guard refuses is an error naming webhooks[i].url.
func (d *Dispatcher) SyncConfig(ctx context.Context, subs []Subscription) error {
	for i, s := range subs {
		if err := d.cfg.Guard.checkURL(ctx, fmt.Sprintf("webhooks[%d].url", i), s.URL, false); err != nil {
			return err
		}
		s.ID = ConfigID(s.URL)
		s.Source = "config"
		if s.CreatedAt.IsZero() {
			s.CreatedAt = time.Now().UTC()
		}
		if err := d.cfg.Store.SubscriptionPut(ctx, s); err != nil {
			return fmt.Errorf("store webhook %s: %w", s.URL, err)
		}
	}
	return d.Reload(ctx)
}

// Reload refreshes the subscription cache from the store.
func (d *Dispatcher) Reload(ctx context.Context) error {
	subs, err := d.cfg.Store.SubscriptionList(ctx)
	if err != nil {
		return fmt.Errorf("list webhooks: %w", err)
	}
	d.subs.Store(&subs)
	return nil
}

// Run reloads the cache every Refresh until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if d.h1 != nil {
				d.h1.closeIdle(now)
			}
			if err := d.Reload(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("reload webhook subscriptions", "err", err)
			}
		}
	}
}

func (d *Dispatcher) matching(ev Event) []Subscription {
	p := d.subs.Load()
	if p == nil {
		return nil
	}
	var out []Subscription
	for _, s := range *p {
		if s.Matches(ev) {
			out = append(out, s)
		}
	}
	return out
}

// DeliverArgs is the River job of one event for one subscription.
type DeliverArgs struct {
	// SubscriptionID names the subscriber.
	SubscriptionID string `json:"subscriptionId"`
	// EventID is the event's id (the webhook-id header).
	EventID string `json:"eventId"`
	// Event is the serialised Event Grid event.
	Event json.RawMessage `json:"event"`
	// More are further events for the same subscription (Coalesce), delivered after Event
	// in the same job; a retry posts only those not delivered yet.
	More []QueuedEvent `json:"more,omitempty"`
	// ExpiresAt, when set, is when the event stops being worth delivering (an IncomingCall
	// after the ring timeout): the job is cancelled then instead of retried.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "telgw.webhook" }

func (d *Dispatcher) jobs(evs []Event) ([]DeliverArgs, error) {
	var out []DeliverArgs
	for _, ev := range evs {
		subs := d.matching(ev)
		if len(subs) == 0 {
			continue
		}
		b, ok := ev.appendJSON(make([]byte, 0, 256+len(ev.Data)))
		if !ok {
			var err error
			if b, err = json.Marshal(ev); err != nil {
				return nil, err
			}
		}
		for _, s := range subs {
			out = append(out, DeliverArgs{SubscriptionID: s.ID, EventID: ev.ID, Event: b})
		}
	}
	return out, nil
}

// PublishTx enqueues evs for every matching subscription inside tx, so the deliveries exist
// exactly when the caller's rows do.
func (d *Dispatcher) PublishTx(ctx context.Context, tx JobInserter, evs ...Event) error {
	args, err := d.jobs(evs)
	if err != nil {
		return err
	}
	for _, a := range args {
		if err := tx.InsertJob(ctx, a, d.insertOpts()); err != nil {
			return fmt.Errorf("enqueue webhook: %w", err)
		}
	}
	return nil
}

// publishUrgent enqueues evs for every matching subscription on QueueCalls at the highest
// priority, each delivery given up at expires (attempts retry within seconds until then). It
// returns how many deliveries it queued.
func (d *Dispatcher) publishUrgent(ctx context.Context, ins JobInserter, expires time.Time, evs ...Event) (int, error) {
	args, err := d.jobs(evs)
	if err != nil {
		return 0, err
	}
	for i, a := range args {
		a.ExpiresAt = expires.UTC()
		if err := ins.InsertJob(ctx, a, &river.InsertOpts{Queue: QueueCalls, Priority: 1, MaxAttempts: urgentMaxAttempts}); err != nil {
			return i, fmt.Errorf("enqueue webhook: %w", err)
		}
	}
	return len(args), nil
}

func (d *Dispatcher) insertOpts() *river.InsertOpts {
	return &river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: d.cfg.MaxAttempts}
}

// statusError is a subscriber's answer other than 2xx and 410.
type statusError struct {
	code   int
	status string
}

func (e *statusError) Error() string { return "subscriber answered " + e.status }

// errGone marks a 410 answer.
var errGone = errors.New("subscriber answered 410 Gone")

// errExpired cancels a delivery whose event is no longer worth sending.
var errExpired = errors.New("event expired before it could be delivered")

// Deliver posts one event to s as a one-element JSON array with the Standard Webhooks
// headers. A 2xx is success; 410 returns an error wrapping errGone; anything else an error.
func (d *Dispatcher) Deliver(ctx context.Context, s Subscription, eventID string, event json.RawMessage) error {
	body := make([]byte, 0, len(event)+2)
	body = append(append(append(body, '['), event...), ']')
	return d.post(ctx, s, eventID, body)
}

// post posts body, a JSON array of events, to s signed with webhook-id id.
func (d *Dispatcher) post(ctx context.Context, s Subscription, id string, body []byte) error {
	if d.h1 != nil {
		now := time.Now()
		a, err := d.h1.post(ctx, s.URL, id, now, Sign(s.Secret, id, now, body), body)
		if err != nil {
			return err
		}
		return answerErr(a.code, a.status, a.location)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("aeg-event-type", "Notification")
	req.Header.Set("User-Agent", "telgw-webhooks")
	SetHeaders(req.Header, s.Secret, id, time.Now(), body)
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return answerErr(resp.StatusCode, resp.Status, resp.Header.Get("Location"))
}

// answerErr classifies a subscriber's answer: nil for a 2xx, errGone for 410, a statusError
// for anything else.
func answerErr(code int, status, location string) error {
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return errGone
	}
	if code >= 300 && code < 400 {
		// Redirects are not followed (they could point inside); the subscriber must fix its URL.
		return &statusError{code: code, status: fmt.Sprintf("%s to %q (redirects are not followed)", status, location)}
	}
	return &statusError{code: code, status: status}
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	d *Dispatcher
}

// NextRetry doubles the wait from 1s up to MaxBackoff, so a subscriber back after minutes
// gets its events within MaxBackoff.
func (w *deliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	backoff := time.Second << min(job.Attempt, 20)
	if !job.Args.ExpiresAt.IsZero() {
		// An expiring event retries quickly: 0.5s, 1s, 2s, then every 2s until it expires.
		return time.Now().Add(min(backoff/2, urgentMaxBackoff))
	}
	return time.Now().Add(min(backoff, w.d.cfg.MaxBackoff))
}

// Work delivers a job's events (see deliverJob); an expiring event (an IncomingCall) goes
// alone, as deliverArgs. A 410 disables the subscription and ends the job. Events delivered
// before an attempt failed are recorded in the job (a River resumable cursor), so its retry
// posts only the others.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	var err error
	if !job.Args.ExpiresAt.IsZero() {
		err = w.d.deliverArgs(ctx, job.Args)
	} else {
		river.ResumableStepCursor(ctx, "deliver", nil, func(ctx context.Context, done []int) error {
			var now []int
			now, err = w.d.deliverJob(ctx, job.Args, done)
			if len(now) > len(done) && err != nil && !errors.Is(err, errSkip) && !errors.Is(err, errGone) {
				if cerr := river.ResumableSetCursor(ctx, now); cerr != nil {
					return cerr
				}
			}
			if errors.Is(err, errSkip) {
				return nil // the job ends (below), as a success
			}
			// Any other outcome short of every event delivered, a snooze included, must fail
			// the step: River records a step that returned nil as done, and would skip it on
			// the job's next run.
			return err
		})
	}
	switch {
	case errors.Is(err, errSkip):
		return nil
	case errors.Is(err, errBudget):
		return river.JobSnooze(0)
	case errors.Is(err, errGone), errors.Is(err, errExpired):
		return river.JobCancel(err)
	case errors.Is(err, errCircuitOpen):
		w.d.log.Debug("webhook endpoint's circuit open; will retry", "subscription", job.Args.SubscriptionID, "attempt", job.Attempt)
	case err != nil:
		var snooze *river.JobSnoozeError
		if !errors.As(err, &snooze) {
			w.d.log.Warn("webhook delivery failed; will retry", "subscription", job.Args.SubscriptionID, "attempt", job.Attempt, "err", err)
		}
	}
	return err
}

// errSkip ends a delivery whose subscription is gone or disabled.
var errSkip = errors.New("subscription gone or disabled")

// deliverArgs makes one attempt at a queued (or about to be queued) delivery: an expired
// event is dropped (errExpired), a 410 disables the subscription (errGone).
func (d *Dispatcher) deliverArgs(ctx context.Context, a DeliverArgs) error {
	s, err := d.cfg.Store.SubscriptionGet(ctx, a.SubscriptionID)
	if err != nil {
		d.log.Info("webhook subscription gone; dropping event", "subscription", a.SubscriptionID, "err", err)
		return errSkip
	}
	if s.Disabled {
		return errSkip
	}
	if exp := a.ExpiresAt; !exp.IsZero() && time.Now().After(exp) {
		d.deliveries.WithLabelValues("expired").Inc()
		d.log.Info("webhook event expired before delivery; dropping it", "subscription", s.ID, "event", a.EventID)
		return errExpired
	}
	start := time.Now()
	err = d.Deliver(ctx, s, a.EventID, a.Event)
	d.latency.Observe(time.Since(start).Seconds())
	d.count(err)
	if errors.Is(err, errGone) {
		d.log.Warn("webhook subscriber answered 410; disabling subscription", "subscription", s.ID, "url", s.URL)
		if derr := d.cfg.Store.SubscriptionSetDisabled(ctx, s.ID, true, "410 Gone at "+time.Now().UTC().Format(time.RFC3339)); derr != nil {
			return derr
		}
		_ = d.Reload(ctx)
	}
	return err
}

// Create validates an operator-defined subscription, runs Event Grid's validation handshake
// with its endpoint (see validateEndpoint), stores it and reloads the cache. An endpoint that
// does not answer the handshake is refused with problem.Invalid naming "url".
func (d *Dispatcher) Create(ctx context.Context, s Subscription) (Subscription, error) {
	if err := d.cfg.Guard.CheckURL(ctx, "url", s.URL); err != nil {
		return Subscription{}, err
	}
	if s.MaxEventsPerBatch < 0 || s.MaxEventsPerBatch > MaxEventsPerBatchLimit {
		return Subscription{}, problem.Invalid("maxEventsPerBatch", "%d is not between 1 and %d", s.MaxEventsPerBatch, MaxEventsPerBatchLimit)
	}
	if s.PreferredBatchSizeInKilobytes < 0 || s.PreferredBatchSizeInKilobytes > MaxPreferredBatchSizeKB {
		return Subscription{}, problem.Invalid("preferredBatchSizeInKilobytes", "%d is not between 1 and %d", s.PreferredBatchSizeInKilobytes, MaxPreferredBatchSizeKB)
	}
	if err := d.validateEndpoint(ctx, s); err != nil {
		return Subscription{}, err
	}
	s.ID, s.Source, s.CreatedAt, s.Disabled = uuid.NewString(), "api", time.Now().UTC(), false
	if err := d.cfg.Store.SubscriptionPut(ctx, s); err != nil {
		return Subscription{}, err
	}
	return s, d.Reload(ctx)
}

// List returns every subscription, enabled or not, as stored (not the cache: another node may
// have changed it a moment ago).
func (d *Dispatcher) List(ctx context.Context) ([]Subscription, error) {
	subs, err := d.cfg.Store.SubscriptionList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return subs, nil
}

// Delete removes a subscription (problem.ErrNotFound when there is none) and reloads the
// cache; deliveries already queued for it are dropped when they run.
func (d *Dispatcher) Delete(ctx context.Context, id string) error {
	if err := d.cfg.Store.SubscriptionDelete(ctx, id); err != nil {
		return err
	}
	d.reloadAfterChange(ctx)
	return nil
}

// Enable re-enables a subscription disabled by a 410 answer (problem.ErrNotFound when there
// is none) and reloads the cache, so new events reach it again.
func (d *Dispatcher) Enable(ctx context.Context, id string) error {
	if err := d.cfg.Store.SubscriptionSetDisabled(ctx, id, false, ""); err != nil {
		return err
	}
	d.reloadAfterChange(ctx)
	return nil
}

// reloadAfterChange reloads the cache after a change that is already stored: a failure only
// delays it until the next Refresh.
func (d *Dispatcher) reloadAfterChange(ctx context.Context) {
	if err := d.Reload(ctx); err != nil {
		d.log.Warn("reload webhook subscriptions", "err", err)
	}
}
