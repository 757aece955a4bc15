package app

import (
	"context"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip"
)

// setupSIP wires the sip domain: the B2BUA on sip.addr (UDP and TCP, and sip.tls) with the configured
// trunks, the ACS SIP routing API and operator routes, call routes from the numbers domain,
// routing/credentials/CDRs in the store.
func (a *App) setupSIP(ctx context.Context) error {
	cfg, err := a.Config.SIP.ServiceConfig() // parse errors were reported by config.Validate in New
	if err != nil {
		return err
	}
	cfg.Logger, cfg.Registerer = a.Log.With("component", "sip"), a.Registry
	svc, err := sip.New(cfg, sip.Deps{Router: a.callRouter(), Store: a.DB, Users: a.Users})
	if err != nil {
		return err
	}
	if err := svc.Admin().LoadRouting(ctx); err != nil {
		svc.Close()
		return err
	}
	a.SIP = svc
	a.API.MountSIP(svc)
	a.runners = append(a.runners, svc.Run)
	a.closers = append(a.closers, svc.Close)
	return nil
}

// callRouter is the call domain's routing decision over this node's number inventory.
func (a *App) callRouter() calls.NumberRouter {
	if a.Numbers == nil {
		return calls.NumberRouter{}
	}
	return calls.NumberRouter{Numbers: a.Numbers}
}
