package cluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/problem"
)

// Stats is what a node reports about itself on each heartbeat.
type Stats struct {
	Calls, Registrations int
}

// Member is this node's membership: its row in the store renewed every heartbeat, its held
// leases renewed with it, and the cluster view.
type Member struct {
	cfg  Config
	st   Store
	log  *slog.Logger
	self Node
	now  func() time.Time

	// Stats, when set, is read on each heartbeat.
	Stats func() Stats
	// OnRejoin, when set, is called after a heartbeat that follows a lease TTL or more without
	// one: the others took the node for dead meanwhile (and may have swept its bindings), so
	// whatever it publishes must be published again.
	OnRejoin func()

	draining atomic.Bool
	drainCh  chan struct{} // closed by SetDraining
	drainOne sync.Once
	amu      sync.Mutex // serialises Acquire and Release with renew
	mu       sync.Mutex
	held     map[leaseKey]*Held
	lastOK   time.Time // last successful renewal

	beats   prometheus.Counter
	failed  prometheus.Counter
	holders prometheus.Histogram
}

type leaseKey struct {
	name string
	slot int
}

// Held is a lease slot this node holds. Lost is closed when the node learns it no longer holds
// it (a renewal found it taken or expired, or the store was unreachable past the lease TTL):
// whatever it guards (an SMPP bind) must stop at once.
type Held struct {
	Name string
	Slot int
	lost chan struct{}
	once sync.Once
}

// Lost is closed when the lease is lost or released.
func (h *Held) Lost() <-chan struct{} { return h.lost }

func (h *Held) lose() { h.once.Do(func() { close(h.lost) }) }

// NewMember returns this node's membership (not yet announced: Join does that). sipAddr and
// httpAddr are the bound listeners (cfg.SIPAddr, when set, wins for SIP).
func NewMember(cfg Config, st Store, log *slog.Logger, reg prometheus.Registerer, sipAddr, httpAddr, version string) (*Member, error) {
	d := DefaultConfig()
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = d.Heartbeat
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = d.LeaseTTL
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.NodeName == "" {
		cfg.NodeName, _ = os.Hostname()
	}
	if cfg.SIPAddr != "" {
		sipAddr = cfg.SIPAddr
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Member{cfg: cfg, st: st, log: log, now: time.Now, held: map[leaseKey]*Held{}, drainCh: make(chan struct{}),
		self:    Node{ID: uuid.NewString(), Name: cfg.NodeName, SIPAddr: sipAddr, HTTPAddr: httpAddr, Version: version},
		beats:   prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_cluster_heartbeats_total", Help: "Heartbeats this node wrote."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_cluster_heartbeat_failures_total", Help: "Heartbeats that failed to reach the store."}),
		holders: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "telgw_cluster_binding_lookup_seconds", Help: "Time to find the nodes holding a user's devices.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.beats, m.failed, m.holders)
	}
	return m, nil
}

// ID is this node's id in the cluster.
func (m *Member) ID() string { return m.self.ID }

// Self is this node as announced.
func (m *Member) Self() Node { return m.self }

// Config is the membership configuration with defaults filled in.
func (m *Member) Config() Config { return m.cfg }

// Join announces the node (one heartbeat) so the others see it before it serves.
func (m *Member) Join(ctx context.Context) error {
	m.self.Started = m.now()
	return m.beat(ctx)
}

// SetDraining marks the node as draining (SIGTERM) and announces it at once: the other nodes
// stop sending it calls for its users.
func (m *Member) SetDraining(ctx context.Context) {
	m.draining.Store(true)
	m.drainOne.Do(func() { close(m.drainCh) })
	if err := m.beat(ctx); err != nil {
		m.log.Warn("announce draining", "err", err)
	}
}

// Draining is closed when the node starts draining (SetDraining): whatever holds leases
// hands them over (an SMPP link unbinds, then releases its slot for another node).
func (m *Member) Draining() <-chan struct{} { return m.drainCh }

func (m *Member) beat(ctx context.Context) error {
	now := m.now()
	n := m.self
	n.Heartbeat, n.Expires, n.Draining = now, now.Add(m.cfg.LeaseTTL), m.draining.Load()
	if m.Stats != nil {
		s := m.Stats()
		n.Calls, n.Registrations = s.Calls, s.Registrations
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	defer cancel()
	if err := m.st.NodeHeartbeat(ctx, n); err != nil {
		m.failed.Inc()
		return err
	}
	m.beats.Inc()
	return nil
}

// Run renews the node and its leases every heartbeat until ctx ends, then leaves the cluster
// (its row, bindings and leases go at once, not after the TTL).
func (m *Member) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Heartbeat)
	defer t.Stop()
	m.mu.Lock()
	m.lastOK = m.now()
	m.mu.Unlock()
	// The guard gives the held leases up, on this node's own clock, before the others may take
	// them (their expiry is a TTL after the last renewal): a slot never has two users at once,
	// even when a heartbeat hangs on an unreachable store.
	safe := m.cfg.LeaseTTL - m.cfg.LeaseTTL/5
	guard := time.AfterFunc(safe, func() {
		m.mu.Lock()
		n := len(m.held)
		m.mu.Unlock()
		if n > 0 {
			m.log.Warn("leases not renewed for most of their TTL: giving them up", "leases", n)
		}
		m.loseAll()
	})
	defer guard.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			m.leave()
			return nil
		case <-t.C:
		}
		m.mu.Lock()
		wasOut := m.now().Sub(m.lastOK) >= m.cfg.LeaseTTL
		m.mu.Unlock()
		start := time.Now()
		err := m.beat(ctx)
		if err == nil {
			err = m.renew(ctx)
			if err == nil {
				guard.Reset(max(safe-time.Since(start), 0))
			}
			if err == nil && wasOut && m.OnRejoin != nil {
				m.log.Warn("back in the cluster after missing heartbeats: publishing again")
				m.OnRejoin()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			m.log.Warn("cluster heartbeat failed", "err", err)
			m.mu.Lock()
			stale := m.now().Sub(m.lastOK) >= m.cfg.LeaseTTL
			m.mu.Unlock()
			if stale {
				// The others consider this node dead now: whatever it holds may be taken.
				m.loseAll()
			}
			continue
		}
		if n%10 == 9 {
			// Any node sweeps; the statements are idempotent. Rows of nodes dead for a minute
			// go (their bindings as soon as they are not live).
			now := m.now()
			sctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL)
			if err := m.st.NodesSweep(sctx, now, now.Add(-time.Minute)); err != nil && ctx.Err() == nil {
				m.log.Warn("cluster sweep failed", "err", err)
			}
			cancel()
		}
	}
}

// renew extends the held leases and closes Lost of those the store no longer gives this node.
func (m *Member) renew(ctx context.Context) error {
	m.amu.Lock()
	defer m.amu.Unlock()
	now := m.now()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.LeaseTTL/2)
	defer cancel()
	got, err := m.st.LeaseRenew(ctx, m.self.ID, now, now.Add(m.cfg.LeaseTTL))
	if err != nil {
		return err
	}
	keep := map[leaseKey]bool{}
	for _, l := range got {
		keep[leaseKey{l.Name, l.Slot}] = true
	}
	m.mu.Lock()
	var orphans []leaseKey
	for k := range keep {
		if m.held[k] == nil {
			orphans = append(orphans, k)
		}
	}
	m.mu.Unlock()
	// Slots renewed in the store but given up here (the guard fired, the store came back):
	// free them for the others rather than renew them unused.
	for _, k := range orphans {
		if err := m.st.LeaseRelease(ctx, k.name, k.slot, m.self.ID); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastOK = now
	for k, h := range m.held {
		if !keep[k] {
			m.log.Warn("lease lost", "lease", k.name, "slot", k.slot)
			h.lose()
			delete(m.held, k)
		}
	}
	return nil
}

func (m *Member) loseAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, h := range m.held {
		h.lose()
		delete(m.held, k)
	}
}

// leave removes the node from the store (a clean stop), releasing its leases.
func (m *Member) leave() {
	m.loseAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.st.NodeLeave(ctx, m.self.ID); err != nil {
		m.log.Warn("leave cluster", "err", err)
	}
}

// ErrNoSlot means every slot of a lease is held by live nodes (or this node holds its share).
var ErrNoSlot = errors.New("cluster: no free lease slot")

// Acquire takes a free slot of lease name (slots in the whole cluster, at most maxPerNode on
// this node when > 0). It returns ErrNoSlot when none is free; try again on a later heartbeat.
// The slot stays held, renewed by Run, until Release or until the node dies or loses the
// store for a lease TTL.
func (m *Member) Acquire(ctx context.Context, name string, slots, maxPerNode int) (*Held, error) {
	if m.draining.Load() {
		return nil, ErrNoSlot
	}
	m.amu.Lock()
	defer m.amu.Unlock()
	now := m.now()
	slot, err := m.st.LeaseAcquire(ctx, LeaseParams{Name: name, NodeID: m.self.ID, Slots: slots, MaxPerNode: maxPerNode, Now: now, Until: now.Add(m.cfg.LeaseTTL)})
	if err != nil {
		if errors.Is(err, problem.ErrConflict) {
			return nil, ErrNoSlot
		}
		return nil, err
	}
	h := &Held{Name: name, Slot: slot, lost: make(chan struct{})}
	m.mu.Lock()
	m.held[leaseKey{name, slot}] = h
	m.mu.Unlock()
	return h, nil
}

// Release frees a held slot for another node.
func (m *Member) Release(ctx context.Context, h *Held) error {
	m.amu.Lock()
	defer m.amu.Unlock()
	m.mu.Lock()
	delete(m.held, leaseKey{h.Name, h.Slot})
	m.mu.Unlock()
	h.lose()
	return m.st.LeaseRelease(ctx, h.Name, h.Slot, m.self.ID)
}

// Nodes is the live cluster.
func (m *Member) Nodes(ctx context.Context) ([]Node, error) { return m.st.Nodes(ctx, m.now()) }

// Leases are the leases held in the cluster.
func (m *Member) Leases(ctx context.Context) ([]Lease, error) { return m.st.Leases(ctx, m.now()) }

// Holders are the other live nodes holding devices of identity (node-to-node forks go there).
func (m *Member) Holders(ctx context.Context, identity string) ([]Node, error) {
	start := time.Now()
	ns, err := m.st.BindingHolders(ctx, identity, m.now())
	m.holders.Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ns, func(n Node) bool { return n.ID == m.self.ID || n.SIPAddr == "" }), nil
}

// PutBindings publishes this node's bindings of identity (the registrar's location service
// calls it after every change).
func (m *Member) PutBindings(ctx context.Context, identity string, bs []Binding) error {
	for i := range bs {
		bs[i].NodeID, bs[i].Identity = m.self.ID, identity
	}
	return m.st.BindingsPut(ctx, m.self.ID, identity, bs)
}

// SetHTTPAddr records the node's HTTP listener (bound after NewMember) for the cluster view.
func (m *Member) SetHTTPAddr(addr string) { m.self.HTTPAddr = addr }
