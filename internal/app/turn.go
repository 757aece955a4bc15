package app

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/turn"
)

// setupTURN starts the embedded STUN/TURN server and serves the networkTraversal API.
func (a *App) setupTURN(_ context.Context) error {
	if !a.Config.TURN.Enabled {
		return nil
	}
	cfg, err := a.Config.TURN.ServerConfig()
	if err != nil {
		return err
	}
	secret := a.Config.TURN.Secret
	cfg.Secret = func() string {
		if secret != "" {
			return secret
		}
		return a.Keys.Current().TURNSecret
	}
	trunks := &trunkGuard{sip: a.SIP}
	cfg.Guarded = func() turn.Guarded { return a.turnGuarded(trunks) }
	cfg.Identities = turnIdentities{a.Identity}
	srv, err := turn.New(cfg, a.Log.With("component", "turn"), a.Registry)
	if err != nil {
		return err
	}
	a.TURN = srv
	a.closers = append(a.closers, func() { _ = srv.Close() })
	a.API.MountTraversal(a.Identity, srv)
	return nil
}

// turnGuarded is what the TURN relay must never reach: telgw's listeners (SIP UDP/TCP/TLS, HTTP
// with SIP over WebSocket), the addresses telgw advertises, and the trunks.
func (a *App) turnGuarded(trunks *trunkGuard) turn.Guarded {
	var g turn.Guarded
	addListener := func(hostport string) {
		if ap, err := netip.ParseAddrPort(hostport); err == nil {
			g.Listeners = append(g.Listeners, ap)
		}
	}
	addIP := func(host string) {
		if ip, err := netip.ParseAddr(host); err == nil {
			g.OwnIPs = append(g.OwnIPs, ip)
		}
	}
	if p := a.httpAddr.Load(); p != nil {
		g.Listeners = append(g.Listeners, *p)
	} else {
		addListener(a.Config.HTTP.Addr)
	}
	if a.SIP != nil {
		g.Listeners = append(g.Listeners, a.SIP.Addr())
		if ap := a.SIP.TLSAddr(); ap.IsValid() {
			g.Listeners = append(g.Listeners, ap)
		}
	}
	sc := a.Config.SIP
	addIP(sc.Host)
	addIP(sc.Media.ListenIP)
	addIP(sc.Media.ExternalIP)
	for _, ip := range sc.WebRTC.PublicIPs {
		addIP(ip)
	}
	if u, err := url.Parse(a.Config.HTTP.PublicURL); err == nil {
		addIP(u.Hostname())
	}
	// Advertised addresses reach the listeners' ports too (1:1 NAT, load balancer).
	for _, l := range g.Listeners {
		for _, ip := range g.OwnIPs {
			g.Listeners = append(g.Listeners, netip.AddrPortFrom(ip, l.Port()))
		}
	}
	g.Trunks = trunks.addrs()
	return g
}

// trunkGuard resolves the SIP trunks' addresses for the TURN relay's deny list: again at once
// when the trunk table changes (SetRouting, the routing API), and in the background every
// trunkResolveEvery so DNS changes are seen too.
type trunkGuard struct {
	sip *sip.Service

	mu        sync.Mutex
	key       string
	at        time.Time
	resolved  []netip.AddrPort
	refreshes bool
}

const trunkResolveEvery = time.Minute

func (g *trunkGuard) addrs() []netip.AddrPort {
	if g.sip == nil {
		return nil
	}
	var hostports []string
	for _, t := range g.sip.Admin().Trunks() {
		hostports = append(hostports, t.Address)
	}
	key := strings.Join(hostports, ",")
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case key != g.key:
		g.key, g.at, g.resolved = key, time.Now(), resolveHostPorts(hostports)
	case time.Since(g.at) > trunkResolveEvery && !g.refreshes:
		g.refreshes = true
		go func() {
			r := resolveHostPorts(hostports)
			g.mu.Lock()
			defer g.mu.Unlock()
			g.refreshes = false
			if g.key == key {
				g.at, g.resolved = time.Now(), r
			}
		}()
	}
	return g.resolved
}

// resolveHostPorts resolves each host:port (a name to all its addresses), skipping failures.
func resolveHostPorts(hostports []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, hp := range hostports {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(ip, uint16(p)))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ips, _ := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
		}
	}
	return out
}

// turnIdentities adapts identity.Service to turn.Identities.
type turnIdentities struct{ ids *identity.Service }

func (t turnIdentities) IdentityExists(ctx context.Context, id string) (bool, error) {
	_, err := t.ids.Get(ctx, id)
	if errors.Is(err, problem.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
