package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/store"
	"github.com/telgw/telgw/internal/store/storetest"
)

// TestMain fails the package's tests when a goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fast = cluster.Config{Heartbeat: 100 * time.Millisecond, LeaseTTL: 400 * time.Millisecond}

func member(t *testing.T, st cluster.Store, name, sip string) *cluster.Member {
	t.Helper()
	cfg := fast
	cfg.NodeName = name
	m, err := cluster.NewMember(cfg, st, nil, nil, sip, "127.0.0.1:8080", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// run runs m until the returned stop is called (a clean stop: the node leaves).
func run(m *cluster.Member) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMembers(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(testing.TB) *store.DB) {
		t.Run("LeaveAndDie", func(t *testing.T) { membersLeaveAndDie(t, open(t)) })
		t.Run("LeasesMove", func(t *testing.T) { membersLeasesMove(t, open(t)) })
	})
}

// membersLeaveAndDie: a node that stops cleanly leaves at once; one that stops heartbeating
// (killed) is gone within the lease TTL, and so are its users' devices.
func membersLeaveAndDie(t *testing.T, st *store.DB) {
	ctx := context.Background()
	a, b, c := member(t, st, "a", "127.0.0.2:5060"), member(t, st, "b", "127.0.0.3:5060"), member(t, st, "c", "127.0.0.4:5060")
	stopA, stopB := run(a), run(b)
	defer stopB()
	if err := c.PutBindings(ctx, "8:acs:u", []cluster.Binding{{Key: "i:1", Contact: "sip:x@y.invalid", Expires: time.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	hs, err := b.Holders(ctx, "8:acs:u")
	if err != nil || len(hs) != 1 || hs[0].ID != c.ID() || hs[0].SIPAddr != "127.0.0.4:5060" {
		t.Fatalf("holders seen from b: %+v, %v", hs, err)
	}
	if hs, _ := c.Holders(ctx, "8:acs:u"); len(hs) != 0 {
		t.Fatalf("c finds itself among the other holders: %+v", hs)
	}
	stopA()
	if ns, err := b.Nodes(ctx); err != nil || len(ns) != 2 {
		t.Fatalf("after a left: %+v, %v", ns, err)
	}
	// c never runs its heartbeat: it is dead after the TTL, its user's device with it.
	start := time.Now()
	eventually(t, "c taken for dead", func() bool {
		ns, _ := b.Nodes(ctx)
		return len(ns) == 1 && ns[0].ID == b.ID()
	})
	if d := time.Since(start); d > fast.LeaseTTL+time.Second {
		t.Fatalf("death noticed after %s, TTL %s", d, fast.LeaseTTL)
	}
	if hs, _ := b.Holders(ctx, "8:acs:u"); len(hs) != 0 {
		t.Fatalf("dead c still holds the user's devices: %+v", hs)
	}
	v, err := b.View(ctx)
	if err != nil || len(v) != 1 || v[0].Name != "b" || v[0].HTTPAddr != "127.0.0.1:8080" {
		t.Fatalf("view %+v, %v", v, err)
	}
}

// membersLeasesMove: two slots for the cluster; a third node gets one when a holder dies, and
// the dead holder's Lost fires when it learns it lost the slot.
func membersLeasesMove(t *testing.T, st *store.DB) {
	ctx := context.Background()
	a, b, c := member(t, st, "a", ""), member(t, st, "b", ""), member(t, st, "c", "")
	stopA, stopC := run(a), run(c)
	defer stopA()
	defer stopC()
	ha, err := a.Acquire(ctx, "smpp:c1", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(ctx, "smpp:c1", 2, 1); !errors.Is(err, cluster.ErrNoSlot) {
		t.Fatalf("a past its share: %v", err)
	}
	hb, err := b.Acquire(ctx, "smpp:c1", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Acquire(ctx, "smpp:c1", 2, 1); !errors.Is(err, cluster.ErrNoSlot) {
		t.Fatalf("c with both slots held: %v", err)
	}
	// b does not renew (it runs no heartbeat): its slot moves to c after the TTL.
	var hc *cluster.Held
	eventually(t, "c takes b's slot", func() bool {
		h, err := c.Acquire(ctx, "smpp:c1", 2, 1)
		hc = h
		return err == nil
	})
	if hc.Slot != hb.Slot {
		t.Fatalf("c got slot %d, b held %d", hc.Slot, hb.Slot)
	}
	// a kept its slot all along.
	select {
	case <-ha.Lost():
		t.Fatal("a lost a lease it renewed")
	default:
	}
	// b wakes up: its first renewal tells it the slot is gone.
	stopB := run(b)
	defer stopB()
	select {
	case <-hb.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("b never learned it lost its slot")
	}
	ls, err := a.Leases(ctx)
	if err != nil || len(ls) != 2 {
		t.Fatalf("leases %+v, %v", ls, err)
	}
	if err := c.Release(ctx, hc); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "smpp:c1", 2, 1); err != nil {
		t.Fatalf("b after c released: %v", err)
	}
}

// failing is a store whose writes fail while broken is set.
type failing struct {
	cluster.Store
	broken atomic.Bool
}

var errDown = errors.New("store down")

func (f *failing) NodeHeartbeat(ctx context.Context, n cluster.Node) error {
	if f.broken.Load() {
		return errDown
	}
	return f.Store.NodeHeartbeat(ctx, n)
}

// TestLeaseLostWhenStoreUnreachable: a node that cannot reach the store for a lease TTL must
// assume the others took its leases, and stop what they guard.
func TestLeaseLostWhenStoreUnreachable(t *testing.T) {
	f := &failing{Store: storetest.OpenSQLite(t)}
	m := member(t, f, "a", "")
	stop := run(m)
	defer stop()
	h, err := m.Acquire(context.Background(), "smpp:c1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.broken.Store(true)
	select {
	case <-h.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("lease not given up while the store was unreachable")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  cluster.Config
		want string
	}{
		{cluster.DefaultConfig(), ""},
		{cluster.Config{Heartbeat: time.Second, LeaseTTL: 2 * time.Second}, "leaseTTL"},
		{cluster.Config{Heartbeat: time.Millisecond, LeaseTTL: time.Second}, "heartbeat"},
		{cluster.Config{Heartbeat: time.Second, LeaseTTL: 5 * time.Second, SIPAddr: "0.0.0.0:5060"}, "sipAddr"},
		{cluster.Config{Heartbeat: time.Second, LeaseTTL: 5 * time.Second, SIPAddr: "10.0.0.1"}, "sipAddr"},
		{cluster.Config{Heartbeat: time.Second, LeaseTTL: 5 * time.Second, SIPAddr: "10.0.0.1:5060"}, ""},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// BenchmarkHolders is the registration lookup every call to a WebRTC user makes in a
// cluster: which other live nodes hold the user's devices. The store holds 3 nodes with
// 2,000 users of 2 devices each.
func BenchmarkHolders(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		b.Run(d.name, func(b *testing.B) {
			st := d.open(b)
			ctx := context.Background()
			ms := make([]*cluster.Member, 3)
			for i := range ms {
				m, err := cluster.NewMember(cluster.DefaultConfig(), st, nil, nil, fmt.Sprintf("127.0.0.%d:5060", i+2), "", "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Join(ctx); err != nil {
					b.Fatal(err)
				}
				ms[i] = m
			}
			exp := time.Now().Add(time.Hour)
			for u := range 2000 {
				m := ms[u%3]
				bs := []cluster.Binding{{Key: "i:1", Contact: "sip:a@x.invalid", Expires: exp}, {Key: "i:2", Contact: "sip:b@x.invalid", Expires: exp}}
				if err := m.PutBindings(ctx, fmt.Sprintf("8:acs:user%d", u), bs); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				hs, err := ms[0].Holders(ctx, fmt.Sprintf("8:acs:user%d", i%2000))
				if err != nil {
					b.Fatal(err)
				}
				if want := (i%2000)%3 != 0; (len(hs) == 1) != want {
					b.Fatalf("user%d: %d holders", i%2000, len(hs))
				}
			}
		})
	}
}

// TestRejoin: a node whose heartbeats failed for a lease TTL is told, once they succeed again,
// to publish what it holds again.
func TestRejoin(t *testing.T) {
	f := &failing{Store: storetest.OpenSQLite(t)}
	m := member(t, f, "a", "")
	rejoined := make(chan struct{}, 1)
	m.OnRejoin = func() {
		select {
		case rejoined <- struct{}{}:
		default:
		}
	}
	stop := run(m)
	defer stop()
	time.Sleep(3 * fast.Heartbeat)
	select {
	case <-rejoined:
		t.Fatal("rejoin without an absence")
	default:
	}
	f.broken.Store(true)
	time.Sleep(fast.LeaseTTL + 2*fast.Heartbeat)
	f.broken.Store(false)
	select {
	case <-rejoined:
	case <-time.After(5 * time.Second):
		t.Fatal("no rejoin after the store came back")
	}
}

// cutStore is a cluster store that can be cut off from one node.
type cutStore struct {
	cluster.Store
	down atomic.Bool
}

func (s *cutStore) NodeHeartbeat(ctx context.Context, n cluster.Node) error {
	if s.down.Load() {
		return errors.New("store unreachable")
	}
	return s.Store.NodeHeartbeat(ctx, n)
}

func (s *cutStore) LeaseRenew(ctx context.Context, node string, now, until time.Time) ([]cluster.Lease, error) {
	if s.down.Load() {
		return nil, errors.New("store unreachable")
	}
	return s.Store.LeaseRenew(ctx, node, now, until)
}

func TestLeaseGuard(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, open func(testing.TB) *store.DB) { leaseGuard(t, open(t)) })
}

// leaseGuard: a node cut off from the store gives its slot up before the others may take it
// (no slot has two users at once); when the store comes back before the slot expired, the
// node frees the slot it no longer uses instead of renewing it for nothing.
func leaseGuard(t *testing.T, st *store.DB) {
	ctx := context.Background()
	cs := &cutStore{Store: st}
	cfg := cluster.Config{NodeName: "a", Heartbeat: 100 * time.Millisecond, LeaseTTL: time.Second}
	a, err := cluster.NewMember(cfg, cs, nil, nil, "", "", "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Join(ctx); err != nil {
		t.Fatal(err)
	}
	b := member(t, st, "b", "")
	stopA, stopB := run(a), run(b)
	defer stopA()
	defer stopB()
	ha, err := a.Acquire(ctx, "smpp:c1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // renewed a few times
	cs.down.Store(true)
	cut := time.Now()
	select {
	case <-ha.Lost():
	case <-time.After(2 * time.Second):
		t.Fatal("a kept its slot with the store cut off")
	}
	lost := time.Since(cut)
	if _, err := b.Acquire(ctx, "smpp:c1", 1, 0); !errors.Is(err, cluster.ErrNoSlot) {
		t.Fatalf("b took the slot before a gave it up (%v after the cut): %v", lost, err)
	}
	cs.down.Store(false)
	eventually(t, "b takes the slot a freed", func() bool {
		_, err := b.Acquire(ctx, "smpp:c1", 1, 0)
		return err == nil
	})
	t.Logf("a gave its slot up %v after the store was cut", lost.Round(10*time.Millisecond))
}
