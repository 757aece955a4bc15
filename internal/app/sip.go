package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// setupSIP wires the sip domain: the B2BUA on sip.addr (UDP and TCP) with the configured
// trunks, the ACS SIP routing API and operator routes, call routes from the numbers domain,
// routing/credentials/CDRs in the store.
func (a *App) setupSIP(ctx context.Context) error {
	c := a.Config.SIP
	trunks := make([]sip.TrunkConfig, 0, len(c.Trunks))
	for i, t := range c.Trunks {
		tc := sip.TrunkConfig{Name: t.Name, Address: t.Address, Transport: t.Transport, Username: t.Auth.Username, Password: t.Auth.Password}
		for j, s := range t.Inbound.Allow {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				ip, err2 := netip.ParseAddr(s)
				if err2 != nil {
					return fmt.Errorf("sip.trunks[%d].inbound.allow[%d]: %q is not a CIDR or IP", i, j, s)
				}
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
			tc.Allow = append(tc.Allow, p)
		}
		trunks = append(trunks, tc)
	}
	media := bridge.Config{}
	if host, _, err := net.SplitHostPort(c.Addr); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil {
			media.ListenIP = ip
		}
	}
	svc, err := sip.New(sip.Config{Addr: c.Addr, Trunks: trunks, Media: media, Logger: a.Log.With("component", "sip"), Registerer: a.Registry},
		sip.Deps{Router: sipRouter{a.Numbers}, Store: a.DB, Users: a.Users})
	if err != nil {
		return err
	}
	if err := svc.LoadRouting(ctx); err != nil {
		svc.Close()
		return err
	}
	a.SIP = svc
	a.API.MountSIP(svc)
	a.runners = append(a.runners, svc.Run)
	a.closers = append(a.closers, svc.Close)
	return nil
}

// sipRouter adapts the numbers domain to sip.Router: a purchased number with inbound calling
// routes by its per-number route (SIP URIs today; users and bots are not wired yet, so they,
// like the default route, answer 480).
type sipRouter struct{ svc *numbers.Service }

func (r sipRouter) CallRoute(ctx context.Context, e164 string) (sip.Route, error) {
	if r.svc == nil {
		return nil, sip.ErrUnknownNumber
	}
	rt, err := r.svc.NumberRoute(ctx, e164)
	if errors.Is(err, problem.ErrNotFound) || problem.KindOf(err) == problem.KindInvalid {
		return nil, sip.ErrUnknownNumber
	}
	if err != nil {
		return nil, err
	}
	if !rt.Caps.Calling.Inbound() && !rt.Caps.Calling.Outbound() {
		return nil, sip.ErrUnknownNumber
	}
	switch rt.Route.Kind() {
	case numbers.RouteSIP:
		return sip.SIPRoute{URI: rt.Route.Target()}, nil
	case numbers.RouteUser:
		return sip.UserRoute{User: rt.Route.Target()}, nil
	}
	return nil, nil
}
