package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms/receipt"
)

var _ CarrierHandler = (*Service)(nil)

// orphan is a receipt whose part is not recorded yet: SMSCs may send the receipt before the
// send worker has stored the submit_sm_resp id, or to another node.
type orphan struct {
	r     Receipt
	first time.Time
	// next is when receiptRetries tries it again: one second after it was held, then after
	// twice the wait before (at most orphanMaxWait). A receipt for a message that asked for
	// none (its parts are not kept) is tried 16 times in its ten minutes, not six hundred.
	next time.Time
	wait time.Duration
}

const (
	orphanTTL     = 10 * time.Minute
	orphanMax     = 100000
	orphanMaxWait = time.Minute
)

// HandleReceipt implements CarrierHandler: it matches the receipt to a message part
// (case-, leading-zero-, hex/decimal-insensitively), records the part's final state, and
// when every part has one, ends the message as delivered or failed and publishes its
// delivery report. Receipts for unknown ids are held and retried for a while.
func (s *Service) HandleReceipt(ctx context.Context, r Receipt) error {
	found, err := s.applyReceipt(ctx, r)
	if err != nil {
		return err
	}
	if found {
		s.metrics.receipts.WithLabelValues("matched").Inc()
	} else {
		s.metrics.receipts.WithLabelValues("held").Inc()
		s.hold(orphan{r: r, first: s.cfg.Now()})
	}
	return nil
}

// pendingReceipt is a receipt waiting in a shared transaction, and whether it matched a part.
type pendingReceipt struct {
	r     Receipt
	found bool
}

// applyReceipt records r in a shared transaction (committer), together with the other
// receipts that arrived meanwhile (applyReceiptsTx), and reports whether it matched a part.
func (s *Service) applyReceipt(ctx context.Context, r Receipt) (bool, error) {
	found, err := s.applyReceipts(ctx, []Receipt{r})
	return err == nil && found[0], err
}

// applyReceipts records rs (held receipts, retried together) in one shared transaction and
// reports which matched a part.
func (s *Service) applyReceipts(ctx context.Context, rs []Receipt) ([]bool, error) {
	prs := make([]*pendingReceipt, len(rs))
	err := s.commit.do(ctx, 1, func(tx Tx) error {
		for i, r := range rs {
			prs[i] = &pendingReceipt{r: r}
		}
		g, ok := tx.(*groupTx)
		if !ok {
			return s.applyReceiptsTx(ctx, tx, prs)
		}
		g.receipts = append(g.receipts, prs...)
		return nil
	})
	found := make([]bool, len(rs))
	for i, pr := range prs {
		found[i] = err == nil && pr.found
	}
	return found, err
}

// hold keeps receipts whose part is not recorded yet, for receiptRetries.
func (s *Service) hold(held ...orphan) {
	s.omu.Lock()
	defer s.omu.Unlock()
	for _, o := range held {
		if len(s.orphans) < orphanMax {
			s.orphans[o.r.Carrier+"|"+receipt.Key(o.r.ID)] = o
		}
	}
}

// applyReceiptsTx matches receipts to their parts (case-, leading-zero-, hex/decimal-
// insensitively: see pickPart), records final part states, and ends the messages whose parts
// all have one as delivered or failed, publishing their delivery reports. The batch costs two
// statements on PostgreSQL: one reads every candidate part with its message, locked
// (PartsForReceipts), one writes the parts' states and the messages (ReceiptsRecord).
func (s *Service) applyReceiptsTx(ctx context.Context, tx Tx, prs []*pendingReceipt) error {
	cands := make([][]string, len(prs))
	var keys []PartKey
	seen := map[PartKey]bool{}
	for i, pr := range prs {
		pr.found = false
		cands[i] = receipt.Candidates(pr.r.ID)
		for _, k := range cands[i] {
			if pk := (PartKey{pr.r.Carrier, k}); !seen[pk] {
				seen[pk] = true
				keys = append(keys, pk)
			}
		}
	}
	ps, msgs, err := tx.PartsForReceipts(ctx, keys)
	if err != nil {
		return err
	}
	parts := make(map[[2]string]Part, len(ps))
	rank := make(map[[2]string]int, len(ps)) // 0 = newest of its carrier
	newest := map[string]int{}
	for _, p := range ps {
		kk := [2]string{p.Carrier, p.Key}
		parts[kk], rank[kk] = p, newest[p.Carrier]
		newest[p.Carrier]++
	}
	byID := make(map[string]Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	type change struct {
		pr   *pendingReceipt
		part Part
	}
	var changes []change
	var changed []Part
	for i, pr := range prs {
		key, ok := pickPart(pr.r.Carrier, cands[i], parts, rank)
		if !ok {
			continue
		}
		pr.found = true
		p := parts[key]
		if !pr.r.State.Final() || p.State != "" {
			continue // intermediate (ENROUTE, ACCEPTD) or repeated receipt
		}
		p.State = "failed"
		if pr.r.State.Delivered() {
			p.State = "delivered"
		}
		parts[key] = p
		changes = append(changes, change{pr, p})
		changed = append(changed, p)
	}
	if len(changes) == 0 {
		return nil
	}
	at := s.cfg.Now().UTC()
	var touched []string
	isTouched := map[string]bool{}
	for _, c := range changes {
		m, ok := byID[c.part.MessageID]
		if !ok || m.Status.Final() {
			continue // a timeout or an earlier failure already ended it
		}
		if c.part.State == "delivered" {
			m.SegmentsSucceeded++
		} else {
			m.SegmentsFailed++
			m.StatusDetails = fmt.Sprintf("The carrier reported %s (error %s) for part %d.", c.pr.r.State, c.pr.r.Err, c.part.Seq)
		}
		m.UpdatedAt = at
		if m.SegmentsSucceeded+m.SegmentsFailed >= m.Segments {
			m.Status, m.DoneAt = StatusDelivered, at
			if m.SegmentsFailed > 0 {
				m.Status = StatusFailed
			}
		}
		if !isTouched[m.ID] {
			isTouched[m.ID] = true
			touched = append(touched, m.ID)
		}
		byID[m.ID] = m
	}
	updated := make([]Message, len(touched))
	for i, id := range touched {
		updated[i] = byID[id]
	}
	if err := tx.ReceiptsRecord(ctx, changed, updated); err != nil {
		return err
	}
	for _, m := range updated {
		if m.Status.Final() {
			s.metrics.messages.WithLabelValues(string(m.Status)).Inc()
			if err := s.reportTx(ctx, tx, m, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// pickPart chooses the part a receipt with candidate keys cands (receipt.Candidates: its own
// key first, then its hexadecimal/decimal conversions) is for. A part stored under the
// receipt's own key wins: receipted_message_id is the submit_sm_resp message_id (SMPP 3.4
// §5.3.2.12), and a conversion may name another message's part (hex "1234" is decimal 4660,
// and "4660" may well be another id of the same SMSC). Otherwise, among the conversions, a
// part still waiting for its receipt wins over one that has it, then the newest.
func pickPart(carrier string, cands []string, parts map[[2]string]Part, rank map[[2]string]int) ([2]string, bool) {
	if len(cands) == 0 {
		return [2]string{}, false
	}
	if kk := [2]string{carrier, cands[0]}; parts[kk].MessageID != "" {
		return kk, true
	}
	var key [2]string
	best, bestPending := -1, false
	for _, k := range cands[1:] {
		kk := [2]string{carrier, k}
		r, ok := rank[kk]
		if !ok {
			continue
		}
		pending := parts[kk].State == ""
		if best < 0 || (pending && !bestPending) || (pending == bestPending && r < best) {
			best, bestPending, key = r, pending, kk
		}
	}
	return key, best >= 0
}

// retryOrphans applies held receipts for keys just recorded.
func (s *Service) retryOrphans(ctx context.Context, carrier string, keys []string) {
	var todo []orphan
	s.omu.Lock()
	if len(s.orphans) > 0 {
		for _, k := range keys {
			for _, c := range receipt.Candidates(k) {
				if o, ok := s.orphans[carrier+"|"+c]; ok {
					todo = append(todo, o)
					delete(s.orphans, carrier+"|"+c)
				}
			}
		}
	}
	s.omu.Unlock()
	s.retryHeld(ctx, todo)
}

// retryHeld applies held receipts together (in shared transactions of up to 500) and holds
// again those still unmatched, until they are older than orphanTTL.
func (s *Service) retryHeld(ctx context.Context, todo []orphan) {
	now := s.cfg.Now()
	for len(todo) > 0 {
		chunk := todo[:min(len(todo), 500)]
		todo = todo[len(chunk):]
		rs := make([]Receipt, len(chunk))
		for i, o := range chunk {
			rs[i] = o.r
		}
		found, err := s.applyReceipts(ctx, rs)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("applying held receipts failed", "receipts", len(rs), "err", err)
		}
		var again []orphan
		for i, o := range chunk {
			switch {
			case found[i]:
				s.metrics.receipts.WithLabelValues("matched").Inc()
			case now.Sub(o.first) > orphanTTL:
				s.log.Warn("dropping delivery receipt for an unknown message", "carrier", o.r.Carrier, "id", o.r.ID)
				s.metrics.receipts.WithLabelValues("dropped").Inc()
			default:
				o.wait = min(max(2*o.wait, time.Second), orphanMaxWait)
				o.next = now.Add(o.wait)
				again = append(again, o)
			}
		}
		s.hold(again...)
	}
}

// Run runs every carrier with the service as its handler (inbound messages and receipts
// come back to HandleInbound and HandleReceipt), their senders (which submit the queued
// messages) and retries held receipts, until ctx ends. It first ends the leases of queued
// messages an earlier process of this node left (Store.MessagesLeasesRecover). A carrier that fails stops the others.
func (s *Service) Run(ctx context.Context) error {
	// Leases this node's earlier process left (a kill -9) end now rather than at their expiry.
	if n, err := s.cfg.Store.MessagesLeasesRecover(ctx, leasePrefix(s.cfg.Node), s.owner); err != nil {
		s.log.Warn("ending the leases of an earlier process failed; its messages go once the leases expire", "err", err)
	} else if n > 0 {
		s.log.Info("took back queued messages an earlier process had leased", "messages", n)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range s.cfg.Carriers {
		g.Go(func() error {
			if err := c.Run(gctx, s); err != nil {
				return fmt.Errorf("carrier %s: %w", c.Name(), err)
			}
			return nil
		})
	}
	for _, sd := range s.senders {
		g.Go(func() error { return sd.run(gctx) })
	}
	g.Go(func() error { return s.receiptRetries(gctx) })
	g.Go(func() error { return s.failStrays(gctx) })
	return g.Wait()
}

// receiptRetries retries held receipts that are due (another node may have recorded the part;
// each waits twice as long as before, one second to a minute) and drops those older than ten
// minutes, until ctx ends.
func (s *Service) receiptRetries(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.retryDue(ctx)
	}
}

// retryDue retries the held receipts that are due and returns how many it tried.
func (s *Service) retryDue(ctx context.Context) int {
	now := s.cfg.Now()
	s.omu.Lock()
	var todo []orphan
	for k, o := range s.orphans {
		if o.next.After(now) {
			continue
		}
		todo = append(todo, o)
		delete(s.orphans, k)
	}
	s.omu.Unlock()
	s.retryHeld(ctx, todo)
	return len(todo)
}

// HandleInbound implements CarrierHandler: it applies opt-out keywords (and queues the one
// confirmation reply), then publishes Microsoft.Communication.SMSReceived, all in one
// transaction. Messages to numbers telgw does not own are logged and dropped.
func (s *Service) HandleInbound(ctx context.Context, in Inbound) error {
	from, to := in.From, in.To
	if n, ok := e164.Clean(from); ok {
		from = n
	}
	if n, ok := e164.Clean(to); ok {
		to = n
	}
	if s.cfg.Numbers != nil {
		info, err := s.numberInfo(ctx, to)
		if err != nil && !errors.Is(err, problem.ErrNotFound) {
			return err
		}
		if err != nil || !info.Purchased || !info.CanReceive {
			s.log.Warn("inbound sms to a number telgw does not serve; dropped", "number", to, "from", from)
			return nil
		}
	}
	kw := ClassifyKeyword(in.Text)
	s.metrics.inbound.WithLabelValues(kw.String()).Inc()
	at := in.ReceivedAt.UTC()
	if at.IsZero() {
		at = s.cfg.Now().UTC()
	}
	id := uuid.NewString()
	replyCarrier := ""
	err := s.commit.do(ctx, 1, func(tx Tx) error {
		replyCarrier = ""
		reply := ""
		switch kw {
		case KeywordOptOut:
			reply = s.cfg.OptOutReply
			if err := tx.OptOutSet(ctx, to, from, true, at); err != nil {
				return err
			}
		case KeywordOptIn:
			reply = s.cfg.OptInReply
			if err := tx.OptOutSet(ctx, to, from, false, at); err != nil {
				return err
			}
		case KeywordHelp:
			reply = s.cfg.HelpReply
		}
		if reply != "" {
			if _, ok := e164.Clean(from); ok {
				m := Message{ID: uuid.NewString(), From: to, To: from, Text: reply, Carrier: in.Carrier, Status: StatusQueued,
					KeywordReply: true, CreatedAt: at, UpdatedAt: at}
				if _, ok := s.carriers[m.Carrier]; !ok && len(s.cfg.Carriers) > 0 {
					m.Carrier = s.cfg.Carriers[0].Name()
				}
				if err := tx.MessagesInsert(ctx, []Message{m}); err != nil {
					return err
				}
				replyCarrier = m.Carrier
			}
		}
		if s.cfg.Events == nil {
			return nil
		}
		ev, err := events.New(id, s.cfg.Topic, "/phonenumber/"+trimPlus(to), events.TypeSMSReceived, at,
			events.SMSReceivedData{MessageID: id, From: from, To: to, Message: in.Text, ReceivedTimestamp: at, SegmentCount: in.Segments}, from, to)
		if err != nil {
			return err
		}
		return s.cfg.Events.PublishTx(ctx, tx, ev)
	})
	if err == nil && replyCarrier != "" {
		s.wakeSender(replyCarrier)
	}
	return err
}
