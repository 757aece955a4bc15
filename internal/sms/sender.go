package sms

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/sms/receipt"
)

// sender submits one carrier's queued messages: it claims them from the store in batches
// (Store.MessagesClaim: oldest first, one per destination at a time, none another node holds),
// submits every message of a batch at once so the carrier's window stays full, and commits
// the batch's outcomes together. Accepting a message wakes its carrier's sender; idle senders
// also look every senderPoll (messages another node accepted, retries that came due).
//
// What a kill -9 can send twice is bounded by the in-flight tokens (Config.InFlight, by
// default the carriers' windows): a message is submitted only while its batch holds a token
// for it, and the token is returned once its outcome is committed.
type sender struct {
	s    *Service
	c    Carrier
	wake chan struct{}
	// slots bounds the batches out at once (each holds a store connection on PostgreSQL).
	slots chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // claimed here, outcome not committed yet

	// submits is worked by goroutines that submit one message at a time and wait for its
	// answer, started as needed (up to one per in-flight token) and ended after workerIdle
	// without work: a goroutine per message grew a fresh stack every time.
	submits chan func()
	workers int // started; under mu
}

// senderPoll is how often an idle sender looks for due messages it was not told about.
const senderPoll = 250 * time.Millisecond

// maxBatch caps the messages of one claim.
const maxBatch = 500

// tokenShares is how many batches share the in-flight tokens; maxBatches caps the batches one
// sender has claimed at once (the others wait for tokens).
const (
	tokenShares = 4
	maxBatches  = tokenShares + 2
)

func newSender(s *Service, c Carrier) *sender {
	return &sender{s: s, c: c, wake: make(chan struct{}, 1), slots: make(chan struct{}, maxBatches), inflight: map[string]bool{},
		submits: make(chan func())}
}

// workerIdle is how long an idle submit worker waits for work before it ends.
const workerIdle = 200 * time.Millisecond

// goSubmit runs fn on a free submit worker, or on a new one (its own goroutine past the cap,
// which the in-flight tokens keep from happening).
func (sd *sender) goSubmit(fn func()) {
	select {
	case sd.submits <- fn:
		return
	default:
	}
	sd.mu.Lock()
	start := sd.workers < cap(sd.s.inflight)
	if start {
		sd.workers++
	}
	sd.mu.Unlock()
	if !start {
		go fn()
		return
	}
	go func() {
		fn()
		idle := time.NewTimer(workerIdle)
		defer idle.Stop()
		for {
			select {
			case f := <-sd.submits:
				f()
				idle.Reset(workerIdle)
			case <-idle.C:
				sd.mu.Lock()
				sd.workers--
				sd.mu.Unlock()
				return
			}
		}
	}()
}

// poke wakes the sender if it waits.
func (sd *sender) poke() {
	select {
	case sd.wake <- struct{}{}:
	default:
	}
}

// wakeSender pokes the sender of carrier.
func (s *Service) wakeSender(carrier string) {
	if sd := s.senders[carrier]; sd != nil {
		sd.poke()
	}
}

// run claims and submits batches until ctx ends, then waits for the batches in flight to
// record their outcomes.
func (sd *sender) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(senderPoll)
	defer poll.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-sd.wake:
		case <-poll.C:
		}
		return true
	}
	ready, _ := sd.c.(Readier)
	for {
		if ready != nil && !ready.Ready() {
			if !wait() {
				return nil
			}
			continue
		}
		// A batch holds its tokens until its slowest message is answered and the batch is
		// committed, so several smaller batches overlap to keep the window full: a quarter of
		// the tokens each. Up to two more batches are claimed ahead and wait for tokens, so
		// that the claim's round trips are not spent holding them.
		select {
		case sd.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		want := min(max(1, cap(sd.s.inflight)/tokenShares), maxBatch)
		batch, claim, err := sd.claim(ctx, want)
		if len(batch) == 0 {
			<-sd.slots
		}
		if err != nil {
			if ctx.Err() == nil {
				sd.s.log.Error("claiming queued messages failed", "carrier", sd.c.Name(), "err", err)
			}
			if !wait() {
				return nil
			}
			continue
		}
		if len(batch) > 0 {
			wg.Go(func() {
				defer func() { <-sd.slots }()
				if !sd.s.acquireAll(ctx, len(batch)) {
					claim.Release()
					sd.forget(batch)
					return
				}
				sd.process(ctx, batch, claim)
				sd.poke() // messages queued behind these (same destination) are due now
			})
		}
		if len(batch) < want && !wait() {
			return nil
		}
	}
}

// forget drops a batch from the messages in flight here.
func (sd *sender) forget(batch []Queued) {
	sd.mu.Lock()
	for _, q := range batch {
		delete(sd.inflight, q.ID)
	}
	sd.mu.Unlock()
}

// claim takes up to n due messages, marking them in flight here.
func (sd *sender) claim(ctx context.Context, n int) ([]Queued, Claim, error) {
	sd.mu.Lock()
	exclude := make([]string, 0, len(sd.inflight))
	for id := range sd.inflight {
		exclude = append(exclude, id)
	}
	sd.mu.Unlock()
	start := time.Now()
	batch, claim, err := sd.s.cfg.Store.MessagesClaim(ctx, ClaimParams{Carrier: sd.c.Name(), Now: sd.s.cfg.Now(), Limit: n, Exclude: exclude})
	if err != nil || len(batch) == 0 {
		return nil, nil, err
	}
	sd.s.metrics.batchPhase.WithLabelValues("claim").Observe(time.Since(start).Seconds())
	sd.s.metrics.batchSize.Observe(float64(len(batch)))
	sd.mu.Lock()
	for _, q := range batch {
		sd.inflight[q.ID] = true
	}
	sd.mu.Unlock()
	return batch, claim, nil
}

// process submits a claimed batch (its caller took one in-flight token per message) and
// commits the outcomes, returning the tokens once they are committed.
func (sd *sender) process(ctx context.Context, batch []Queued, claim Claim) {
	s := sd.s
	done := func() {
		sd.forget(batch)
		s.release(len(batch))
	}
	outs := make([]outcome, len(batch))
	start := time.Now()
	var wg sync.WaitGroup
	refused := 0
	for i, q := range batch {
		// Opt-outs are checked here, as the message is claimed (a STOP that arrived while it
		// waited counts too); keyword replies go whatever the opt-out.
		if q.OptedOut && !q.KeywordReply {
			outs[i] = outcome{m: q.Message, err: errOptedOut, details: optedOutDetails}
			refused++
			continue
		}
		wg.Add(1)
		sd.goSubmit(func() {
			defer wg.Done()
			outs[i] = s.submit(ctx, q.Message, sd.c)
		})
	}
	wg.Wait()
	s.metrics.batchPhase.WithLabelValues("submit").Observe(time.Since(start).Seconds())
	start = time.Now()
	if refused > 0 {
		s.log.Info("sms not sent: recipient opted out after it was queued", "messages", refused)
	}
	// The outcomes are recorded even when ctx ended (shutdown) while the batch was out.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	var keys []string
	err := claim.Finish(rctx, func(tx Tx) error {
		var err error
		keys, err = s.recordTx(rctx, tx, outs)
		return err
	})
	s.metrics.batchPhase.WithLabelValues("record").Observe(time.Since(start).Seconds())
	done()
	if err != nil {
		// The messages stay queued and are claimed again: those the carrier accepted go twice.
		s.log.Error("recording submitted messages failed", "carrier", sd.c.Name(), "messages", len(batch), "err", err)
		return
	}
	s.retryOrphans(rctx, sd.c.Name(), keys)
}

// acquireAll takes n in-flight tokens, waiting for them; false when ctx ended first. Batches
// take their tokens one batch at a time: two waiting batches holding part of what each needs
// could otherwise wait for each other.
func (s *Service) acquireAll(ctx context.Context, n int) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	for i := range n {
		select {
		case s.inflight <- struct{}{}:
		case <-ctx.Done():
			s.release(i)
			return false
		}
	}
	return true
}

func (s *Service) release(n int) {
	for range n {
		<-s.inflight
	}
}

// recordTx writes a batch's outcomes: sent messages with their parts (and the wait for their
// receipts), permanent refusals, expiries and opt-outs as failed with a delivery report, and
// transient failures (throttling, queue full, timeouts, no bind) held back for a doubling
// backoff (1s up to MaxBackoff) until their validity period ends. It returns the receipt
// keys of the recorded parts.
func (s *Service) recordTx(ctx context.Context, tx Tx, outs []outcome) ([]string, error) {
	at := s.cfg.Now().UTC()
	type group struct{ segments, attempts int }
	sent := map[group][]string{}
	retry := map[int][]string{}
	byID := make(map[string]outcome, len(outs))
	for _, o := range outs {
		attempts := o.m.Attempts + 1
		switch {
		case o.err == nil:
			g := group{o.res.Segments, attempts}
			sent[g] = append(sent[g], o.m.ID)
			byID[o.m.ID] = o
		case o.details == "":
			retry[attempts] = append(retry[attempts], o.m.ID)
		default:
			if err := s.failTx(ctx, tx, o.m.ID, o.details, at); err != nil {
				return nil, err
			}
		}
	}
	var keys []string
	var parts []Part
	var waiting []string
	var deadline time.Time
	for g, ids := range sent {
		moved, err := tx.MessagesMarkSent(ctx, ids, g.segments, g.attempts, at)
		if err != nil {
			return nil, err
		}
		s.metrics.messages.WithLabelValues("sent").Add(float64(len(moved)))
		for _, id := range moved {
			o := byID[id]
			for i, cid := range o.res.CarrierIDs {
				k := receipt.Key(cid)
				keys = append(keys, k)
				parts = append(parts, Part{MessageID: o.m.ID, Seq: i + 1, Carrier: o.m.Carrier, Key: k})
			}
			if o.m.DeliveryReport {
				waiting = append(waiting, o.m.ID)
				if d := o.m.CreatedAt.Add(s.validity(o.m)); d.After(deadline) {
					deadline = d
				}
			}
		}
	}
	for attempts, ids := range retry {
		backoff := min(time.Second<<min(attempts-1, 20), s.cfg.MaxBackoff)
		if err := tx.MessagesRetry(ctx, ids, attempts, at.Add(backoff), at); err != nil {
			return nil, err
		}
		s.metrics.messages.WithLabelValues("retried").Add(float64(len(ids)))
	}
	if err := tx.PartsAdd(ctx, parts); err != nil {
		return nil, err
	}
	if len(waiting) > 0 {
		if err := tx.InsertJob(ctx, ReportTimeoutArgs{MessageIDs: waiting}, &river.InsertOpts{ScheduledAt: deadline}); err != nil {
			return nil, fmt.Errorf("enqueue report timeout: %w", err)
		}
	}
	return keys, nil
}

// strayPoll is how often queued messages of carriers no longer configured are looked for.
const strayPoll = time.Minute

// failStrays fails, with a delivery report, the queued messages of carriers that are not (or
// no longer) configured (sms.carriers changed while they waited), at once and every
// strayPoll until ctx ends.
func (s *Service) failStrays(ctx context.Context) error {
	t := time.NewTicker(strayPoll)
	defer t.Stop()
	for {
		if err := s.failStraysOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("failing messages of unconfigured carriers failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Service) failStraysOnce(ctx context.Context) error {
	carriers, err := s.cfg.Store.QueuedCarriers(ctx)
	if err != nil {
		return err
	}
	for _, name := range carriers {
		if s.carriers[name] != nil {
			continue
		}
		details := fmt.Sprintf("No SMS carrier %q is configured.", name)
		for {
			batch, claim, err := s.cfg.Store.MessagesClaim(ctx, ClaimParams{Carrier: name, Now: s.cfg.Now(), Limit: maxBatch})
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			outs := make([]outcome, len(batch))
			for i, q := range batch {
				outs[i] = outcome{m: q.Message, err: errNoCarrier, details: details}
			}
			s.log.Warn("sms not sent: its carrier is not configured", "carrier", name, "messages", len(batch))
			if err := claim.Finish(ctx, func(tx Tx) error { _, err := s.recordTx(ctx, tx, outs); return err }); err != nil {
				return err
			}
		}
	}
	return nil
}
