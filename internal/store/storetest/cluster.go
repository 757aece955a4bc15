package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/store"
)

// Cluster runs the cluster store cases: node liveness, the shared location service and
// counted leases, including concurrent acquirers that must never share a slot.
func Cluster(t *testing.T, open func(t testing.TB) *store.DB) {
	t.Run("Nodes", func(t *testing.T) { t.Parallel(); clusterNodes(t, open(t)) })
	t.Run("Bindings", func(t *testing.T) { t.Parallel(); clusterBindings(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { t.Parallel(); clusterLeases(t, open(t)) })
	t.Run("ConcurrentLeases", func(t *testing.T) { t.Parallel(); clusterConcurrentLeases(t, open(t)) })
}

var ct0 = time.UnixMilli(1_800_000_000_000)

func node(id string, at time.Time) cluster.Node {
	return cluster.Node{ID: id, Name: "host-" + id, SIPAddr: "127.0.0.2:5060", HTTPAddr: "127.0.0.2:8080", Version: "test",
		Started: ct0, Heartbeat: at, Expires: at.Add(5 * time.Second)}
}

func clusterNodes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := db.NodeHeartbeat(ctx, node(id, ct0)); err != nil {
			t.Fatal(err)
		}
	}
	b := node("b", ct0.Add(3*time.Second))
	b.Calls, b.Registrations, b.Draining = 7, 3, true
	if err := db.NodeHeartbeat(ctx, b); err != nil {
		t.Fatal(err)
	}
	ns, err := db.Nodes(ctx, ct0.Add(6*time.Second)) // a expired at +5s
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].ID != "b" || ns[0].Calls != 7 || ns[0].Registrations != 3 || !ns[0].Draining ||
		ns[0].SIPAddr != "127.0.0.2:5060" || !ns[0].Started.Equal(ct0) || !ns[0].Expires.Equal(ct0.Add(8*time.Second)) {
		t.Fatalf("live nodes at +6s = %+v, want b only with its stats", ns)
	}
	if err := db.NodesSweep(ctx, ct0.Add(6*time.Second), ct0.Add(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.NodeHeartbeat(ctx, node("a", ct0.Add(7*time.Second))); err != nil { // a "comes back": a new row
		t.Fatal(err)
	}
	if err := db.NodeLeave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	ns, err = db.Nodes(ctx, ct0.Add(7*time.Second))
	if err != nil || len(ns) != 1 || ns[0].ID != "a" {
		t.Fatalf("after b left: %+v, %v", ns, err)
	}
}

func clusterBindings(t *testing.T, db *store.DB) {
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := db.NodeHeartbeat(ctx, node(id, ct0)); err != nil {
			t.Fatal(err)
		}
	}
	exp := ct0.Add(time.Hour)
	put := func(nodeID, user string, keys ...string) {
		t.Helper()
		var bs []cluster.Binding
		for _, k := range keys {
			bs = append(bs, cluster.Binding{Key: k, Contact: "sip:" + k + "@x.invalid;transport=ws", UserAgent: "JsSIP", Expires: exp})
		}
		if err := db.BindingsPut(ctx, nodeID, user, bs); err != nil {
			t.Fatal(err)
		}
	}
	holders := func(user string, at time.Time) []string {
		t.Helper()
		ns, err := db.BindingHolders(ctx, user, at)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	put("a", "8:acs:u1", "i:1", "i:2")
	put("b", "8:acs:u1", "i:3")
	put("c", "8:acs:u2", "i:4")
	if got := fmt.Sprint(holders("8:acs:u1", ct0)); got != "[a b]" {
		t.Fatalf("holders of u1 = %s, want [a b]", got)
	}
	put("a", "8:acs:u1", "i:2") // refresh drops i:1, a still holds u1
	put("b", "8:acs:u1")        // b's only device unregistered
	if got := fmt.Sprint(holders("8:acs:u1", ct0)); got != "[a]" {
		t.Fatalf("holders of u1 after b unregistered = %s, want [a]", got)
	}
	// A draining node is no holder; a dead one neither (its heartbeat lapsed at +5s).
	dr := node("c", ct0)
	dr.Draining = true
	if err := db.NodeHeartbeat(ctx, dr); err != nil {
		t.Fatal(err)
	}
	if got := holders("8:acs:u2", ct0); len(got) != 0 {
		t.Fatalf("draining c holds u2: %v", got)
	}
	if err := db.NodeHeartbeat(ctx, node("b", ct0.Add(4*time.Second))); err != nil {
		t.Fatal(err)
	}
	if got := holders("8:acs:u1", ct0.Add(6*time.Second)); len(got) != 0 {
		t.Fatalf("a is dead at +6s but holds u1: %v", got)
	}
	// An expired binding holds nothing.
	if err := db.BindingsPut(ctx, "b", "8:acs:u3", []cluster.Binding{{Key: "i:9", Contact: "sip:x@y", Expires: ct0.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if got := holders("8:acs:u3", ct0.Add(2*time.Second)); len(got) != 0 {
		t.Fatalf("expired binding of u3 counts: %v", got)
	}
	// A sweep keeps the bindings of a node dead for less than its grace (they count again if
	// it renews), drops them with the node after it, and drops expired bindings.
	if err := db.NodesSweep(ctx, ct0.Add(6*time.Second), ct0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM cluster_bindings WHERE node_id = 'a'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("node a, dead for 1 s, has %d bindings after a sweep (%v), want 1", n, err)
	}
	if err := db.NodeHeartbeat(ctx, node("a", ct0.Add(6*time.Second))); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(holders("8:acs:u1", ct0.Add(7*time.Second))); got != "[a]" {
		t.Fatalf("a renewed: holders of u1 = %s, want [a]", got)
	}
	if err := db.NodesSweep(ctx, ct0.Add(20*time.Second), ct0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM cluster_bindings WHERE node_id = 'a'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("node a, swept, keeps %d bindings (%v)", n, err)
	}
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM cluster_bindings WHERE identity = '8:acs:u3'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("an expired binding survives a sweep (%d, %v)", n, err)
	}
	if err := db.NodeLeave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM cluster_bindings WHERE node_id = 'b'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("node b left but keeps %d bindings (%v)", n, err)
	}
}

func clusterLeases(t *testing.T, db *store.DB) {
	ctx := context.Background()
	acq := func(nodeID string, at time.Time, maxPer int) (int, error) {
		return db.LeaseAcquire(ctx, cluster.LeaseParams{Name: "smpp:c1", NodeID: nodeID, Slots: 2, MaxPerNode: maxPer, Now: at, Until: at.Add(5 * time.Second)})
	}
	if s, err := acq("a", ct0, 1); err != nil || s != 0 {
		t.Fatalf("a: slot %d, %v", s, err)
	}
	if _, err := acq("a", ct0, 1); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("a past its share: %v, want conflict", err)
	}
	if s, err := acq("b", ct0, 0); err != nil || s != 1 {
		t.Fatalf("b: slot %d, %v", s, err)
	}
	if _, err := acq("c", ct0, 0); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("c with both slots taken: %v, want conflict", err)
	}
	if _, err := db.LeaseAcquire(ctx, cluster.LeaseParams{Name: "", NodeID: "a", Slots: 1}); !errors.Is(err, problem.ErrInvalid) {
		t.Fatalf("nameless lease: %v", err)
	}
	// a renews, b does not: at +6s b's slot is free for c, a's is not.
	got, err := db.LeaseRenew(ctx, "a", ct0.Add(4*time.Second), ct0.Add(9*time.Second))
	if err != nil || len(got) != 1 || got[0].Slot != 0 || !got[0].Expires.Equal(ct0.Add(9*time.Second)) {
		t.Fatalf("renew a: %+v, %v", got, err)
	}
	if s, err := acq("c", ct0.Add(6*time.Second), 0); err != nil || s != 1 {
		t.Fatalf("c after b lapsed: slot %d, %v", s, err)
	}
	// b learns it lost its slot: nothing to renew.
	if got, err := db.LeaseRenew(ctx, "b", ct0.Add(6*time.Second), ct0.Add(11*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("renew b after losing: %+v, %v", got, err)
	}
	ls, err := db.Leases(ctx, ct0.Add(6*time.Second))
	if err != nil || len(ls) != 2 || ls[0].NodeID != "a" || ls[1].NodeID != "c" {
		t.Fatalf("leases = %+v, %v", ls, err)
	}
	// Release by a non-holder does nothing; by the holder frees the slot.
	if err := db.LeaseRelease(ctx, "smpp:c1", 0, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := acq("b", ct0.Add(6*time.Second), 0); !errors.Is(err, problem.ErrConflict) {
		t.Fatalf("b took a held slot after a foreign release: %v", err)
	}
	if err := db.LeaseRelease(ctx, "smpp:c1", 0, "a"); err != nil {
		t.Fatal(err)
	}
	if s, err := acq("b", ct0.Add(6*time.Second), 0); err != nil || s != 0 {
		t.Fatalf("b after a released: slot %d, %v", s, err)
	}
	// Leaving frees the leaver's leases.
	if err := db.NodeLeave(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if s, err := acq("a", ct0.Add(6*time.Second), 0); err != nil || s != 1 {
		t.Fatalf("a after c left: slot %d, %v", s, err)
	}
}

// clusterConcurrentLeases: 12 nodes race for 3 slots at once; exactly 3 win, on distinct slots.
func clusterConcurrentLeases(t *testing.T, db *store.DB) {
	ctx := context.Background()
	var mu sync.Mutex
	won := map[int]string{}
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("n%d", i)
			s, err := db.LeaseAcquire(ctx, cluster.LeaseParams{Name: "smpp:race", NodeID: id, Slots: 3, Now: ct0, Until: ct0.Add(5 * time.Second)})
			if errors.Is(err, problem.ErrConflict) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if other, dup := won[s]; dup {
				t.Errorf("slot %d held by %s and %s", s, other, id)
			}
			won[s] = id
		}()
	}
	wg.Wait()
	if len(won) != 3 {
		t.Fatalf("%d slots taken, want 3: %v", len(won), won)
	}
}
