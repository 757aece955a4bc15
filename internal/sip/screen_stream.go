package sip

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/sip/screen"
)

const (
	// streamWriteTimeout bounds the write of an answer to a peer that does not read.
	streamWriteTimeout = 2 * time.Second
	// streamLinger is how long a connection stays open after its answer, reading and discarding
	// what the peer still sends: closing a socket with unread input resets it (RFC 1122
	// §4.2.2.13), which can destroy the answer before the peer reads it, and sipgo may still be
	// answering requests that came before the bad one.
	streamLinger = 500 * time.Millisecond
	// streamLingerMax caps what a lingering connection reads.
	streamLingerMax = 256 << 10
)

// screenedListener is the TCP (or TLS) listener as sipgo accepts from it: its connections are
// screenedConns.
type screenedListener struct {
	net.Listener
	transport string // "tcp" or "tls": the metric and log label
	parser    *sip.Parser
	log       *slog.Logger
	m         *metrics
}

// screenStream wraps a stream listener so that its connections answer malformed requests
// (see screenedConn). transport labels metrics and logs.
func (s *Service) screenStream(l net.Listener, transport string) net.Listener {
	return &screenedListener{Listener: l, transport: transport, parser: sip.NewParser(), log: s.log, m: s.m}
}

// Accept wraps the next connection.
func (l *screenedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := &screenedConn{Conn: c, l: l, f: screen.NewFramer(l.parser)}
	sc.g, _ = c.(*guardedConn)
	return sc, nil
}

// screenedConn is an accepted connection as sipgo reads it: Read returns the inbound bytes
// unchanged, one keep-alive or one complete message that sipgo's parser accepts at a time,
// until a message it would refuse. That one is answered (or dropped, like a malformed
// response) here and Read then reports io.EOF, so sipgo closes the connection. Writes go
// straight to the connection.
type screenedConn struct {
	net.Conn
	l   *screenedListener
	g   *guardedConn // the connection's deadlines (conns.go); nil: none
	f   *screen.Framer
	out []byte // the rest of the frame being handed to sipgo
	err error  // what Read reports once out and the framer are empty
}

// Unwrap returns the accepted connection (e.g. a *tls.Conn).
func (c *screenedConn) Unwrap() net.Conn { return c.Conn }

// Read hands sipgo the next framed bytes, reading the connection as needed.
func (c *screenedConn) Read(b []byte) (int, error) {
	for len(c.out) == 0 {
		fr, ok := c.f.Next()
		switch {
		case fr.Bad() != nil:
			if c.g != nil && fr.Keep() {
				c.g.seen(true)
			}
			c.reject(*fr.Bad(), fr.Keep())
			if !fr.Keep() {
				c.err = io.EOF
			}
		case ok:
			c.out = fr.Hand()
			if c.g != nil {
				c.g.seen(!fr.KeepAlive())
			}
		case c.err != nil:
			return 0, c.err
		default:
			if c.g != nil && c.f.InMessage() {
				c.g.partial() // a message has begun: it must end within RequestTimeout
			}
			if _, err := c.f.Fill(c.Conn); err != nil {
				c.err = err
			}
		}
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	return n, nil
}

// reject answers (or drops) a message sipgo is not to see; unless keep, it broke the stream,
// and reject lingers before the connection is closed.
func (c *screenedConn) reject(v screen.Verdict, keep bool) {
	src := addrPort(c.Conn.RemoteAddr())
	log := c.l.log.With("transport", c.l.transport, "src", src.String(), "call_id", v.CallID(), "why", v.Why(), "close", !keep)
	action := "dropped"
	if v.Action() == screen.Respond {
		// RFC 3261 §18.2.2: on a reliable transport the response goes back on the connection
		// the request came in on; the Via still gets received and rport (§18.2.1).
		res, _ := screen.Response(v, src, screen.NewTag())
		_ = c.Conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		_, err := c.Conn.Write(res)
		if keep {
			_ = c.Conn.SetWriteDeadline(time.Time{}) // sipgo writes on without one
		}
		if err != nil {
			log.Debug("sip malformed request: answer not sent", "code", v.Code(), "err", err)
		} else {
			log.Debug("sip malformed request answered", "code", v.Code())
			action = "responded"
		}
	} else {
		log.Debug("sip malformed message dropped")
	}
	if c.l.m != nil {
		c.l.m.malformed.WithLabelValues(c.l.transport, action).Inc()
	}
	if !keep {
		c.linger()
	}
}

// linger reads and discards what the peer sends for streamLinger, or until it closes.
func (c *screenedConn) linger() {
	if err := c.Conn.SetReadDeadline(time.Now().Add(streamLinger)); err != nil {
		return
	}
	buf := make([]byte, 4096)
	for read := 0; read < streamLingerMax; {
		n, err := c.Conn.Read(buf)
		if err != nil {
			return
		}
		read += n
	}
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
