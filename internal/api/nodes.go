package api

import (
	"context"
	"net/http"

	"github.com/telgw/telgw/internal/cluster"
)

// ClusterView is what GET /telgw/nodes reads: the live nodes with their leases.
type ClusterView interface {
	View(ctx context.Context) ([]cluster.NodeView, error)
	ID() string
}

type nodeJSON struct {
	cluster.NodeView
	// Self marks the node that answered.
	Self bool `json:"self"`
}

// MountNodes serves the operator's cluster view:
//
//	GET /telgw/nodes    live nodes: addresses, start, last heartbeat, draining, calls in
//	                    progress, registered devices, leases held
func (s *Server) MountNodes(v ClusterView) {
	s.authed.Get("/telgw/nodes", func(w http.ResponseWriter, r *http.Request) {
		ns, err := v.View(r.Context())
		if err != nil {
			WriteError(w, r, s.log, err)
			return
		}
		out := make([]nodeJSON, 0, len(ns))
		for _, n := range ns {
			out = append(out, nodeJSON{NodeView: n, Self: n.ID == v.ID()})
		}
		WriteJSON(w, http.StatusOK, map[string]any{"value": out})
	})
}
