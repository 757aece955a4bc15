package sms

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/problem"
)

// memStore is an in-memory Store and Tx (no rollback: tests do not fail transactions).
type memStore struct {
	mu      sync.Mutex
	msgs    map[string]Message
	parts   map[[2]string]Part
	optouts map[[2]string]bool
	seq     map[string]int // insertion order
	leases  map[string]memLease
	// jobs records what transactions inserted (Tx.InsertJob).
	jobs *memJobs
}

func newMemStore() *memStore {
	return &memStore{msgs: map[string]Message{}, parts: map[[2]string]Part{}, optouts: map[[2]string]bool{}, jobs: &memJobs{},
		seq: map[string]int{}, leases: map[string]memLease{}}
}

func (s *memStore) SMSTx(_ context.Context, fn func(tx Tx) error) error { return fn(memTx{s}) }

func (s *memStore) MessageGet(_ context.Context, id string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return Message{}, problem.ErrNotFound
	}
	return m, nil
}

func (s *memStore) MessagesGet(ctx context.Context, ids []string) ([]Message, error) {
	var out []Message
	for _, id := range ids {
		if m, err := s.MessageGet(ctx, id); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *memStore) MessageList(context.Context, MessageFilter) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, nil
}

func (s *memStore) OptOutCheck(_ context.Context, from string, tos []string) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, t := range tos {
		out[t] = s.optouts[[2]string{from, t}]
	}
	return out, nil
}

// memLease is a claimed message's lease.
type memLease struct {
	owner string
	until time.Time
}

// MessagesClaim takes due queued messages, oldest first, one per destination, none leased,
// and leases them.
func (s *memStore) MessagesClaim(_ context.Context, p ClaimParams) ([]Queued, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var queued []Message
	for _, m := range s.msgs {
		if m.Status == StatusQueued {
			queued = append(queued, m)
		}
	}
	sort.Slice(queued, func(i, j int) bool { return s.seq[queued[i].ID] < s.seq[queued[j].ID] })
	seenTo := map[string]bool{}
	var out []Queued
	for _, m := range queued {
		first := !seenTo[m.To]
		seenTo[m.To] = true
		if !first || m.Carrier != p.Carrier || m.NextAttempt.After(p.Now) || s.leases[m.ID].until.After(p.Now) || len(out) >= p.Limit {
			continue
		}
		out = append(out, Queued{Message: m, OptedOut: s.optouts[[2]string{m.From, m.To}]})
		s.leases[m.ID] = memLease{p.Owner, p.Until}
	}
	return out, nil
}

func (s *memStore) MessagesUnlease(_ context.Context, owner string, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.leases[id].owner == owner {
			delete(s.leases, id)
		}
	}
	return nil
}

func (s *memStore) MessagesLeasesRecover(_ context.Context, _, keep string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, l := range s.leases {
		if l.owner != keep {
			delete(s.leases, id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) QueuedCarriers(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, m := range s.msgs {
		if m.Status == StatusQueued && !seen[m.Carrier] {
			seen[m.Carrier] = true
			out = append(out, m.Carrier)
		}
	}
	sort.Strings(out)
	return out, nil
}

type memTx struct{ s *memStore }

func (t memTx) InsertJobs(ctx context.Context, jobs []river.InsertManyParams) error {
	for _, j := range jobs {
		if err := t.InsertJob(ctx, j.Args, j.InsertOpts); err != nil {
			return err
		}
	}
	return nil
}

func (t memTx) MessagesRetry(_ context.Context, ids []string, attempts int, next, at time.Time) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, id := range ids {
		if m, ok := t.s.msgs[id]; ok && m.Status == StatusQueued {
			m.Attempts, m.NextAttempt, m.UpdatedAt = attempts, next, at
			t.s.msgs[id] = m
			delete(t.s.leases, id)
		}
	}
	return nil
}

func (t memTx) MessagesLeased(_ context.Context, owner string, ids []string) ([]string, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	var out []string
	for _, id := range ids {
		if m, ok := t.s.msgs[id]; ok && m.Status == StatusQueued && t.s.leases[id].owner == owner {
			out = append(out, id)
		}
	}
	return out, nil
}

func (t memTx) InsertJob(_ context.Context, a river.JobArgs, o *river.InsertOpts) error {
	t.s.jobs.mu.Lock()
	defer t.s.jobs.mu.Unlock()
	t.s.jobs.jobs, t.s.jobs.opts = append(t.s.jobs.jobs, a), append(t.s.jobs.opts, o)
	return nil
}

func (t memTx) MessagesInsert(_ context.Context, ms []Message) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, m := range ms {
		for _, o := range t.s.msgs {
			if m.RepeatabilityRequestID != "" && o.RepeatabilityRequestID == m.RepeatabilityRequestID {
				return problem.ErrConflict
			}
		}
		t.s.msgs[m.ID] = m
		t.s.seq[m.ID] = len(t.s.seq) + 1
	}
	return nil
}

func (t memTx) MessagesByRepeatability(_ context.Context, rids []string) (map[string]Message, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	out := map[string]Message{}
	for _, m := range t.s.msgs {
		if m.RepeatabilityRequestID != "" && slices.Contains(rids, m.RepeatabilityRequestID) {
			out[m.RepeatabilityRequestID] = m
		}
	}
	return out, nil
}

func (t memTx) MessagesMarkSent(_ context.Context, ids []string, segments, attempts int, at time.Time) ([]string, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	var out []string
	for _, id := range ids {
		m := t.s.msgs[id]
		if m.Status != StatusQueued {
			continue
		}
		m.Status, m.Segments, m.Attempts, m.SentAt, m.UpdatedAt = StatusSent, segments, attempts, at, at
		t.s.msgs[id] = m
		out = append(out, id)
	}
	return out, nil
}

func (s *memStore) MessagesSentAlone(ctx context.Context, p SentParams) ([]string, error) {
	return memTx{s}.MessagesSent(ctx, p)
}

func (t memTx) MessagesSent(ctx context.Context, p SentParams) ([]string, error) {
	t.s.mu.Lock()
	var out []string
	ok := map[string]bool{}
	for _, sm := range p.Sent {
		m := t.s.msgs[sm.ID]
		if m.Status != StatusQueued || t.s.leases[sm.ID].owner != p.Owner {
			continue
		}
		m.Status, m.Segments, m.Attempts, m.SentAt, m.UpdatedAt = StatusSent, sm.Segments, sm.Attempts, p.At, p.At
		t.s.msgs[sm.ID] = m
		out = append(out, sm.ID)
		ok[sm.ID] = true
	}
	t.s.mu.Unlock()
	var parts []Part
	for _, pt := range p.Parts {
		if ok[pt.MessageID] {
			parts = append(parts, pt)
		}
	}
	return out, t.PartsAdd(ctx, parts)
}

func (t memTx) MessageGetForUpdate(ctx context.Context, id string) (Message, error) {
	return t.s.MessageGet(ctx, id)
}

func (t memTx) MessageUpdate(_ context.Context, m Message) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.msgs[m.ID] = m
	return nil
}

func (t memTx) MessagesUpdate(ctx context.Context, ms []Message) error {
	for _, m := range ms {
		if err := t.MessageUpdate(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (t memTx) PartsAdd(_ context.Context, parts []Part) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, p := range parts {
		t.s.parts[[2]string{p.Carrier, p.Key}] = p
	}
	return nil
}

func (t memTx) PartByKey(_ context.Context, carrier string, keys []string) (Part, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	for _, k := range keys {
		if p, ok := t.s.parts[[2]string{carrier, k}]; ok {
			return p, nil
		}
	}
	return Part{}, problem.ErrNotFound
}

func (t memTx) PartsByKeys(ctx context.Context, carrier string, keys []string) ([]Part, error) {
	var out []Part
	for _, k := range keys {
		if p, err := t.PartByKey(ctx, carrier, []string{k}); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func (t memTx) PartsSetState(ctx context.Context, parts []Part) error {
	for _, p := range parts {
		_ = t.PartSetState(ctx, p)
	}
	return nil
}

func (t memTx) MessagesGetForUpdate(ctx context.Context, ids []string) ([]Message, error) {
	return t.s.MessagesGet(ctx, ids)
}

func (t memTx) PartsForReceipts(ctx context.Context, keys []PartKey) ([]Part, []Message, error) {
	var parts []Part
	var ids []string
	for _, k := range keys {
		if p, err := t.PartByKey(ctx, k.Carrier, []string{k.Key}); err == nil {
			parts = append(parts, p)
			ids = append(ids, p.MessageID)
		}
	}
	ms, err := t.MessagesGetForUpdate(ctx, ids)
	return parts, ms, err
}

func (t memTx) ReceiptsRecord(ctx context.Context, parts []Part, ms []Message) error {
	if err := t.PartsSetState(ctx, parts); err != nil {
		return err
	}
	return t.MessagesUpdate(ctx, ms)
}

func (t memTx) PartSetState(_ context.Context, p Part) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.parts[[2]string{p.Carrier, p.Key}] = p
	return nil
}

func (t memTx) OptOutSet(_ context.Context, from, to string, out bool, _ time.Time) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if out {
		t.s.optouts[[2]string{from, to}] = true
	} else {
		delete(t.s.optouts, [2]string{from, to})
	}
	return nil
}

// memJobs records inserted jobs.
type memJobs struct {
	mu   sync.Mutex
	jobs []river.JobArgs
	opts []*river.InsertOpts
}

func (j *memJobs) sends() []SendArgs {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []SendArgs
	for _, a := range j.jobs {
		if s, ok := a.(SendArgs); ok {
			out = append(out, s)
		}
	}
	return out
}

// memEvents records published events.
type memEvents struct {
	mu  sync.Mutex
	evs []events.Event
}

func (e *memEvents) PublishTx(_ context.Context, _ events.JobInserter, evs ...events.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, evs...)
	return nil
}

func (e *memEvents) ofType(t string) []events.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []events.Event
	for _, ev := range e.evs {
		if ev.EventType == t {
			out = append(out, ev)
		}
	}
	return out
}

// scriptCarrier answers submits by recipient.
type scriptCarrier struct {
	name string
	mu   sync.Mutex
	errs map[string]error
	n    int
	got  []Outbound
	h    CarrierHandler // what Run was given
}

func (c *scriptCarrier) Name() string { return c.name }

// Run records the handler it was given and waits for ctx.
func (c *scriptCarrier) Run(ctx context.Context, h CarrierHandler) error {
	c.mu.Lock()
	c.h = h
	c.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (c *scriptCarrier) handler() CarrierHandler {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h
}

func (c *scriptCarrier) Submit(_ context.Context, m Outbound) (SubmitResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, m)
	if err := c.errs[m.To]; err != nil {
		return SubmitResult{}, err
	}
	c.n++
	return SubmitResult{CarrierIDs: []string{"0A" + string(rune('0'+c.n)), "0B" + string(rune('0'+c.n))}, Segments: 2}, nil
}

// memNumbers knows some numbers.
type memNumbers map[string]NumberInfo

func (n memNumbers) SMSNumber(_ context.Context, e string) (NumberInfo, error) {
	if i, ok := n[e]; ok {
		return i, nil
	}
	return NumberInfo{}, problem.ErrNotFound
}
