package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sip/number"
)

// setupSIP wires the sip domain: the B2BUA on sip.addr (UDP and TCP, and sip.tls) with the configured
// trunks, the ACS SIP routing API and operator routes, call routes from the numbers domain,
// routing/credentials/CDRs in the store.
func (a *App) setupSIP(ctx context.Context) error {
	c := a.Config.SIP
	trunks := make([]sip.TrunkConfig, 0, len(c.Trunks))
	for i, t := range c.Trunks {
		tc := sip.TrunkConfig{Name: t.Name, Address: t.Address, Transport: t.Transport,
			InboundUsername: t.Inbound.Username, InboundPassword: t.Inbound.Password,
			Username: t.Auth.Username, Password: t.Auth.Password,
			MaxCalls: t.MaxCalls, CPS: t.CPS, OptionsInterval: t.OptionsInterval,
			Format:   number.Format{Style: t.NumberFormat.Style, TechPrefix: t.NumberFormat.TechPrefix, UserPhone: t.NumberFormat.UserPhone},
			Register: t.Register.Enabled, RegisterExpires: t.Register.Expires}
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
	media := bridge.Config{PortMin: c.Media.PortMin, PortMax: c.Media.PortMax, MediaTimeout: c.Media.Timeout}
	listen := c.Media.ListenIP
	if listen == "" {
		listen, _, _ = net.SplitHostPort(c.Addr)
	}
	if ip, err := netip.ParseAddr(listen); err == nil {
		media.ListenIP = ip
	}
	if c.Media.ExternalIP != "" {
		ip, err := netip.ParseAddr(c.Media.ExternalIP)
		if err != nil {
			return fmt.Errorf("sip.media.externalIP: %q is not an IP address", c.Media.ExternalIP)
		}
		media.ExternalIP = ip
	}
	codecs := make([]string, len(c.Codecs))
	for i, k := range c.Codecs {
		codecs[i] = strings.ToUpper(k) // sdp.Codec.Key form
	}
	tlsCfg := sip.TLSConfig{Addr: c.TLS.Addr, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, CAFile: c.TLS.CAFile}
	if c.TLS.MinVersion == "1.3" {
		tlsCfg.MinVersion = tls.VersionTLS13
	}
	reject, checkSource := c.RejectUnknownSource, c.DialogSourceCheck
	maxConns := c.MaxConnsPerIP
	if maxConns == 0 {
		maxConns = -1 // no cap
	}
	svc, err := sip.New(sip.Config{Addr: c.Addr, Host: c.Host, Realm: c.Realm, DigestNonceTTL: c.DigestNonceTTL, Trunks: trunks,
		RejectUnknownSource: &reject, DialogSourceCheck: &checkSource,
		RingTimeout: c.RingTimeout, FailoverTimeout: c.FailoverTimeout, SessionExpires: c.SessionExpires,
		SourceRate: c.SourceRate, SourceBurst: c.SourceBurst, Codecs: codecs, Media: media, TLS: tlsCfg,
		IdleTimeout: c.IdleTimeout, RequestTimeout: c.RequestTimeout, MaxConnsPerIP: maxConns, WSRegisterTimeout: c.WebRTC.RegisterTimeout,
		Logger: a.Log.With("component", "sip"), Registerer: a.Registry},
		sip.Deps{Router: a.callRouter(), Store: a.DB, Users: a.Users})
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
