// Package sipws lets the SIP stack accept SIP-over-WebSocket (RFC 7118) connections on the
// HTTP listener, at a path such as /sip/ws, instead of a port of its own: browsers then reach
// SIP on the same origin (and the same TLS certificate) as the REST API and the softphone page.
//
// The HTTP handler hijacks the upgrade request's connection and hands it, with the request bytes
// replayed in front, to a net.Listener that the SIP stack's WebSocket transport serves (sipgo's
// ServeWS performs the RFC 6455 handshake itself, answering Sec-WebSocket-Protocol: sip).
package sipws

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Listener is a net.Listener fed by HTTP upgrade requests.
type Listener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

// NewListener returns a Listener reporting addr (the HTTP listener's address) as its own.
func NewListener(addr net.Addr) *Listener {
	return &Listener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *Listener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return l.addr }

// ServeHTTP takes a WebSocket upgrade request (RFC 6455 §4.1) off the HTTP server and hands the
// raw connection to Accept. Anything else gets 426 Upgrade Required.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Method != http.MethodGet {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Protocol", "sip")
		http.Error(w, "SIP over WebSocket (RFC 7118): send a WebSocket upgrade with Sec-WebSocket-Protocol: sip", http.StatusUpgradeRequired)
		return
	}
	if !hasToken(r.Header.Values("Sec-WebSocket-Protocol"), "sip") {
		http.Error(w, "RFC 7118 §4: Sec-WebSocket-Protocol must include sip", http.StatusBadRequest)
		return
	}
	var head bytes.Buffer
	// Replay the request as it came: the WebSocket transport parses the handshake itself.
	if err := r.Write(&head); err != nil {
		http.Error(w, "bad upgrade request", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err != nil {
		http.Error(w, "cannot take over the connection", http.StatusInternalServerError)
		return
	}
	c := &replayConn{Conn: conn, r: io.MultiReader(&head, brw.Reader)}
	select {
	case l.conns <- c:
	case <-l.done:
		_ = conn.Close()
	case <-r.Context().Done():
		_ = conn.Close()
	}
}

func hasToken(values []string, tok string) bool {
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), tok) {
				return true
			}
		}
	}
	return false
}

// replayConn reads the replayed request first, then whatever the HTTP server had buffered,
// then the socket.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Unwrap returns the hijacked connection (e.g. a *tls.Conn when the HTTP listener serves TLS).
func (c *replayConn) Unwrap() net.Conn { return c.Conn }
