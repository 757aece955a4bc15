package api

import (
	"net"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// LimitListener caps the connections one client address holds open (HTTP keep-alive and
// upgraded WebSockets alike) at max: a connection past the cap is closed as soon as it is
// accepted, without an HTTP answer, so a flood costs telgw no request parsing. max <= 0
// returns ln unchanged. Refused connections are counted in telgw_http_conns_refused_total
// when reg is not nil.
func LimitListener(ln net.Listener, max int, reg prometheus.Registerer) net.Listener {
	if max <= 0 {
		return ln
	}
	l := &limitListener{Listener: ln, max: max, open: map[netip.Addr]int{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "telgw_http_conns_refused_total",
			Help: "HTTP connections closed on accept because their address had http.maxConnsPerIP open."})}
	if reg != nil {
		reg.MustRegister(l.refused)
	}
	return l
}

type limitListener struct {
	net.Listener
	max     int
	refused prometheus.Counter

	mu   sync.Mutex
	open map[netip.Addr]int
}

// Accept implements net.Listener, closing connections over the per-address cap.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		ok := l.open[ip] < l.max
		if ok {
			l.open[ip]++
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Inc()
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] <= 1 {
		delete(l.open, ip)
		return
	}
	l.open[ip]--
}

func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// limitedConn gives its slot back once, when closed (also after an HTTP hijack: the
// WebSocket owner closes the same connection).
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close implements net.Conn.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
