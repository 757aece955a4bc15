package turn

import (
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// refuse screens TURN requests before pion sees them and reports true when it answered one:
//
//   - A signed request (Allocate, Refresh, CreatePermission, ChannelBind) whose USERNAME is not
//     valid (expired, or its identity deleted) or whose MESSAGE-INTEGRITY does not match gets
//     401 with the REALM and the request's NONCE (RFC 8489 §9.2.4). pion/turn v4 answers 400,
//     which tells a client nothing.
//   - An authenticated CreatePermission or ChannelBind for a refused peer gets 403 Forbidden
//     (RFC 8656 §9.2 and §12.2: a server may refuse a peer address for local policy). pion's own
//     permission handler repeats the IP check but answers with no error code for CreatePermission
//     and 401 for ChannelBind.
//
// Anything else (unsigned requests, missing attributes, stale nonces, allowed peers, data) is
// left to pion, which challenges, answers 400/438 and grants permitted peers.
func (s *Server) refuse(b []byte, src net.Addr, write func([]byte)) bool {
	if !stun.IsMessage(b) {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil || m.Type.Class != stun.ClassRequest || !m.Contains(stun.AttrMessageIntegrity) {
		return false
	}
	switch m.Type.Method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		return false
	}
	var user stun.Username
	var realm stun.Realm
	var nonce stun.Nonce
	if user.GetFrom(m) != nil || realm.GetFrom(m) != nil || nonce.GetFrom(m) != nil {
		return false
	}
	key, ok := s.key(user.String(), realm.String())
	if !ok || stun.MessageIntegrity(key).Check(m) != nil {
		s.authFail.Inc()
		s.log.Debug("turn auth rejected", "username", user.String(), "remote", src.String())
		res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
			stun.NewType(m.Type.Method, stun.ClassErrorResponse), stun.CodeUnauthorized,
			stun.NewRealm(s.cfg.Realm), nonce, stun.Fingerprint)
		if err == nil {
			write(res.Raw)
		}
		return true
	}
	if m.Type.Method != stun.MethodCreatePermission && m.Type.Method != stun.MethodChannelBind {
		return false
	}
	denied := false
	_ = m.ForEach(stun.AttrXORPeerAddress, func(a *stun.Message) error {
		var pa stun.XORMappedAddress
		if err := pa.GetFromAs(a, stun.AttrXORPeerAddress); err != nil {
			return nil // pion answers 400 for a malformed address
		}
		ip, ok := netip.AddrFromSlice(pa.IP)
		if !ok {
			return nil
		}
		if m.Type.Method == stun.MethodChannelBind {
			denied = denied || !s.policy.permit(netip.AddrPortFrom(ip, uint16(pa.Port))) //nolint:gosec // a port
		} else {
			denied = denied || !s.policy.permitIP(ip)
		}
		return nil
	})
	if !denied {
		return false
	}
	s.refused.Inc()
	s.log.Info("turn peer refused", "method", m.Type.Method.String(), "username", user.String(), "remote", src.String())
	res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse), stun.CodeForbidden,
		stun.MessageIntegrity(key), stun.Fingerprint)
	if err == nil {
		write(res.Raw)
	}
	return true
}

// gatedPacketConn puts refuse in front of pion's UDP read loop.
type gatedPacketConn struct {
	net.PacketConn
	s *Server
}

func (c *gatedPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.s.refuse(b[:n], addr, func(res []byte) { _, _ = c.PacketConn.WriteTo(res, addr) }) {
			return n, addr, err
		}
	}
}

// gatedListener puts refuse in front of pion's TCP read loops (RFC 8656 §3.1: STUN messages and
// ChannelData framed on the stream).
type gatedListener struct {
	net.Listener
	s *Server
}

func (l *gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, s: l.s, frames: turn.NewSTUNConn(c)}, nil
}

// maxFrame is the largest STUN message or ChannelData frame (16-bit length plus header and
// padding).
const maxFrame = 0xffff + 20 + 4

// gatedConn hands pion whole frames, minus the refused ones.
type gatedConn struct {
	net.Conn
	s       *Server
	frames  *turn.STUNConn
	buf     []byte
	pending []byte
}

func (c *gatedConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.buf == nil {
		c.buf = make([]byte, maxFrame)
	}
	for {
		n, _, err := c.frames.ReadFrom(c.buf)
		if err != nil {
			return 0, err
		}
		if c.s.refuse(c.buf[:n], c.Conn.RemoteAddr(), func(res []byte) { _, _ = c.Conn.Write(res) }) {
			continue
		}
		k := copy(b, c.buf[:n])
		c.pending = c.buf[k:n]
		return k, nil
	}
}
