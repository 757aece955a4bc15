package sms

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/sms/receipt"
)

// sender submits one carrier's queued messages. A claimer takes them from the store in batches
// (Store.MessagesClaim: oldest first, one per destination at a time, none another sender
// leases), which leases them to this process for leaseTTL in one committed statement, ahead
// of need: claimed messages wait in a small buffer (ahead) until an in-flight token is free.
// A dispatcher takes them in order, one token each, and submits each at once. Each message's
// outcome is recorded as soon as its answer arrives: the answers that arrive while an outcome
// commit runs go together in the next one, and each message's token is returned once its
// outcome is committed. Tokens thus come back message by message and are reused at once on
// messages already claimed, so neither the claim's round trip nor the slowest answer of a
// batch keeps the carrier's window from being full. Accepting a message wakes its carrier's
// sender; idle senders also look every senderPoll (messages another node accepted, retries
// that came due).
//
// What a kill -9 can send twice is bounded by the in-flight tokens (Config.InFlight, by
// default the carriers' windows): a message is submitted only while a token is held for it,
// and the token is returned once its outcome is committed. Messages claimed ahead are leased
// but not submitted: they are sent once, later. The killed process's leases expire (leaseTTL),
// or end at once when the node starts again (Run: Store.MessagesLeasesRecover), and its
// messages are claimed again. An outcome is recorded only while the message is still leased to
// this process (Tx.MessagesLeased): one whose lease expired and was claimed by another sender
// is left to it.
type sender struct {
	s    *Service
	c    Carrier
	wake chan struct{}
	// ahead holds the messages claimed and not yet submitted, in claim order; taken signals
	// the claimer that the dispatcher took some.
	ahead chan claimed
	taken chan struct{}
	// wg counts the messages taken from ahead and not yet recorded, and the work recording
	// spawns.
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

// claimed is a message claimed ahead, with when its lease began.
type claimed struct {
	q  Queued
	at time.Time
}

// senderPoll is how often an idle sender looks for due messages it was not told about.
const senderPoll = 250 * time.Millisecond

// maxBatch caps the messages of one claim, and of the buffer claimed ahead (twice the
// in-flight tokens: a claim's round trip is hidden while the window takes up to that many).
const maxBatch = 500

// claimShare sets the fewest messages a claim asks for, as a share of the buffer claimed ahead
// (at least 1): the claimer waits for that much room rather than claiming message by message.
const claimShare = 4

// maxRecorders is how many outcome commits of one sender run at once: while one commits, the
// answers arriving gather for the next. One: two at once halved each commit (14 messages
// against 28 at 1 recipient per request on PostgreSQL) and cost PostgreSQL a sixth more CPU
// per message, for no shorter outcome commit.
const maxRecorders = 1

// leaseTTL is how long a claim leases its messages: longer than a wait in the buffer claimed
// ahead (at most leaseTTL/2: older ones are given back unsent), a submit (an SMPP response
// timeout, 10 s by default) and an outcome commit (commitTimeout) together. A message whose
// outcome is not recorded within it may be claimed by another sender (and sent twice).
const leaseTTL = 90 * time.Second

func newSender(s *Service, c Carrier) *sender {
	ahead := min(max(2*cap(s.inflight), 1), maxBatch)
	return &sender{s: s, c: c, wake: make(chan struct{}, 1), ahead: make(chan claimed, ahead), taken: make(chan struct{}, 1),
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

// run claims messages ahead and submits them until ctx ends, then gives back the leases of
// those claimed and not submitted and waits for those in flight to record their outcomes.
func (sd *sender) run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { sd.claimer(ctx) })
	left := sd.dispatch(ctx)
	wg.Wait()
	sd.wg.Wait()
	for len(sd.ahead) > 0 {
		left = append(left, (<-sd.ahead).q.ID)
	}
	if len(left) > 0 {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := sd.s.cfg.Store.MessagesUnlease(uctx, sd.s.owner, left); err != nil {
			sd.s.log.Warn("giving back messages claimed and not sent failed; they go once their leases expire", "carrier", sd.c.Name(), "messages", len(left), "err", err)
		}
	}
	return nil
}

// claimer fills the buffer of messages claimed ahead until ctx ends: whenever it has room for
// least messages (or is empty), it claims that many.
func (sd *sender) claimer(ctx context.Context) {
	poll := time.NewTicker(senderPoll)
	defer poll.Stop()
	wait := func(taken bool) bool {
		var tc <-chan struct{}
		if taken {
			tc = sd.taken
		}
		select {
		case <-ctx.Done():
			return false
		case <-sd.wake:
		case <-tc:
		case <-poll.C:
		}
		return true
	}
	ready, _ := sd.c.(Readier)
	least := max(1, cap(sd.ahead)/claimShare)
	for {
		if ready != nil && !ready.Ready() {
			if !wait(false) {
				return
			}
			continue
		}
		room := cap(sd.ahead) - len(sd.ahead)
		if room < least && len(sd.ahead) > 0 {
			// Full enough: wait for the dispatcher to take some.
			if !wait(true) {
				return
			}
			continue
		}
		batch, err := sd.claim(ctx, room)
		if err != nil {
			if ctx.Err() == nil {
				sd.s.log.Error("claiming queued messages failed", "carrier", sd.c.Name(), "err", err)
			}
			if !wait(false) {
				return
			}
			continue
		}
		now := time.Now()
		for _, q := range batch {
			sd.ahead <- claimed{q: q, at: now} // room was free; only the dispatcher takes
		}
		if len(batch) < room && !wait(false) {
			return
		}
	}
}

// dispatch submits the messages claimed ahead, in order, each once an in-flight token is free,
// until ctx ends, and returns the message it had taken and not submitted then, if any.
func (sd *sender) dispatch(ctx context.Context) []string {
	s := sd.s
	for {
		var c claimed
		select {
		case <-ctx.Done():
			return nil
		case c = <-sd.ahead:
		}
		select {
		case sd.taken <- struct{}{}:
		default:
		}
		if time.Since(c.at) > leaseTTL/2 {
			// Waited too long for a token (a carrier that does not answer): its lease may end
			// before its outcome is recorded. It goes back to the queue unsent.
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = s.cfg.Store.MessagesUnlease(uctx, s.owner, []string{c.q.ID})
			cancel()
			continue
		}
		select {
		case <-ctx.Done():
			return []string{c.q.ID}
		case s.inflight <- struct{}{}:
		}
		sd.send(ctx, c.q)
	}
}

// send submits q, for which its caller took an in-flight token, and hands its outcome to the
// recorders.
func (sd *sender) send(ctx context.Context, q Queued) {
	s := sd.s
	sd.wg.Add(1)
	// Opt-outs are checked here, as the message is claimed (a STOP that arrived while it
	// waited counts too); keyword replies go whatever the opt-out.
	if q.OptedOut && !q.KeywordReply {
		s.log.Info("sms not sent: recipient opted out after it was queued", "message_id", q.ID)
		sd.answer(outcome{m: q.Message, err: errOptedOut, details: optedOutDetails})
		return
	}
	sd.goSubmit(func() {
		start := time.Now()
		o := s.submit(ctx, q.Message, sd.c)
		s.metrics.batchPhase.WithLabelValues("submit").Observe(time.Since(start).Seconds())
		sd.answer(o)
	})
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

// recordOutcomes commits outs (alone when the store allows it, all were sent and none waits for
// a report; else through the outcomes committer), then returns their tokens.
func (sd *sender) recordOutcomes(outs []outcome) {
	s := sd.s
	defer sd.wg.Add(-len(outs))
	start := time.Now()
	// The outcomes are recorded even when the sender stops (shutdown) while they are out.
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	var res recorded
	var err error
	if s.recordAlone && sentAlone(outs) {
		res, err = s.recordSent(ctx, outs)
	} else {
		err = s.outcomes.do(ctx, len(outs), func(tx Tx) error {
			var err error
			res, err = s.recordTx(ctx, tx, outs)
			return err
		})
	}
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

// sentAlone reports whether outs can be recorded by Store.MessagesSentAlone: all were
// accepted by the carrier, and none waits for a delivery report (whose timeout is a job
// enqueued in the outcome's transaction).
func sentAlone(outs []outcome) bool {
	for _, o := range outs {
		if o.err != nil || o.m.DeliveryReport {
			return false
		}
	}
	return true
}

// recordSent records outs, which sentAlone accepts, in one step of their own: on PostgreSQL
// one statement, rather than a shared transaction's BEGIN, statement and COMMIT round trips,
// each waiting for a busy database's turn while the messages' tokens are held.
func (s *Service) recordSent(ctx context.Context, outs []outcome) (recorded, error) {
	p, byID := s.sentParams(outs)
	moved, err := s.cfg.Store.MessagesSentAlone(ctx, p)
	if err != nil {
		return recorded{}, err
	}
	res, _, _ := s.movedOf(moved, byID, len(p.Sent))
	return res, nil
}

// sentParams are the SentParams of outs' accepted messages, which it also returns by id.
func (s *Service) sentParams(outs []outcome) (SentParams, map[string]outcome) {
	p := SentParams{Owner: s.owner, At: s.cfg.Now().UTC()}
	byID := make(map[string]outcome, len(outs))
	for _, o := range outs {
		if o.err != nil {
			continue
		}
		p.Sent = append(p.Sent, SentMessage{ID: o.m.ID, Segments: o.res.Segments, Attempts: o.m.Attempts + 1})
		byID[o.m.ID] = o
		if !o.m.DeliveryReport {
			// Submitted with registered_delivery 0: no receipt is asked, so none is matched
			// (as Kannel keeps DLR entries only under a dlr-mask). Most messages are these, and
			// their part rows cost PostgreSQL a third of the sent statement's WAL records.
			continue
		}
		for i, cid := range o.res.CarrierIDs {
			p.Parts = append(p.Parts, Part{MessageID: o.m.ID, Seq: i + 1, Carrier: o.m.Carrier, Key: receipt.Key(cid)})
		}
	}
	return p, byID
}

// movedOf counts the messages the store moved to sent out of sent and returns what was
// recorded (the receipt keys of those that asked for a report, those lost to another sender),
// and the ids of those that wait for a delivery report with the latest of their validity
// ends.
func (s *Service) movedOf(moved []string, byID map[string]outcome, sent int) (recorded, []string, time.Time) {
	s.metrics.messages.WithLabelValues("sent").Add(float64(len(moved)))
	res := recorded{lost: sent - len(moved)}
	var waiting []string
	var deadline time.Time
	for _, id := range moved {
		o := byID[id]
		if !o.m.DeliveryReport {
			continue
		}
		for _, cid := range o.res.CarrierIDs {
			res.keys = append(res.keys, receipt.Key(cid))
		}
		waiting = append(waiting, o.m.ID)
		if d := o.m.CreatedAt.Add(s.validity(o.m)); d.After(deadline) {
			deadline = d
		}
	}
	return res, waiting, deadline
}

// recordTx writes outcomes of messages still leased to this process (the others are left to
// the sender that leased them since, and counted in lost): sent messages with their parts
// (and the wait for their receipts) in one statement (Tx.MessagesSent), permanent refusals,
// expiries and opt-outs as failed with a delivery report, and transient failures (throttling,
// queue full, timeouts, no bind) held back for a doubling backoff (1s up to MaxBackoff) until
// their validity period ends, their leases ended. It returns the receipt keys of the recorded
// parts.
func (s *Service) recordTx(ctx context.Context, tx Tx, outs []outcome) (recorded, error) {
	p, byID := s.sentParams(outs)
	at := p.At
	var res recorded
	var others []outcome
	for _, o := range outs {
		if o.err != nil {
			others = append(others, o)
		}
	}
	var waiting []string
	var deadline time.Time
	if len(p.Sent) > 0 {
		moved, err := tx.MessagesSent(ctx, p)
		if err != nil {
			return recorded{}, err
		}
		res, waiting, deadline = s.movedOf(moved, byID, len(p.Sent))
	}
	if len(others) > 0 {
		ids := make([]string, len(others))
		for i, o := range others {
			ids[i] = o.m.ID
		}
		held, err := tx.MessagesLeased(ctx, s.owner, ids)
		if err != nil {
			return recorded{}, err
		}
		res.lost += len(others) - len(held)
		still := make(map[string]bool, len(held))
		for _, id := range held {
			still[id] = true
		}
		retry := map[int][]string{}
		for _, o := range others {
			switch {
			case !still[o.m.ID]:
			case o.details == "":
				retry[o.m.Attempts+1] = append(retry[o.m.Attempts+1], o.m.ID)
			default:
				if err := s.failTx(ctx, tx, o.m.ID, o.details, at); err != nil {
					return recorded{}, err
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
	}
	if len(waiting) > 0 {
		if err := tx.InsertJob(ctx, ReportTimeoutArgs{MessageIDs: waiting}, &river.InsertOpts{ScheduledAt: deadline}); err != nil {
			return recorded{}, fmt.Errorf("enqueue report timeout: %w", err)
		}
	}
	return res, nil
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
