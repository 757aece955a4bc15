package smpp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/cluster"
)

// Leases hands out the cluster's bind slots: *cluster.Member. A carrier with Leases binds a
// link only while this node holds the link's slot, so the carrier's Links are binds for the
// whole cluster, not per node (docs/CLUSTER.md).
type Leases interface {
	// Acquire takes a free slot of name (slots in the cluster, at most maxPerNode here when
	// > 0); cluster.ErrNoSlot when none is free.
	Acquire(ctx context.Context, name string, slots, maxPerNode int) (*cluster.Held, error)
	// Release frees a held slot for another node.
	Release(ctx context.Context, h *cluster.Held) error
	// Nodes are the live nodes.
	Nodes(ctx context.Context) ([]cluster.Node, error)
	// Draining is closed when the node drains: its links unbind and release their slots.
	Draining() <-chan struct{}
}

// LeaseName is the lease of carrier's submitting binds ("smpp:carrier1"); the receiver bind of
// BindMode txrx has its own one-slot lease, LeaseName + ":rx".
func LeaseName(carrier string) string { return "smpp:" + carrier }

// errLeaseLost ends a link whose slot another node may hold now: it unbinds at once, without
// waiting for the answers in flight.
var errLeaseLost = errors.New("smpp: bind slot lost")

// leaseRetry is how often a carrier without all its slots tries to take more (and checks it
// holds no more than its share).
const leaseRetry = time.Second

// rebalanceAfter is how many consecutive looks find this node holding more than its share
// before it hands one slot over (nodes that start a little apart settle without flapping).
const rebalanceAfter = 3

// leasedLink is a link this node runs under a held slot.
type leasedLink struct {
	l      *link
	h      *cluster.Held
	cancel context.CancelFunc
	done   chan struct{}
}

// leaseGroup is one lease: its name, its slots and the links that bind them (link i for slot i).
type leaseGroup struct {
	name  string
	links []*link
	held  map[int]*leasedLink
	over  int // consecutive looks with more than this node's share
}

// UseLeases makes the carrier bind its links only under slots of the cluster's leases (call
// before Run). Without it every link binds (a node alone).
func (c *Carrier) UseLeases(l Leases) { c.leases = l }

// runLeased takes slots as they are free, binds a link per slot held, and hands slots over
// when the node drains (unbind, then release), holds more than its share, or stops.
func (c *Carrier) runLeased(ctx context.Context) {
	var groups []*leaseGroup
	var tx, rx []*link
	for _, l := range c.links {
		if l.kind == bindRX {
			rx = append(rx, l)
		} else {
			tx = append(tx, l)
		}
	}
	groups = append(groups, &leaseGroup{name: LeaseName(c.cfg.Name), links: tx, held: map[int]*leasedLink{}})
	if len(rx) > 0 {
		groups = append(groups, &leaseGroup{name: LeaseName(c.cfg.Name) + ":rx", links: rx, held: map[int]*leasedLink{}})
	}
	drain := c.leases.Draining()
	t := time.NewTicker(leaseRetry)
	defer t.Stop()
	for {
		c.takeSlots(ctx, groups)
		select {
		case <-ctx.Done():
			c.handOver(groups)
			return
		case <-drain:
			c.log.Info("draining: handing SMPP binds over to other nodes")
			c.handOver(groups)
			<-ctx.Done()
			return
		case <-t.C:
		}
	}
}

// takeSlots reaps links whose slot was lost, takes free slots up to this node's share
// (ceil(slots / live nodes not draining); all of them when it is alone) and gives one back
// when it has held more than its share for a while.
func (c *Carrier) takeSlots(ctx context.Context, groups []*leaseGroup) {
	ns, err := c.leases.Nodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("listing cluster nodes failed", "err", err)
		}
		return
	}
	live := 0
	for _, n := range ns {
		if !n.Draining {
			live++
		}
	}
	live = max(live, 1)
	for _, g := range groups {
		for s, ll := range g.held {
			select {
			case <-ll.done:
				// The link stopped on its own only when its slot was lost.
				delete(g.held, s)
			default:
			}
		}
		slots := len(g.links)
		share := (slots + live - 1) / live
		perNode := share
		if live == 1 {
			perNode = 0 // alone: every slot
		}
		for len(g.held) < share && ctx.Err() == nil {
			h, err := c.leases.Acquire(ctx, g.name, slots, perNode)
			if errors.Is(err, cluster.ErrNoSlot) {
				break
			}
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("taking an SMPP bind slot failed", "lease", g.name, "err", err)
				}
				break
			}
			if h.Slot < 0 || h.Slot >= slots {
				_ = c.leases.Release(ctx, h)
				break
			}
			c.startLeased(ctx, g, h)
		}
		if len(g.held) > share {
			g.over++
		} else {
			g.over = 0
		}
		if g.over >= rebalanceAfter {
			g.over = 0
			for s, ll := range g.held {
				c.log.Info("handing an SMPP bind over to a node holding fewer", "lease", g.name, "slot", s)
				c.stopLeased(ll)
				delete(g.held, s)
				break
			}
		}
	}
}

// startLeased binds link h.Slot of g until its slot is lost or it is stopped.
func (c *Carrier) startLeased(ctx context.Context, g *leaseGroup, h *cluster.Held) {
	if old := g.held[h.Slot]; old != nil {
		// The slot was lost and taken again before its old session finished unbinding.
		<-old.done
	}
	lctx, cancel := context.WithCancelCause(ctx)
	ll := &leasedLink{l: g.links[h.Slot], h: h, cancel: func() { cancel(nil) }, done: make(chan struct{})}
	g.held[h.Slot] = ll
	c.log.Info("took SMPP bind slot", "lease", g.name, "slot", h.Slot)
	go func() {
		select {
		case <-h.Lost():
			c.log.Warn("SMPP bind slot lost; unbinding", "lease", g.name, "slot", h.Slot)
			cancel(errLeaseLost)
		case <-lctx.Done():
		}
	}()
	go func() {
		defer close(ll.done)
		ll.l.run(lctx)
	}()
}

// stopLeased unbinds a link (its submits in flight answered first), then releases its slot.
func (c *Carrier) stopLeased(ll *leasedLink) {
	ll.cancel()
	<-ll.done
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.leases.Release(rctx, ll.h); err != nil {
		c.log.Warn("releasing SMPP bind slot failed; it frees when its lease lapses", "err", err)
	}
}

// handOver stops every leased link and releases its slot, all at once.
func (c *Carrier) handOver(groups []*leaseGroup) {
	var wg sync.WaitGroup
	for _, g := range groups {
		for s, ll := range g.held {
			wg.Go(func() { c.stopLeased(ll) })
			delete(g.held, s)
		}
	}
	wg.Wait()
}
