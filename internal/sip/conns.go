package sip

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Every accepted SIP connection (TCP, TLS, WebSocket) holds a socket, buffers and a goroutine,
// so connections that send nothing, or never finish a message, are closed, and one address may
// hold only so many (the way Kamailio's tcp_connection_lifetime and tcp_max_connections_per_ip
// work):
//   - a TCP or TLS connection must deliver a complete message within RequestTimeout of being
//     accepted, and then each message within RequestTimeout of its first byte (a slow TLS
//     handshake or a header sent a byte at a time is cut);
//   - a WebSocket must carry an authenticated request (a REGISTER answered 2xx, or a request
//     with credentials answered 18x/2xx, or a call admitted) within WSRegisterTimeout;
//   - any connection without traffic for IdleTimeout is closed, unless a call in progress
//     uses it. Traffic is any message, including the RFC 5626 §4.4.1 CRLF keep-alive ping that
//     sipgo answers with a pong, and on a WebSocket any frame (pings too);
//   - one IP address holds at most MaxConnsPerIP of them; a further one is closed on accept.
//
// A trunk's addresses (over TCP and TLS; a WebSocket is never a trunk) are exempt: carriers
// are trusted by address, connect from few addresses, and may keep idle connections open.

// connGuard keeps the per-address counts and the WebSocket connections by remote address.
type connGuard struct {
	cfg    *Config
	log    *slog.Logger
	m      *metrics
	trunks *trunkTable // trunks' addresses are exempt
	table  *callTable  // a connection a call uses is not idle

	mu     sync.Mutex
	perIP  map[netip.Addr]int
	byAddr map[string]*guardedConn // WebSocket connections, by RemoteAddr().String()
}

func newConnGuard(cfg *Config, log *slog.Logger, m *metrics, trunks *trunkTable, table *callTable) *connGuard {
	return &connGuard{cfg: cfg, log: log, m: m, trunks: trunks, table: table, perIP: map[netip.Addr]int{}, byAddr: map[string]*guardedConn{}}
}

// guardedListener polices the connections a listener accepts.
type guardedListener struct {
	net.Listener
	g         *connGuard
	transport string // tcp, tls or ws
}

// listener wraps a TCP, TLS or WebSocket listener (transport "tcp", "tls" or "ws").
func (g *connGuard) listener(l net.Listener, transport string) net.Listener {
	return &guardedListener{Listener: l, g: g, transport: transport}
}

// Accept returns the next connection within its address's cap, closing those beyond it.
func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.admit(c, l.transport); gc != nil {
			return gc, nil
		}
	}
}

// admit counts c against its address's cap and arms its timers; nil when c was refused.
func (g *connGuard) admit(c net.Conn, transport string) *guardedConn {
	cfg := g.cfg
	src := addrPort(c.RemoteAddr())
	ip := src.Addr().Unmap()
	gc := &guardedConn{Conn: c, g: g, transport: transport, ip: ip, key: c.RemoteAddr().String(), accepted: time.Now()}
	gc.last.Store(gc.accepted.UnixNano())
	gc.exempt = transport != "ws" && g.trunks.bySource(ip) != nil
	g.mu.Lock()
	if !gc.exempt && cfg.MaxConnsPerIP > 0 {
		if g.perIP[ip] >= cfg.MaxConnsPerIP {
			g.mu.Unlock()
			g.log.Info("sip connection refused: too many from one address", "transport", transport, "src", src.String(), "max", cfg.MaxConnsPerIP)
			g.m.connClosed.WithLabelValues(transport, "limit").Inc()
			_ = c.Close()
			return nil
		}
		g.perIP[ip]++
		gc.counted = true
	}
	if transport == "ws" {
		g.byAddr[gc.key] = gc
	}
	g.mu.Unlock()
	gc.first = cfg.RequestTimeout
	if transport == "ws" {
		gc.first = cfg.WSRegisterTimeout
	}
	if !gc.exempt {
		gc.mu.Lock()
		first := gc.first
		if cfg.IdleTimeout > 0 {
			first = min(first, cfg.IdleTimeout)
		}
		gc.timer = time.AfterFunc(first, gc.check)
		gc.mu.Unlock()
	}
	return gc
}

// guardedConn is an accepted connection with its deadlines.
type guardedConn struct {
	net.Conn
	g         *connGuard
	transport string
	ip        netip.Addr
	key       string // RemoteAddr().String(), as sipgo names the request's source
	accepted  time.Time
	first     time.Duration // RequestTimeout, or WSRegisterTimeout on a WebSocket
	exempt    bool          // a trunk's address: no cap, no deadlines
	counted   bool          // counted in perIP

	ready    atomic.Bool  // a complete message (TCP, TLS) or an authenticated request (WS) came
	last     atomic.Int64 // unix ns of the last traffic
	msgStart atomic.Int64 // unix ns of the first byte of a message still arriving; 0: none

	mu     sync.Mutex
	timer  *time.Timer
	closed bool
}

// Unwrap returns the accepted connection (e.g. a *tls.Conn).
func (c *guardedConn) Unwrap() net.Conn { return c.Conn }

// Read counts every byte read as traffic.
func (c *guardedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// seen records a complete frame from the stream screen: a message (msg) or a keep-alive.
func (c *guardedConn) seen(msg bool) {
	c.msgStart.Store(0)
	if msg {
		c.ready.Store(true)
	}
}

// partial records that a message has started arriving.
func (c *guardedConn) partial() {
	c.msgStart.CompareAndSwap(0, time.Now().UnixNano())
}

// authenticated marks a WebSocket as carrying an authenticated user.
func (c *guardedConn) authenticated() { c.ready.Store(true) }

// check closes the connection when a deadline has passed, and re-arms the timer for the next.
func (c *guardedConn) check() {
	cfg := c.g.cfg
	now := time.Now()
	var next time.Time
	at := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if !c.ready.Load() {
		if dl := c.accepted.Add(c.first); now.Before(dl) {
			at(dl)
		} else if c.transport == "ws" && c.g.table.busy(c.key) {
			c.ready.Store(true) // a call was admitted on it: the user authenticated
		} else {
			c.cut("no_request")
			return
		}
	}
	if ms := c.msgStart.Load(); ms != 0 {
		if dl := time.Unix(0, ms).Add(cfg.RequestTimeout); now.Before(dl) {
			at(dl)
		} else {
			c.cut("incomplete")
			return
		}
	}
	if cfg.IdleTimeout > 0 {
		dl := time.Unix(0, c.last.Load()).Add(cfg.IdleTimeout)
		if !now.Before(dl) {
			if !c.g.table.busy(c.key) {
				c.cut("idle")
				return
			}
			c.last.Store(now.UnixNano())
			dl = now.Add(cfg.IdleTimeout)
		}
		at(dl)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && !next.IsZero() {
		c.timer.Reset(next.Sub(now))
	}
}

// cut closes the connection for why (no_request, incomplete or idle: the metric's reason); sipgo's read on it fails and sipgo lets it go.
func (c *guardedConn) cut(why string) {
	c.g.log.Debug("sip connection closed", "transport", c.transport, "src", c.key, "why", why)
	c.g.m.connClosed.WithLabelValues(c.transport, why).Inc()
	_ = c.Close()
}

// Close releases the connection's place in its address's count.
func (c *guardedConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if first {
		g := c.g
		g.mu.Lock()
		if c.counted {
			if g.perIP[c.ip]--; g.perIP[c.ip] <= 0 {
				delete(g.perIP, c.ip)
			}
		}
		if g.byAddr[c.key] == c {
			delete(g.byAddr, c.key)
		}
		g.mu.Unlock()
	}
	return c.Conn.Close()
}

// watchWS returns tx, wrapped so that an answer showing that req's sender authenticated marks
// the WebSocket req came on; tx itself when req came otherwise or the mark is set.
func (g *connGuard) watchWS(req *sip.Request, tx sip.ServerTransaction) sip.ServerTransaction {
	if transportOf(req) != "ws" {
		return tx
	}
	g.mu.Lock()
	c := g.byAddr[req.Source()]
	g.mu.Unlock()
	if c == nil || c.ready.Load() {
		return tx
	}
	return &watchedTx{ServerTransaction: tx, req: req, c: c}
}

// watchedTx is a server transaction whose answers are watched for a successful
// authentication.
type watchedTx struct {
	sip.ServerTransaction
	req *sip.Request
	c   *guardedConn
}

// Respond marks the WebSocket when res shows req's sender authenticated: 2xx to REGISTER
// (RFC 3261 §10.3), or 18x/2xx to a request carrying credentials.
func (w *watchedTx) Respond(res *sip.Response) error {
	code := res.StatusCode
	switch {
	case w.req.Method == sip.REGISTER && code >= 200 && code < 300:
		w.c.authenticated()
	case code > 100 && code < 300 && (w.req.GetHeader("Authorization") != nil || w.req.GetHeader("Proxy-Authorization") != nil):
		w.c.authenticated()
	}
	return w.ServerTransaction.Respond(res)
}
