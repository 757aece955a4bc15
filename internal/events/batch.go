package events

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// QueueWebhooks is the River queue of Event Grid webhook deliveries (SMS events, policy
// events): apart from the default queue, so a backlog of events never waits behind receipt
// timeouts, and with its own worker count (webhooks.workers). Every node that works jobs must
// run it (internal/app does).
const QueueWebhooks = "webhooks"

// Limits of one delivery job built by Coalesce: the events of one subscription that one
// shared commit published. A job is worked by one worker; its events are posted concurrently.
const (
	maxEventsPerJob = 256
	maxJobBytes     = 256 << 10
)

// QueuedEvent is one more event of a delivery job (DeliverArgs.More).
type QueuedEvent struct {
	// ID is the event's id.
	ID string `json:"id"`
	// Event is the serialised Event Grid event.
	Event json.RawMessage `json:"event"`
}

// events lists every event of the job: the first (EventID, Event) and the More.
func (a DeliverArgs) events() []QueuedEvent {
	out := make([]QueuedEvent, 0, 1+len(a.More))
	out = append(out, QueuedEvent{ID: a.EventID, Event: a.Event})
	return append(out, a.More...)
}

// Coalesce merges the webhook deliveries among jobs (one per event and subscription, as
// PublishTx queues them) into one job per subscription of up to maxEventsPerJob events, in
// the order they were published; other jobs pass unchanged. A domain that commits many events
// in one transaction (internal/sms's shared commits) calls it on the jobs it is about to
// insert, so a burst of inbound messages costs a few jobs, not one per message. Deliveries
// with an expiry (IncomingCall) or another queue are never merged.
func Coalesce(jobs []river.InsertManyParams) []river.InsertManyParams {
	type open struct {
		idx   int // in out
		bytes int
	}
	var out []river.InsertManyParams
	batches := map[string]*open{}
	for _, j := range jobs {
		a, ok := j.Args.(DeliverArgs)
		if !ok || !a.ExpiresAt.IsZero() || len(a.More) > 0 || j.InsertOpts == nil || j.InsertOpts.Queue != QueueWebhooks ||
			!j.InsertOpts.ScheduledAt.IsZero() {
			out = append(out, j)
			continue
		}
		key := fmt.Sprintf("%s|%d|%d", a.SubscriptionID, j.InsertOpts.MaxAttempts, j.InsertOpts.Priority)
		size := len(a.Event) + len(a.EventID) + 16
		if b := batches[key]; b != nil {
			cur := out[b.idx].Args.(DeliverArgs)
			if len(cur.More)+1 < maxEventsPerJob && b.bytes+size <= maxJobBytes {
				cur.More = append(cur.More, QueuedEvent{ID: a.EventID, Event: a.Event})
				out[b.idx].Args = cur
				b.bytes += size
				continue
			}
		}
		batches[key] = &open{idx: len(out), bytes: size}
		out = append(out, j)
	}
	return out
}

// endpoint is the delivery state of one subscriber endpoint (scheme and host): how many
// POSTs and jobs are in flight to it, and its circuit breaker.
type endpoint struct {
	posts chan struct{} // a slot per POST in flight (Config.Concurrency)

	mu        sync.Mutex
	jobs      int // delivery jobs in flight on this node
	fails     int // consecutive failed POSTs
	openUntil time.Time
	cooldown  time.Duration
	probing   bool
	latency   time.Duration // moving average of its POSTs' latency
	lastErr   string        // the last failure that counted toward the circuit
}

// slowPOST is the average POST latency above which an endpoint is slow: its jobs may then
// hold only their share of the workers. A fast endpoint with free POST slots frees its
// workers within milliseconds, so its jobs run without that limit (a snooze costs a write and
// a delay).
const slowPOST = 200 * time.Millisecond

// breakerThreshold is how many consecutive POSTs failing as an unreachable or overloaded
// endpoint does (unavailable) open its circuit: then its jobs fail at once (retried with
// their backoff) instead of each holding a worker for the client timeout, and after a
// cooldown (1 s, doubling up to MaxBackoff while the endpoint keeps failing) one job probes
// it.
const breakerThreshold = 5

// unavailable reports whether a failed POST says the endpoint is down or overloaded: no
// answer (refused, reset, timed out), 429, 502, 503 or 504. Another answer (a 500, a 400) is
// about the events and comes back at once: it fails them, not the endpoint.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, errGone) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		switch se.code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return true
}

// errCircuitOpen fails a delivery job without a POST while its endpoint's circuit is open.
var errCircuitOpen = errors.New("subscriber endpoint failing; circuit open")

func endpointKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + u.Host
}

func (d *Dispatcher) endpoint(raw string) *endpoint {
	key := endpointKey(raw)
	d.epMu.Lock()
	defer d.epMu.Unlock()
	ep := d.endpoints[key]
	if ep == nil {
		ep = &endpoint{posts: make(chan struct{}, d.cfg.Concurrency)}
		d.endpoints[key] = ep
	}
	return ep
}

// admit lets a job start on the endpoint: a snooze when the endpoint is slow, failing or has
// every POST slot taken and already holds its share of the workers (jobCap), errCircuitOpen
// while its circuit is open.
// probe is set for the one job that tests a circuit whose cooldown ended.
func (ep *endpoint) admit(now time.Time, jobCap int) (probe bool, snooze time.Duration, err error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.fails >= breakerThreshold {
		if now.Before(ep.openUntil) || ep.probing {
			// The job's error names what the endpoint last answered (the console shows it).
			return false, 0, fmt.Errorf("%w (last failure: %s)", errCircuitOpen, ep.lastErr)
		}
		ep.probing, probe = true, true
	}
	busy := ep.latency > slowPOST || ep.fails > 0 || len(ep.posts) == cap(ep.posts)
	if ep.jobs >= jobCap && !probe && busy {
		return false, 100*time.Millisecond + rand.N(400*time.Millisecond), nil
	}
	ep.jobs++
	return probe, 0, nil
}

func (ep *endpoint) leave(probe bool) {
	ep.mu.Lock()
	ep.jobs--
	if probe {
		ep.probing = false
	}
	ep.mu.Unlock()
}

// open reports whether the circuit is open (no new POST should start).
func (ep *endpoint) open(now time.Time) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.fails >= breakerThreshold && now.Before(ep.openUntil)
}

// record notes one POST's outcome (err nil for a success); the unavailable failure that
// reaches breakerThreshold, or a failed probe, opens the circuit for a cooldown doubling from
// 1 s up to maxCooldown.
func (ep *endpoint) record(err error, probe bool, took time.Duration, now time.Time, maxCooldown time.Duration) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.latency += (took - ep.latency) / 8
	if !unavailable(err) {
		ep.fails, ep.cooldown = 0, 0
		return
	}
	ep.fails++
	ep.lastErr = err.Error()
	if ep.fails == breakerThreshold || (probe && ep.fails > breakerThreshold) {
		ep.cooldown = min(max(2*ep.cooldown, time.Second), maxCooldown)
		ep.openUntil = now.Add(ep.cooldown)
	}
}

// jobBudget is how long a delivery job keeps starting POSTs; what is left then is snoozed
// (the job resumes at once, on any node, without spending an attempt), so a job ends well
// within the runner's job timeout and is never rescued while it still runs.
const jobBudget = 15 * time.Second

// post is one POST of a delivery job: the indices (in the job's events) it carries.
type post []int

// posts groups the events still to deliver into POSTs: one event each (Event Grid's default,
// maxEventsPerBatch 1), or arrays of up to s.MaxEventsPerBatch events and about
// s.PreferredBatchSizeInKilobytes (an event larger than that goes alone).
func posts(s Subscription, evs []QueuedEvent, todo []int) []post {
	var out []post
	if s.MaxEventsPerBatch <= 1 {
		for _, i := range todo {
			out = append(out, post{i})
		}
		return out
	}
	limit := s.PreferredBatchSizeInKilobytes
	if limit <= 0 {
		limit = DefaultPreferredBatchSizeKB
	}
	var cur post
	size := 0
	for _, i := range todo {
		n := len(evs[i].Event) + 1
		if len(cur) > 0 && (len(cur) >= s.MaxEventsPerBatch || size+n > limit<<10) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// body is the JSON array of a POST's events, and its webhook-id: the event's id for one
// event, a digest of the ids for several (stable across retries of the same POST).
func (p post) body(evs []QueuedEvent) (id string, b []byte) {
	size := 2
	for _, i := range p {
		size += len(evs[i].Event) + 1
	}
	b = make([]byte, 0, size)
	b = append(b, '[')
	for k, i := range p {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, evs[i].Event...)
	}
	b = append(b, ']')
	if len(p) == 1 {
		return evs[p[0]].ID, b
	}
	h := sha256.New()
	for _, i := range p {
		h.Write([]byte(evs[i].ID))
		h.Write([]byte{0})
	}
	return "batch-" + hex.EncodeToString(h.Sum(nil)[:16]), b
}

// deliverJob makes one attempt at a delivery job: every event not yet delivered (done, the
// indices earlier attempts delivered) is posted, concurrently up to the endpoint's
// Concurrency. It returns the indices delivered by now and nil when all are; errSkip when the
// subscription is gone or disabled; errGone after a 410 (the subscription is then
// disabled); errCircuitOpen; errBudget when it stopped starting POSTs at jobBudget; or the
// first failure.
func (d *Dispatcher) deliverJob(ctx context.Context, a DeliverArgs, done []int) ([]int, error) {
	s, err := d.cfg.Store.SubscriptionGet(ctx, a.SubscriptionID)
	if err != nil {
		d.log.Info("webhook subscription gone; dropping events", "subscription", a.SubscriptionID, "err", err)
		return done, errSkip
	}
	if s.Disabled {
		return done, errSkip
	}
	evs := a.events()
	delivered := make([]bool, len(evs))
	for _, i := range done {
		if i >= 0 && i < len(evs) {
			delivered[i] = true
		}
	}
	var todo []int
	for i := range evs {
		if !delivered[i] {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return done, nil
	}
	ep := d.endpoint(s.URL)
	probe, snooze, err := ep.admit(time.Now(), d.jobCap)
	if err != nil {
		return done, err
	}
	if snooze > 0 {
		return done, river.JobSnooze(snooze)
	}
	defer ep.leave(probe)

	var (
		mu       sync.Mutex
		firstErr error
		gone     bool
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(jobBudget)
	ps := posts(s, evs, todo)
	for k, p := range ps {
		now := time.Now()
		if now.After(deadline) {
			mu.Lock()
			if firstErr == nil {
				firstErr = errBudget
			}
			mu.Unlock()
			break
		}
		acquired := false
		select {
		case ep.posts <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if !acquired {
			break
		}
		mu.Lock()
		stop := gone
		mu.Unlock()
		if stop || ep.open(time.Now()) { // checked once the slot is ours: the POSTs before it have been counted
			<-ep.posts
			break
		}
		wg.Add(1)
		work := func() {
			defer wg.Done()
			defer func() { <-ep.posts }()
			id, body := p.body(evs)
			start := time.Now()
			err := d.post(ctx, s, id, body)
			d.latency.Observe(time.Since(start).Seconds())
			d.count(err)
			ep.record(err, probe && k == 0, time.Since(start), time.Now(), d.cfg.MaxBackoff)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				for _, i := range p {
					delivered[i] = true
				}
			case errors.Is(err, errGone):
				gone = true
			case firstErr == nil:
				firstErr = err
			}
		}
		if probe && k == 0 {
			work() // the probe goes alone: the others only if the endpoint answers again
			mu.Lock()
			stop := gone
			mu.Unlock()
			if stop || ep.open(time.Now()) {
				break
			}
			continue
		}
		go work()
	}
	wg.Wait()
	done = done[:0:0]
	all := true
	for i, ok := range delivered {
		if ok {
			done = append(done, i)
		} else {
			all = false
		}
	}
	switch {
	case gone:
		d.log.Warn("webhook subscriber answered 410; disabling subscription", "subscription", s.ID, "url", s.URL)
		if derr := d.cfg.Store.SubscriptionSetDisabled(context.WithoutCancel(ctx), s.ID, true, "410 Gone at "+time.Now().UTC().Format(time.RFC3339)); derr != nil {
			return done, derr
		}
		_ = d.Reload(ctx)
		return done, errGone
	case all:
		return done, nil
	case firstErr != nil:
		return done, firstErr
	case ctx.Err() != nil:
		return done, ctx.Err()
	}
	return done, errCircuitOpen
}

// errBudget ends an attempt that ran out of jobBudget before every POST started.
var errBudget = errors.New("delivery job ran out of time; resuming")

// count adds one POST's outcome to the delivery metrics.
func (d *Dispatcher) count(err error) {
	switch {
	case err == nil:
		d.deliveries.WithLabelValues("ok").Inc()
	case errors.Is(err, errGone):
		d.deliveries.WithLabelValues("gone").Inc()
	case errors.Is(err, ErrBlockedAddress):
		d.deliveries.WithLabelValues("blocked").Inc()
	default:
		d.deliveries.WithLabelValues("retry").Inc()
	}
}
