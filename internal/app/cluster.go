package app

import (
	"context"
	"errors"
	"time"

	"github.com/telgw/telgw/internal/cluster"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/store"
)

// ErrDrain is the cancel cause of Run's context that asks for a drain (SIGTERM) rather than
// an immediate stop: the node stops taking calls, lets those in progress finish for up to
// http.shutdownTimeout, then stops.
var ErrDrain = errors.New("drain")

// setupCluster makes the node a member of its cluster (every node is one; on SQLite the only
// one): its row and heartbeat in the store, its users' bindings published for the other
// nodes, node-to-node calls signed with a key derived from the access keys, and the cluster
// view at /telgw/nodes.
func (a *App) setupCluster(_ context.Context) error {
	cfg := a.Config.Cluster.MemberConfig()
	sipAddr := ""
	if a.SIP != nil {
		sipAddr = a.SIP.Addr().String()
		if ip := a.SIP.Addr().Addr(); ip.IsUnspecified() && cfg.SIPAddr == "" {
			if a.DB.Dialect() == store.Postgres { // on SQLite there are no other nodes
				a.Log.Warn("sip.addr is unspecified and cluster.sipAddr is not set: other nodes cannot send calls for this node's users here")
			}
			sipAddr = ""
		}
	}
	m, err := cluster.NewMember(cfg, a.DB, a.Log.With("component", "cluster"), a.Registry, sipAddr, "", a.version)
	if err != nil {
		return err
	}
	a.Member = m
	m.Stats = func() cluster.Stats {
		var s cluster.Stats
		if a.SIP != nil {
			s.Calls = a.SIP.ActiveCalls()
		}
		if a.Users != nil && a.Users.Registrar != nil {
			s.Registrations = a.Users.Registrar.Location.Count()
		}
		return s
	}
	a.API.MountNodes(m)
	// smpp.binds are the cluster's: each node binds the slots it holds. On SQLite the node is
	// alone and binds them all at once, even right after a crash left its old slots leased.
	if a.DB.Dialect() == store.Postgres {
		for _, sc := range a.smppCarriers {
			sc.UseLeases(m)
		}
	}
	if a.Users != nil && a.Users.Registrar != nil {
		loc := a.Users.Registrar.Location
		log := a.Log.With("component", "cluster")
		m.OnRejoin = loc.TouchAll
		a.runners = append(a.runners, func(ctx context.Context) error {
			return loc.Publish(ctx, func(ctx context.Context, identity string, cs []registrar.Contact) error {
				bs := make([]cluster.Binding, 0, len(cs))
				for _, c := range cs {
					bs = append(bs, cluster.Binding{Key: c.Key(), Contact: c.URI.String(), UserAgent: c.UserAgent, Expires: c.Expires})
				}
				err := m.PutBindings(ctx, identity, bs)
				if err != nil && ctx.Err() == nil {
					log.Warn("publish registrations", "user", identity, "err", err)
				}
				return err
			}, time.Second)
		})
		a.Users.Peers = &sip.Peers{
			Self: m.ID(),
			Holders: func(ctx context.Context, user string) ([]sip.PeerNode, error) {
				ns, err := m.Holders(ctx, user)
				out := make([]sip.PeerNode, 0, len(ns))
				for _, n := range ns {
					out = append(out, sip.PeerNode{ID: n.ID, Addr: n.SIPAddr})
				}
				return out, err
			},
			Keys: func() [][]byte {
				k := a.Keys.Current()
				return [][]byte{cluster.PeerKey(k.Primary), cluster.PeerKey(k.Secondary)}
			},
		}
	}
	return nil
}

// joinCluster announces the node (before it serves, so the others know it) with its HTTP
// address, and runs its heartbeat.
func (a *App) joinCluster(ctx context.Context) error {
	if a.Member == nil {
		return nil
	}
	if a.listener != nil {
		a.Member.SetHTTPAddr(a.listener.Addr().String())
	}
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return a.Member.Join(jctx)
}

// drain stops taking new work and waits for the calls in progress, up to
// http.shutdownTimeout: /readyz answers 503, the cluster learns the node is draining (no more
// node-to-node calls), SIP answers OPTIONS and new INVITEs 503 (a dispatcher fails over) and
// closes idle WebSockets with a reconnect hint.
func (a *App) drain() {
	start := time.Now()
	a.API.SetReady(false)
	if a.Member != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		a.Member.SetDraining(ctx)
		cancel()
	}
	left := 0
	if a.SIP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout)
		left = a.SIP.Drain(ctx)
		cancel()
	}
	a.Log.Info("drained", "took", time.Since(start).Round(time.Millisecond), "calls_left", left)
}
