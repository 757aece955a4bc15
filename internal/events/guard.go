package events

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// Guard keeps webhook deliveries from reaching telgw's own network (SSRF): a subscriber URL
// must be http(s) and its host must not be, or resolve to, a loopback, private (RFC 1918, RFC
// 4193 ULA), link-local (including the 169.254.169.254 cloud metadata service), CGNAT (RFC
// 6598), multicast, reserved or unspecified address, unless AllowPrivate is set or the address
// is inside one of Allow. The check runs when a subscription is created and again on every
// dial, on the address actually connected to, so a name that later resolves inward (DNS
// rebinding) is still refused. The zero Guard refuses internal addresses.
type Guard struct {
	// AllowPrivate turns the address check off (a lab, or subscribers on the operator's LAN).
	AllowPrivate bool
	// Allow lists ranges that are reachable even though they are internal.
	Allow []netip.Prefix
	// Resolver looks names up at creation; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// ErrBlockedAddress marks a refused destination (wrapped with the address).
var ErrBlockedAddress = errors.New("destination address is not allowed for webhooks")

// blocked are the ranges a webhook may not reach by default. IPv4-mapped IPv6 addresses are
// unmapped before the check; NAT64 (RFC 6052) addresses are checked on the IPv4 they embed.
var blocked = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network" and unspecified (RFC 1122 §3.2.1.3)
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // CGNAT shared address space (RFC 6598)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata (RFC 3927)
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments (RFC 6890)
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking (RFC 2544), used inside some clouds
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved and limited broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"fc00::/7",        // unique local (RFC 4193)
		"fe80::/10",       // link-local
		"fec0::/10",       // deprecated site-local
		"ff00::/8",        // multicast
		"2001:db8::/32",   // documentation
		"100::/64",        // discard-only (RFC 6666)
		"64:ff9b:1::/48",  // local-use NAT64 (RFC 8215)
		"::ffff:0:0:0/96", // SIIT translated addresses (RFC 2765)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052 §2.1: IPv4 in the last 32 bits
	sixTo4 = netip.MustParsePrefix("2002::/16")    // RFC 3056 §2: IPv4 in bits 16–47
)

// CheckIP returns nil when ip may be reached, otherwise an error wrapping ErrBlockedAddress.
func (g *Guard) CheckIP(ip netip.Addr) error {
	if g == nil {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrBlockedAddress)
	}
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if g.AllowPrivate {
		return nil
	}
	check := ip
	switch b := ip.As16(); {
	case nat64.Contains(ip):
		check = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	case sixTo4.Contains(ip):
		check = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	}
	for _, p := range blocked {
		if p.Contains(check) {
			return fmt.Errorf("%w: %s is in %s", ErrBlockedAddress, ip, p)
		}
	}
	return nil
}

// CheckURL validates a subscriber URL at creation: http or https, a host, no user info, and
// (unless the guard allows it) no internal address, literal or among those the host resolves
// to now. Errors are problem.Invalid naming field.
func (g *Guard) CheckURL(ctx context.Context, field, raw string) error {
	return g.checkURL(ctx, field, raw, true)
}

// checkURL is CheckURL; resolve false checks literal addresses only (configured subscribers
// at start-up, where a DNS hiccup must not stop telgw: the dial-time check still applies).
func (g *Guard) checkURL(ctx context.Context, field, raw string, resolve bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return problem.Invalid(field, "%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return problem.Invalid(field, "the URL must not carry credentials; use the signing secret")
	}
	if g == nil || g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := g.CheckIP(ip); err != nil {
			return problem.Invalid(field, "%s: %v", raw, err)
		}
		return nil
	}
	if !resolve {
		return nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return problem.Invalid(field, "host %q does not resolve", host)
	}
	for _, ip := range addrs {
		if err := g.CheckIP(ip); err != nil {
			return problem.Invalid(field, "%s: host %q resolves to an internal address: %v", raw, host, err)
		}
	}
	return nil
}

// control is a net.Dialer Control function: it runs after the name is resolved and before
// connect(2), on the address actually dialled, so a rebinding resolver cannot slip past.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBlockedAddress, address)
	}
	return g.CheckIP(ap.Addr())
}

// Client returns an http.Client for deliveries: every connection passes the guard at dial
// time, no proxy from the environment (a proxy would hide the destination from the check),
// and redirects are not followed (a 3xx answer is returned as is, and is a failed delivery).
func (g *Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	if g.Resolver != nil {
		d.Resolver = g.Resolver
	}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ParseCIDRs parses an allow-list of CIDR prefixes (a bare address is a single-host prefix).
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix or address", s)
			}
			out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix: %v", s, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
