package turn

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Guarded is what the relay must never reach on behalf of a client: telgw's own listeners and the
// carriers' addresses. A TURN relay sends from telgw's address, so a permission to these would
// let any holder of a credential speak to them as telgw (RFC 8656 §21.1.3, §21.3.2: the server
// should not relay to addresses it or its network trusts).
type Guarded struct {
	// Listeners are telgw's own listening sockets (SIP UDP/TCP/TLS, HTTP, …). An unspecified
	// address (0.0.0.0, ::) stands for every address of this host.
	Listeners []netip.AddrPort
	// Trunks are the resolved addresses of every configured SIP trunk. Their IPs are refused
	// whole (a browser never needs to reach a carrier directly) unless an IP is telgw's own, then
	// only the port is.
	Trunks []netip.AddrPort
	// OwnIPs are further addresses of this host (public or NAT addresses in the configuration)
	// that an unspecified listener is reachable at.
	OwnIPs []netip.Addr
}

// specialPrefixes are the special-purpose ranges of RFC 6890 (IANA's IPv4 and IPv6
// special-purpose address registries) that a public relay has no business sending to: they
// reach this host, its private network, its provider's network or a group. The same list
// coturn's documentation recommends for denied-peer-ip.
var specialPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",         // "this network", RFC 791 (0.0.0.0 reaches the local host)
		"10.0.0.0/8",        // private, RFC 1918
		"100.64.0.0/10",     // shared address space (CGNAT), RFC 6598
		"127.0.0.0/8",       // loopback, RFC 1122 §3.2.1.3
		"169.254.0.0/16",    // link-local, RFC 3927 (cloud metadata services live here)
		"172.16.0.0/12",     // private, RFC 1918
		"192.0.0.0/24",      // IETF protocol assignments, RFC 6890
		"192.0.2.0/24",      // documentation, RFC 5737
		"192.88.99.0/24",    // 6to4 relay anycast, RFC 3068
		"192.168.0.0/16",    // private, RFC 1918
		"198.18.0.0/15",     // benchmarking, RFC 2544
		"198.51.100.0/24",   // documentation, RFC 5737
		"203.0.113.0/24",    // documentation, RFC 5737
		"224.0.0.0/4",       // multicast, RFC 5771
		"240.0.0.0/4",       // reserved, RFC 1112, and 255.255.255.255 limited broadcast (RFC 919)
		"::/128",            // unspecified, RFC 4291
		"::1/128",           // loopback, RFC 4291
		"::ffff:0:0/96",     // IPv4-mapped, RFC 4291 (checked again unmapped)
		"64:ff9b::/96",      // NAT64 well-known prefix, RFC 6052: reaches any IPv4 address
		"64:ff9b:1::/48",    // local-use NAT64, RFC 8215
		"100::/64",          // discard-only, RFC 6666
		"2001::/23",         // IETF protocol assignments incl. Teredo, RFC 2928, RFC 4380
		"2001:db8::/32",     // documentation, RFC 3849
		"2002::/16",         // 6to4, RFC 3056: embeds any IPv4 address
		"fc00::/7",          // unique local (ULA), RFC 4193
		"fe80::/10",         // link-local, RFC 4291
		"ff00::/8",          // multicast, RFC 4291
		"fec0::/10",         // deprecated site-local, RFC 3879
		"2620:4f:8000::/48", // AS112-v6, RFC 7534
		"192.31.196.0/24",   // AS112-v4, RFC 7535
		"192.52.193.0/24",   // AMT, RFC 7450
		"192.175.48.0/24",   // direct delegation AS112, RFC 7534
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// IsSpecialPeer reports whether ip is in a range the relay refuses unless allowed: loopback,
// private, link-local, CGNAT, multicast, unspecified, broadcast, documentation and the other
// special-purpose ranges of RFC 6890.
func IsSpecialPeer(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsPrivate() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range specialPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// guardSnapshot is Guarded as sets, rebuilt at most once per guardRefresh.
type guardSnapshot struct {
	at        time.Time
	ownIPs    map[netip.Addr]bool
	ownAddrs  map[netip.AddrPort]bool // listeners bound to a specific address
	anyPorts  map[uint16]bool         // listeners bound to an unspecified address
	trunkIPs  map[netip.Addr]bool
	trunkAddr map[netip.AddrPort]bool
}

const guardRefresh = time.Second

// peerPolicy decides which peers a client may relay to (RFC 8656 §9.2 step 3 lets a server
// refuse a permission with 403 Forbidden "for local policy reasons").
type peerPolicy struct {
	allow   []netip.Prefix
	guarded func() Guarded
	hostIPs []netip.Addr // this host's interface addresses, read once at start
	static  Guarded      // the TURN server's own addresses

	mu   sync.Mutex
	snap atomic.Pointer[guardSnapshot]
}

func newPeerPolicy(allow []netip.Prefix, guarded func() Guarded, static Guarded) *peerPolicy {
	p := &peerPolicy{allow: allow, guarded: guarded, static: static}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					p.hostIPs = append(p.hostIPs, ip.Unmap())
				}
			}
		}
	}
	return p
}

func (p *peerPolicy) snapshot() *guardSnapshot {
	now := time.Now()
	if s := p.snap.Load(); s != nil && now.Sub(s.at) < guardRefresh {
		return s
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.snap.Load(); s != nil && now.Sub(s.at) < guardRefresh {
		return s
	}
	g := p.static
	if p.guarded != nil {
		d := p.guarded()
		g.Listeners = append(append([]netip.AddrPort(nil), g.Listeners...), d.Listeners...)
		g.Trunks = append(append([]netip.AddrPort(nil), g.Trunks...), d.Trunks...)
		g.OwnIPs = append(append([]netip.Addr(nil), g.OwnIPs...), d.OwnIPs...)
	}
	s := &guardSnapshot{at: now, ownIPs: map[netip.Addr]bool{}, ownAddrs: map[netip.AddrPort]bool{},
		anyPorts: map[uint16]bool{}, trunkIPs: map[netip.Addr]bool{}, trunkAddr: map[netip.AddrPort]bool{}}
	for _, ip := range p.hostIPs {
		s.ownIPs[ip] = true
	}
	for _, ip := range g.OwnIPs {
		s.ownIPs[ip.Unmap()] = true
	}
	for _, l := range g.Listeners {
		ip := l.Addr().Unmap()
		if !ip.IsValid() || ip.IsUnspecified() {
			s.anyPorts[l.Port()] = true
			continue
		}
		s.ownIPs[ip] = true
		s.ownAddrs[netip.AddrPortFrom(ip, l.Port())] = true
	}
	for _, t := range g.Trunks {
		ip := t.Addr().Unmap()
		s.trunkIPs[ip] = true
		s.trunkAddr[netip.AddrPortFrom(ip, t.Port())] = true
	}
	p.snap.Store(s)
	return s
}

func (p *peerPolicy) allowed(ip netip.Addr) bool {
	for _, a := range p.allow {
		if a.Contains(ip) {
			return true
		}
	}
	return false
}

// permitIP decides a CreatePermission (RFC 8656 §9: permissions are per IP address, any port).
// Special ranges are refused unless turn.allowPeers holds the address; a trunk's IP is refused
// whatever allowPeers says (it is refused per port when the IP is telgw's own).
func (p *peerPolicy) permitIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if IsSpecialPeer(ip) && !p.allowed(ip) {
		return false
	}
	s := p.snapshot()
	return !s.trunkIPs[ip] || s.ownIPs[ip]
}

// permit decides a ChannelBind (RFC 8656 §12: a channel is bound to one transport address) and
// every datagram the relay sends or receives: on top of permitIP, telgw's own listeners and the
// trunks' exact addresses are never reached, even inside allowPeers.
func (p *peerPolicy) permit(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	if !p.permitIP(ip) {
		return false
	}
	s := p.snapshot()
	a := netip.AddrPortFrom(ip, ap.Port())
	if s.ownAddrs[a] || s.trunkAddr[a] {
		return false
	}
	// A listener on 0.0.0.0 is reachable at every address of the host, loopback included.
	if s.anyPorts[ap.Port()] && (s.ownIPs[ip] || ip.IsLoopback() || ip.IsUnspecified()) {
		return false
	}
	return true
}

// guardedPacketConn is a relay socket that never sends to nor passes on datagrams from a refused
// peer. The permission checks refuse the IP; this catches the port (a permission to telgw's own
// IP, which WebRTC media to telgw needs, must not open its SIP port) and routing changes made
// after a permission was granted.
type guardedPacketConn struct {
	net.PacketConn
	s *Server
}

func (c *guardedPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ap, ok := addrPort(addr); !ok || !c.s.policy.permit(ap) {
		c.s.dropped.Inc()
		return len(b), nil // silently discarded, as for a peer without permission (RFC 8656 §11.2)
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *guardedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		if ap, ok := addrPort(addr); ok && c.s.policy.permit(ap) {
			return n, addr, nil
		}
		c.s.dropped.Inc()
	}
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.AddrPort(), true
	case *net.TCPAddr:
		return v.AddrPort(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

// guardedGenerator wraps the relay address generator so every relay socket is guarded.
type guardedGenerator struct {
	next interface {
		Validate() error
		AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error)
		AllocateConn(network string, requestedPort int) (net.Conn, net.Addr, error)
	}
	s *Server
}

func (g *guardedGenerator) Validate() error { return g.next.Validate() }

func (g *guardedGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	c, a, err := g.next.AllocatePacketConn(network, requestedPort)
	if err != nil {
		return nil, nil, err
	}
	return &guardedPacketConn{PacketConn: c, s: g.s}, a, nil
}

func (g *guardedGenerator) AllocateConn(network string, requestedPort int) (net.Conn, net.Addr, error) {
	return g.next.AllocateConn(network, requestedPort)
}
