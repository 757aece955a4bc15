package smpp

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/sms/smsctest"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// flakyStore is a cluster store that can be cut off, as a node that died (or lost the
// database) looks to the others: its heartbeats and renewals stop reaching the store.
type flakyStore struct {
	cluster.Store
	down atomic.Bool
}

var errCut = errors.New("store unreachable")

func (s *flakyStore) NodeHeartbeat(ctx context.Context, n cluster.Node) error {
	if s.down.Load() {
		return errCut
	}
	return s.Store.NodeHeartbeat(ctx, n)
}

func (s *flakyStore) LeaseRenew(ctx context.Context, node string, now, until time.Time) ([]cluster.Lease, error) {
	if s.down.Load() {
		return nil, errCut
	}
	return s.Store.LeaseRenew(ctx, node, now, until)
}

func (s *flakyStore) LeaseAcquire(ctx context.Context, p cluster.LeaseParams) (int, error) {
	if s.down.Load() {
		return 0, errCut
	}
	return s.Store.LeaseAcquire(ctx, p)
}

// node is one cluster member running one leased carrier.
type node struct {
	m    *cluster.Member
	st   *flakyStore
	c    *Carrier
	stop func()
}

func startNode(t *testing.T, db *store.DB, name string, s *smsctest.SMSC, links int) *node {
	t.Helper()
	st := &flakyStore{Store: db}
	m, err := cluster.NewMember(cluster.Config{NodeName: name, Heartbeat: 100 * time.Millisecond, LeaseTTL: 500 * time.Millisecond},
		st, nil, nil, "", "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Name: "smsc1", Address: s.Addr(), SystemID: "telgw", Password: "secret", Links: links,
		Logger: testLogger(t).With("node", name), RebindMin: 50 * time.Millisecond, RebindMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.UseLeases(m)
	ctx, cancel := context.WithCancel(context.Background())
	mdone, cdone := make(chan struct{}), make(chan struct{})
	go func() { defer close(mdone); _ = m.Run(ctx) }()
	go func() { defer close(cdone); _ = c.Run(ctx, newRecorder()) }()
	n := &node{m: m, st: st, c: c}
	var once atomic.Bool
	n.stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		<-cdone
		<-mdone
	}
	t.Cleanup(n.stop)
	return n
}

// maxBound is the most sessions the SMSC had bound at once.
func maxBound(s *smsctest.SMSC) int {
	most := 0
	for _, e := range s.All("bind") {
		if n, ok := e["boundNow"].(float64); ok && int(n) > most {
			most = int(n)
		}
	}
	return most
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeasedBinds: smpp.binds are the cluster's. A node alone binds them all; a second node
// gets its share (the first hands one over); a node that drains hands its binds over; a node
// that loses the store unbinds once its lease lapses and a live node binds in its place. The
// SMSC never sees more binds at once than configured.
func TestLeasedBinds(t *testing.T) {
	t.Parallel()
	storetest.Dialects(t, func(t *testing.T, open func(t testing.TB) *store.DB) {
		db := open(t)
		s := smsctest.Start(t, "../../../test/peers", map[string]any{"quiet": true})
		a := startNode(t, db, "a", s, 2)
		waitFor(t, "a alone binds both", 5*time.Second, func() bool { return a.c.Bound() == 2 })

		b := startNode(t, db, "b", s, 2)
		waitFor(t, "a hands one bind to b", 10*time.Second, func() bool { return a.c.Bound() == 1 && b.c.Bound() == 1 })
		// The split holds.
		time.Sleep(1500 * time.Millisecond)
		if a.c.Bound() != 1 || b.c.Bound() != 1 {
			t.Fatalf("binds a %d, b %d after settling", a.c.Bound(), b.c.Bound())
		}

		// Drain: a unbinds, releases, b takes both.
		a.m.SetDraining(context.Background())
		waitFor(t, "b takes a's bind on drain", 5*time.Second, func() bool { return a.c.Bound() == 0 && b.c.Bound() == 2 })
		a.stop()

		// b loses the store: its leases lapse, it unbinds; c (started meanwhile) binds both.
		c := startNode(t, db, "c", s, 2)
		waitFor(t, "b gives c its share", 10*time.Second, func() bool { return b.c.Bound() == 1 && c.c.Bound() == 1 })
		b.st.down.Store(true)
		cut := time.Now()
		waitFor(t, "b unbinds after its lease lapsed", 5*time.Second, func() bool { return b.c.Bound() == 0 })
		waitFor(t, "c binds both", 5*time.Second, func() bool { return c.c.Bound() == 2 })
		t.Logf("bind failover after the store was cut: %v", time.Since(cut).Round(10*time.Millisecond))
		if m := maxBound(s); m > 2 {
			t.Fatalf("the SMSC saw %d binds at once; the cluster has 2", m)
		}
	})
}
