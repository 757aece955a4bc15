package sms

import (
	"context"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/telgw/telgw/internal/events"
)

// committer groups the SMS domain's small transactions (an accepted POST /sms, an inbound
// message, a delivery receipt) into shared store transactions: whatever arrives while a commit
// runs waits for the next one, which takes it all. Idle, a request commits at once; under load
// one commit (one fsync: PostgreSQL with synchronous_commit on, SQLite's WAL) serves every
// request that arrived meanwhile, and each still gets its answer only once its rows are
// durable.
type committer struct {
	store Store
	// parallel is how many shared transactions may run at once (1 on SQLite, whose writers
	// queue anyway).
	parallel int
	// maxItems caps one transaction's items, maxRows the messages they write (each item
	// states its own); a transaction takes at least one item.
	maxItems, maxRows int
	batches           func(n int) // observes each transaction's size (metrics)
	// receipts applies the receipts a shared transaction's items handed it, in bulk, when the
	// transaction is about to commit.
	receipts func(ctx context.Context, tx Tx, rs []*pendingReceipt) error

	mu      sync.Mutex
	queue   []*commitItem
	running int
}

// commitItem is one caller's work in a shared commit: fn in the shared transaction, or an
// accept (msgs stored with Store.MessagesAccept).
type commitItem struct {
	fn func(tx Tx) error
	// msgs are an accept's messages; taken is what MessagesAccept answered for them, set
	// before done.
	msgs  []Message
	taken map[string]string
	rows  int
	done  chan error
}

// commitTimeout bounds one shared transaction.
const commitTimeout = 30 * time.Second

// do runs fn, which writes about rows messages, in a transaction shared with other callers and returns once it committed (nil)
// or failed. fn may run more than once (when a shared transaction fails it is run again
// alone) and must not keep state across runs. A cancelled ctx does not abandon a commit that
// may already hold fn's rows: do always reports the outcome.
func (c *committer) do(ctx context.Context, rows int, fn func(tx Tx) error) error {
	return c.enqueue(ctx, &commitItem{fn: fn, rows: rows, done: make(chan error, 1)})
}

// accept stores an accepted request's messages together with the accepts of concurrent
// requests, in one Store.MessagesAccept (on PostgreSQL one statement, no transaction around
// it), and returns its answer for them: the holders of repeatability ids taken.
func (c *committer) accept(ctx context.Context, msgs []Message) (map[string]string, error) {
	it := &commitItem{msgs: msgs, rows: len(msgs), done: make(chan error, 1)}
	err := c.enqueue(ctx, it)
	return it.taken, err
}

// enqueue queues it, starts a loop when fewer than parallel run, and waits for its outcome.
func (c *committer) enqueue(ctx context.Context, it *commitItem) error {
	c.mu.Lock()
	c.queue = append(c.queue, it)
	if c.running < c.parallel {
		c.running++
		go c.loop(context.WithoutCancel(ctx))
	}
	c.mu.Unlock()
	return <-it.done
}

// loop commits queued items until none is left.
func (c *committer) loop(ctx context.Context) {
	for {
		c.mu.Lock()
		n, rows := 0, 0
		for n < len(c.queue) && n < c.maxItems && (n == 0 || c.maxRows <= 0 || rows+c.queue[n].rows <= c.maxRows) {
			rows += c.queue[n].rows
			n++
		}
		if n == 0 {
			c.running--
			c.queue = nil
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		c.commit(ctx, batch)
	}
}

// commit writes a batch: its accepts in one MessagesAccept, the rest in one shared
// transaction.
func (c *committer) commit(ctx context.Context, batch []*commitItem) {
	if c.batches != nil {
		c.batches(len(batch))
	}
	var accepts, txs []*commitItem
	for _, it := range batch {
		if it.fn == nil {
			accepts = append(accepts, it)
		} else {
			txs = append(txs, it)
		}
	}
	if len(accepts) > 0 {
		c.commitAccepts(ctx, accepts)
	}
	if len(txs) > 0 {
		c.commitTx(ctx, txs)
	}
}

// commitAccepts stores the accepts' messages in one MessagesAccept. When it fails, each
// accept is tried alone, so that one bad message fails only its own request.
func (c *committer) commitAccepts(ctx context.Context, batch []*commitItem) {
	msgs := batch[0].msgs
	if len(batch) > 1 {
		n := 0
		for _, it := range batch {
			n += len(it.msgs)
		}
		msgs = make([]Message, 0, n)
		for _, it := range batch {
			msgs = append(msgs, it.msgs...)
		}
	}
	tctx, cancel := context.WithTimeout(ctx, commitTimeout)
	taken, err := c.store.MessagesAccept(tctx, msgs)
	cancel()
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.taken = taken
			it.done <- err
		}
		return
	}
	for _, it := range batch {
		ictx, icancel := context.WithTimeout(ctx, commitTimeout)
		var err error
		it.taken, err = c.store.MessagesAccept(ictx, it.msgs)
		icancel()
		it.done <- err
	}
}

// commitTx runs the items' functions in one shared transaction; when it fails, each runs
// again in a transaction of its own.
func (c *committer) commitTx(ctx context.Context, batch []*commitItem) {
	tctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	err := c.store.SMSTx(tctx, func(tx Tx) error {
		g := &groupTx{Tx: tx, receiptsFn: c.receipts}
		for _, it := range batch {
			if err := it.fn(g); err != nil {
				return err
			}
		}
		return g.flush(tctx)
	})
	if err == nil || len(batch) == 1 {
		for _, it := range batch {
			it.done <- err
		}
		return
	}
	// One item's failure (a repeatabilityRequestId inserted concurrently) must not fail the
	// others: each runs again in a transaction of its own.
	for _, it := range batch {
		ictx, icancel := context.WithTimeout(ctx, commitTimeout)
		it.done <- c.store.SMSTx(ictx, func(tx Tx) error {
			g := &groupTx{Tx: tx, receiptsFn: c.receipts}
			if err := it.fn(g); err != nil {
				return err
			}
			return g.flush(ictx)
		})
		icancel()
	}
}

// groupTx is the Tx a shared transaction's items see: it gathers their message rows and jobs
// into multi-row statements (one INSERT for every request's messages instead of one per
// request). Buffered messages are written before any other statement, so what an item reads
// or updates sees what earlier items inserted.
type groupTx struct {
	Tx
	msgs []Message
	jobs []river.InsertManyParams
	// receipts are applied together at flush (applyReceipts: one lookup of every part, one
	// lock of every message).
	receipts   []*pendingReceipt
	receiptsFn func(ctx context.Context, tx Tx, rs []*pendingReceipt) error
}

func (g *groupTx) flushMessages(ctx context.Context) error {
	if len(g.msgs) == 0 {
		return nil
	}
	msgs := g.msgs
	g.msgs = nil
	return g.Tx.MessagesInsert(ctx, msgs)
}

func (g *groupTx) flush(ctx context.Context) error {
	if len(g.receipts) > 0 {
		rs := g.receipts
		g.receipts = nil
		if err := g.receiptsFn(ctx, g, rs); err != nil {
			return err
		}
	}
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	if len(g.jobs) == 0 {
		return nil
	}
	// The items' webhook deliveries go out as one job per subscription, not one per event.
	jobs := events.Coalesce(g.jobs)
	g.jobs = nil
	return g.Tx.InsertJobs(ctx, jobs)
}

// InsertJob buffers the job for one multi-row insert at commit.
func (g *groupTx) InsertJob(_ context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	g.jobs = append(g.jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
	return nil
}

// MessagesInsert buffers the messages for one multi-row insert.
func (g *groupTx) MessagesInsert(_ context.Context, ms []Message) error {
	g.msgs = append(g.msgs, ms...)
	return nil
}

func (g *groupTx) MessagesByRepeatability(ctx context.Context, ids []string) (map[string]Message, error) {
	if len(ids) == 0 {
		return map[string]Message{}, nil // most requests: nothing to read, nothing to flush
	}
	if err := g.flushMessages(ctx); err != nil {
		return nil, err
	}
	return g.Tx.MessagesByRepeatability(ctx, ids)
}

func (g *groupTx) MessagesMarkSent(ctx context.Context, ids []string, segments, attempts int, at time.Time) ([]string, error) {
	if err := g.flushMessages(ctx); err != nil {
		return nil, err
	}
	return g.Tx.MessagesMarkSent(ctx, ids, segments, attempts, at)
}

func (g *groupTx) MessagesRetry(ctx context.Context, ids []string, attempts int, next, at time.Time) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.MessagesRetry(ctx, ids, attempts, next, at)
}

func (g *groupTx) MessageGetForUpdate(ctx context.Context, id string) (Message, error) {
	if err := g.flushMessages(ctx); err != nil {
		return Message{}, err
	}
	return g.Tx.MessageGetForUpdate(ctx, id)
}

func (g *groupTx) MessagesUpdate(ctx context.Context, ms []Message) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.MessagesUpdate(ctx, ms)
}

func (g *groupTx) MessageUpdate(ctx context.Context, m Message) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.MessageUpdate(ctx, m)
}

func (g *groupTx) PartsAdd(ctx context.Context, parts []Part) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.PartsAdd(ctx, parts)
}

func (g *groupTx) PartByKey(ctx context.Context, carrier string, keys []string) (Part, error) {
	if err := g.flushMessages(ctx); err != nil {
		return Part{}, err
	}
	return g.Tx.PartByKey(ctx, carrier, keys)
}

func (g *groupTx) PartSetState(ctx context.Context, p Part) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.PartSetState(ctx, p)
}

func (g *groupTx) PartsByKeys(ctx context.Context, carrier string, keys []string) ([]Part, error) {
	if err := g.flushMessages(ctx); err != nil {
		return nil, err
	}
	return g.Tx.PartsByKeys(ctx, carrier, keys)
}

func (g *groupTx) PartsSetState(ctx context.Context, parts []Part) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.PartsSetState(ctx, parts)
}

func (g *groupTx) MessagesGetForUpdate(ctx context.Context, ids []string) ([]Message, error) {
	if err := g.flushMessages(ctx); err != nil {
		return nil, err
	}
	return g.Tx.MessagesGetForUpdate(ctx, ids)
}

func (g *groupTx) PartsForReceipts(ctx context.Context, keys []PartKey) ([]Part, []Message, error) {
	if err := g.flushMessages(ctx); err != nil {
		return nil, nil, err
	}
	return g.Tx.PartsForReceipts(ctx, keys)
}

func (g *groupTx) ReceiptsRecord(ctx context.Context, parts []Part, ms []Message) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.ReceiptsRecord(ctx, parts, ms)
}

func (g *groupTx) OptOutSet(ctx context.Context, from, to string, optedOut bool, at time.Time) error {
	if err := g.flushMessages(ctx); err != nil {
		return err
	}
	return g.Tx.OptOutSet(ctx, from, to, optedOut, at)
}
