package sip

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/sip/screen"
)

// The listeners sipgo serves are wrapped so that every inbound message passes the byte-level
// screen (internal/sip/screen) first: malformed requests are answered here (RFC 3261 §8.2,
// §21.4.1) instead of being dropped silently by sipgo's transport.

// screenedPacketConn is the UDP listener as sipgo reads it: datagrams that sipgo's parser
// accepts pass unchanged; malformed requests get a 400 (or 505, 416) written on the socket and
// are not passed on; malformed responses and non-SIP datagrams are dropped.
type screenedPacketConn struct {
	net.PacketConn
	parser *sip.Parser
	log    *slog.Logger
	m      *metrics
	allow  func(netip.Addr) bool // the per-source flood limit; nil allows all
}

// screenUDP wraps the UDP listener so that malformed requests are answered (see screen.Datagram).
func (s *Service) screenUDP(c net.PacketConn) net.PacketConn {
	return &screenedPacketConn{PacketConn: c, parser: sip.NewParser(), log: s.log, m: s.m, allow: s.limit.allow}
}

// ReadFrom returns the next datagram sipgo should parse, answering or dropping the malformed
// ones in between.
func (c *screenedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || n == 0 {
			return n, addr, err
		}
		v := screen.Datagram(c.parser, b[:n])
		if v.Action() == screen.Pass {
			if v.Data() != nil && len(v.Data()) <= len(b) {
				n = copy(b, v.Data())
			}
			return n, addr, nil
		}
		c.handle(v, addr)
	}
}

func (c *screenedPacketConn) handle(v screen.Verdict, addr net.Addr) {
	src := netip.AddrPort{}
	if ua, ok := addr.(*net.UDPAddr); ok {
		src = ua.AddrPort()
	}
	log := c.log.With("transport", "udp", "src", src.String(), "call_id", v.CallID(), "why", v.Why())
	if v.Action() == screen.Respond && c.allow != nil && !c.allow(src.Addr().Unmap()) {
		v = v.Dropped(" (answer rate-limited)")
	}
	if v.Action() == screen.Respond {
		res, dst := screen.Response(v, src, screen.NewTag())
		if _, err := c.PacketConn.WriteTo(res, net.UDPAddrFromAddrPort(dst)); err != nil {
			log.Debug("sip malformed request: answer not sent", "code", v.Code(), "err", err)
			c.count("dropped")
			return
		}
		log.Debug("sip malformed request answered", "code", v.Code(), "dst", dst.String())
		c.count("responded")
		return
	}
	log.Debug("sip malformed message dropped")
	c.count("dropped")
}

func (c *screenedPacketConn) count(action string) {
	if c.m != nil {
		c.m.malformed.WithLabelValues("udp", action).Inc()
	}
}
