package sms

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/sms/receipt"
)

// sender submits one carrier's queued messages. It claims them from the store in batches
// (Store.MessagesClaim: oldest first, one per destination at a time, none another sender
// leases), which leases them to this process for leaseTTL in one committed statement, and
// submits each message at once. Each message's outcome is recorded as soon as its answer
// arrives: the answers that arrive while an outcome commit runs go together in the next one
// (through the shared committer, with the accepted requests and receipts of the moment), and
// each message's in-flight token is returned once its outcome is committed. Tokens thus come
// back message by message, and the sender claims again as soon as a few are free, so the
// carrier's window stays full. Accepting a message wakes its carrier's sender; idle senders
// also look every senderPoll (messages another node accepted, retries that came due).
//
// What a kill -9 can send twice is bounded by the in-flight tokens (Config.InFlight, by
// default the carriers' windows): a message is submitted only while a token is held for it,
// and the token is returned once its outcome is committed. The killed process's leases expire
// (leaseTTL), or end at once when the node starts again (Run: Store.MessagesLeasesRecover), and
// its messages are claimed again. An outcome is recorded only while the message is still
// leased to this process (Tx.MessagesLeased): one whose lease expired and was claimed by
// another sender is left to it.
type sender struct {
	s    *Service
	c    Carrier
	wake chan struct{}
	// wg counts the messages submitted and not yet recorded, and the work recording spawns.
	wg sync.WaitGroup

	mu sync.Mutex
	// answered holds outcomes waiting for the next outcome commit; recorders is how many
	// goroutines commit them now (at most maxRecorders).
	answered  []outcome
	recorders int

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

// claimShare sets the fewest free tokens a sender claims for, as a share of the tokens
// (InFlight/claimShare, at least 1): when every token is out, claims wait for a few answers
// to be recorded rather than claiming message by message.
const claimShare = 8

// maxRecorders is how many outcome commits of one sender run at once: while one commits, the
// answers arriving gather for the next.
const maxRecorders = 2

// leaseTTL is how long a claim leases its messages: longer than a submit (an SMPP response
// timeout, 10 s by default) and an outcome commit (commitTimeout) together. A message whose
// outcome is not recorded within it may be claimed by another sender (and sent twice).
const leaseTTL = time.Minute

func newSender(s *Service, c Carrier) *sender {
	return &sender{s: s, c: c, wake: make(chan struct{}, 1), submits: make(chan func())}
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

// run claims and submits messages until ctx ends, then waits for those in flight to record
// their outcomes.
func (sd *sender) run(ctx context.Context) error {
	defer sd.wg.Wait()
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
	least := min(max(1, cap(sd.s.inflight)/claimShare), maxBatch)
	for {
		if ready != nil && !ready.Ready() {
			if !wait() {
				return nil
			}
			continue
		}
		// A claim takes what the free tokens allow: at least least of them, or all that are
		// free when more are.
		n := sd.s.acquireSome(ctx, least, maxBatch)
		if n == 0 {
			return nil
		}
		batch, err := sd.claim(ctx, n)
		if len(batch) < n {
			sd.s.release(n - len(batch))
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
		sd.submitAll(ctx, batch)
		if len(batch) < n && !wait() {
			return nil
		}
	}
}

// claim takes and leases up to n due messages.
func (sd *sender) claim(ctx context.Context, n int) ([]Queued, error) {
	start := time.Now()
	now := sd.s.cfg.Now()
	batch, err := sd.s.cfg.Store.MessagesClaim(ctx, ClaimParams{Carrier: sd.c.Name(), Now: now, Limit: n, Owner: sd.s.owner, Until: now.Add(leaseTTL)})
	if err != nil || len(batch) == 0 {
		return nil, err
	}
	sd.s.metrics.batchPhase.WithLabelValues("claim").Observe(time.Since(start).Seconds())
	sd.s.metrics.batchSize.Observe(float64(len(batch)))
	return batch, nil
}

// submitAll submits a claimed batch (its caller holds one in-flight token per message), each
// message on its own, its outcome handed to the recorders as its answer arrives.
func (sd *sender) submitAll(ctx context.Context, batch []Queued) {
	s := sd.s
	refused := 0
	for _, q := range batch {
		sd.wg.Add(1)
		// Opt-outs are checked here, as the message is claimed (a STOP that arrived while it
		// waited counts too); keyword replies go whatever the opt-out.
		if q.OptedOut && !q.KeywordReply {
			refused++
			sd.answer(outcome{m: q.Message, err: errOptedOut, details: optedOutDetails})
			continue
		}
		sd.goSubmit(func() {
			start := time.Now()
			o := s.submit(ctx, q.Message, sd.c)
			s.metrics.batchPhase.WithLabelValues("submit").Observe(time.Since(start).Seconds())
			sd.answer(o)
		})
	}
	if refused > 0 {
		s.log.Info("sms not sent: recipient opted out after it was queued", "messages", refused)
	}
}

// answer hands a message's outcome to the recorders, starting one when fewer than
// maxRecorders run.
func (sd *sender) answer(o outcome) {
	sd.mu.Lock()
	sd.answered = append(sd.answered, o)
	start := sd.recorders < maxRecorders
	if start {
		sd.recorders++
	}
	sd.mu.Unlock()
	if start {
		go sd.record()
	}
}

// maxRecord caps the outcomes of one outcome commit.
const maxRecord = 1000

// record commits the answered outcomes, those that arrived meanwhile together, until none is
// left.
func (sd *sender) record() {
	for {
		sd.mu.Lock()
		n := min(len(sd.answered), maxRecord)
		if n == 0 {
			sd.recorders--
			sd.answered = nil
			sd.mu.Unlock()
			return
		}
		outs := sd.answered[:n:n]
		sd.answered = sd.answered[n:]
		sd.mu.Unlock()
		sd.recordOutcomes(outs)
	}
}

// recordOutcomes commits outs (through the shared committer), then returns their tokens.
func (sd *sender) recordOutcomes(outs []outcome) {
	s := sd.s
	defer sd.wg.Add(-len(outs))
	start := time.Now()
	// The outcomes are recorded even when the sender stops (shutdown) while they are out.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var res recorded
	err := s.commit.do(ctx, len(outs), func(tx Tx) error {
		var err error
		res, err = s.recordTx(ctx, tx, outs)
		return err
	})
	s.metrics.batchPhase.WithLabelValues("record").Observe(time.Since(start).Seconds())
	s.release(len(outs))
	sd.poke() // messages queued behind these (same destination) are due now
	if err != nil {
		// The messages stay queued and are claimed again once their leases end (here, at
		// once): those the carrier accepted go twice.
		s.log.Error("recording submitted messages failed", "carrier", sd.c.Name(), "messages", len(outs), "err", err)
		ids := make([]string, len(outs))
		for i, o := range outs {
			ids[i] = o.m.ID
		}
		if err := s.cfg.Store.MessagesUnlease(ctx, s.owner, ids); err != nil {
			s.log.Warn("ending the leases of unrecorded messages failed; they are claimed again when the leases expire", "carrier", sd.c.Name(), "err", err)
		}
		return
	}
	if res.lost > 0 {
		s.log.Warn("sms outcomes not recorded: the messages' leases had expired and another sender took them", "carrier", sd.c.Name(), "messages", res.lost)
	}
	if len(res.keys) > 0 {
		sd.wg.Go(func() { s.retryOrphans(context.Background(), sd.c.Name(), res.keys) })
	}
}

// acquireSome waits for least in-flight tokens, then takes those free up to most, and returns
// how many it took (0 when ctx ended first). Senders acquire one at a time (tmu): two senders
// each holding part of what they wait for could otherwise wait for each other.
func (s *Service) acquireSome(ctx context.Context, least, most int) int {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	n := 0
	for n < least {
		select {
		case s.inflight <- struct{}{}:
			n++
		case <-ctx.Done():
			s.release(n)
			return 0
		}
	}
	for n < most {
		select {
		case s.inflight <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (s *Service) release(n int) {
	for range n {
		<-s.inflight
	}
}

// recorded is what recordTx wrote: the receipt keys of the recorded parts, and how many
// outcomes it left because their messages were no longer leased to this process.
type recorded struct {
	keys []string
	lost int
}

// recordTx writes outcomes of messages still leased to this process (the others are left to
// the sender that leased them since, and counted in lost): sent messages with their parts
// (and the wait for their receipts), permanent refusals, expiries and opt-outs as failed with
// a delivery report, and transient failures (throttling, queue full, timeouts, no bind) held
// back for a doubling backoff (1s up to MaxBackoff) until their validity period ends, their
// leases ended. It returns the receipt keys of the recorded parts.
func (s *Service) recordTx(ctx context.Context, tx Tx, outs []outcome) (recorded, error) {
	ids := make([]string, len(outs))
	for i, o := range outs {
		ids[i] = o.m.ID
	}
	held, err := tx.MessagesLeased(ctx, s.owner, ids)
	if err != nil {
		return recorded{}, err
	}
	if len(held) < len(outs) {
		still := make(map[string]bool, len(held))
		for _, id := range held {
			still[id] = true
		}
		kept := make([]outcome, 0, len(held))
		for _, o := range outs {
			if still[o.m.ID] {
				kept = append(kept, o)
			}
		}
		lost := len(outs) - len(kept)
		res, err := s.recordHeldTx(ctx, tx, kept)
		res.lost = lost
		return res, err
	}
	return s.recordHeldTx(ctx, tx, outs)
}

// recordHeldTx is recordTx of outcomes whose messages this process holds.
func (s *Service) recordHeldTx(ctx context.Context, tx Tx, outs []outcome) (recorded, error) {
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
				return recorded{}, err
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
			return recorded{}, err
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
			return recorded{}, err
		}
		s.metrics.messages.WithLabelValues("retried").Add(float64(len(ids)))
	}
	if err := tx.PartsAdd(ctx, parts); err != nil {
		return recorded{}, err
	}
	if len(waiting) > 0 {
		if err := tx.InsertJob(ctx, ReportTimeoutArgs{MessageIDs: waiting}, &river.InsertOpts{ScheduledAt: deadline}); err != nil {
			return recorded{}, fmt.Errorf("enqueue report timeout: %w", err)
		}
	}
	return recorded{keys: keys}, nil
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
			now := s.cfg.Now()
			batch, err := s.cfg.Store.MessagesClaim(ctx, ClaimParams{Carrier: name, Now: now, Limit: maxBatch, Owner: s.owner, Until: now.Add(leaseTTL)})
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
			if err := s.cfg.Store.SMSTx(ctx, func(tx Tx) error { _, err := s.recordTx(ctx, tx, outs); return err }); err != nil {
				return err
			}
		}
	}
	return nil
}
