package cluster

import (
	"context"
	"time"
)

// NodeView is one live node with the leases it holds: the operator's view of the cluster
// (`telgw nodes`, GET /telgw/nodes).
type NodeView struct {
	Node
	Leases []Lease `json:"leases"`
}

// View lists the live nodes at now, oldest first, each with its leases.
func View(ctx context.Context, st Store, now time.Time) ([]NodeView, error) {
	ns, err := st.Nodes(ctx, now)
	if err != nil {
		return nil, err
	}
	ls, err := st.Leases(ctx, now)
	if err != nil {
		return nil, err
	}
	by := map[string][]Lease{}
	for _, l := range ls {
		by[l.NodeID] = append(by[l.NodeID], l)
	}
	out := make([]NodeView, 0, len(ns))
	for _, n := range ns {
		v := NodeView{Node: n, Leases: by[n.ID]}
		if v.Leases == nil {
			v.Leases = []Lease{}
		}
		out = append(out, v)
	}
	return out, nil
}

// View is the live cluster as this node sees it.
func (m *Member) View(ctx context.Context) ([]NodeView, error) { return View(ctx, m.st, m.now()) }
