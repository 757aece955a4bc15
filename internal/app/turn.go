package app

import (
	"context"

	"github.com/telgw/telgw/internal/turn"
)

// setupTURN starts the embedded STUN/TURN server and serves the networkTraversal API.
func (a *App) setupTURN(_ context.Context) error {
	if !a.Config.TURN.Enabled {
		return nil
	}
	c := a.Config.TURN
	srv, err := turn.New(turn.Config{
		Addr: c.Addr, PublicHost: c.PublicHost, RelayIP: c.RelayIP, MinPort: c.MinPort, MaxPort: c.MaxPort, Realm: c.Realm,
		Secret: func() string {
			if c.Secret != "" {
				return c.Secret
			}
			return a.Keys.Current().TURNSecret
		},
	}, a.Log.With("component", "turn"), a.Registry)
	if err != nil {
		return err
	}
	a.TURN = srv
	a.closers = append(a.closers, func() { _ = srv.Close() })
	a.API.MountTraversal(a.Identity, srv)
	return nil
}
