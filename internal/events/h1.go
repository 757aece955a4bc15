package events

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// h1Client posts webhook deliveries over HTTP/1.1 (RFC 9112) on keep-alive connections it
// keeps per endpoint. It does what the deliveries need of net/http's Client and no more: one
// POST with a Content-Length body per connection at a time, the answer read on the calling
// goroutine (http.ReadResponse parses it: chunked bodies, Connection: close), redirects never
// followed. Go's Transport hands every request to a connection's read and write goroutines
// and builds it through several layers; with one event per POST (Event Grid's default
// maxEventsPerBatch 1) that was about half of telgw's CPU per inbound message. Every
// connection is dialled through the Guard's dialer, so the SSRF check still runs on the
// address connected to; https endpoints get TLS (ALPN http/1.1) over it.
type h1Client struct {
	dialer  *net.Dialer
	tls     *tls.Config // base configuration; ServerName set per endpoint
	timeout time.Duration
	maxIdle int // idle connections kept per endpoint

	targets sync.Map // subscriber URL → *h1Target

	mu   sync.Mutex
	idle map[string][]*h1Conn // by h1Target.key, the most recently used last
}

// h1IdleTimeout is how long an idle connection is kept (net/http's default is 90s; servers
// commonly close theirs after 60s or more).
const h1IdleTimeout = 50 * time.Second

// h1Target is a subscriber URL parsed once: where to connect and what to send.
type h1Target struct {
	key        string // scheme://host:port, the connection pool's key
	addr       string // host:port to dial
	tls        bool
	serverName string
	host       string // the Host header
	uri        string // the request target (path and query)
}

// h1AnswerMax bounds what one answer may take off a connection: its status line, 1xx answers
// and headers (http.ReadResponse puts no limit on them; net/http's Transport allows 10 MB of
// headers, subscribers send a few hundred bytes) and the 64 KiB of body drained. A subscriber
// sending more gets an error, and the connection is closed, rather than our memory.
const h1AnswerMax = 1<<20 + 64<<10

// errAnswerTooLong: a subscriber's answer went past h1AnswerMax.
var errAnswerTooLong = errors.New("webhook answer longer than 1 MiB of headers")

// capReader reads from r until left bytes were read, then fails with errAnswerTooLong.
type capReader struct {
	r    io.Reader
	left int
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errAnswerTooLong
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	return n, err
}

// h1Conn is one keep-alive connection.
type h1Conn struct {
	c      net.Conn
	in     *capReader // c as br reads it, bounded per answer
	br     *bufio.Reader
	bw     *bufio.Writer
	usedAt time.Time
}

func newH1Client(g *Guard, timeout time.Duration, maxIdle int) *h1Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	if g.Resolver != nil {
		d.Resolver = g.Resolver
	}
	return &h1Client{dialer: d, timeout: timeout, maxIdle: maxIdle, idle: map[string][]*h1Conn{},
		tls: &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}}
}

// target parses raw once.
func (c *h1Client) target(raw string) (*h1Target, error) {
	if t, ok := c.targets.Load(raw); ok {
		return t.(*h1Target), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	t := &h1Target{host: u.Host, uri: u.RequestURI(), serverName: u.Hostname()}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		t.tls = true
		if port == "" {
			port = "443"
		}
	default:
		return nil, fmt.Errorf("webhook URL %q: scheme %q is not http(s)", raw, u.Scheme)
	}
	if u.Hostname() == "" || u.User != nil || !validHeader(t.host) || !validHeader(t.uri) {
		return nil, fmt.Errorf("webhook URL %q: not a host without credentials", raw)
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	t.key = u.Scheme + "://" + t.addr
	c.targets.Store(raw, t)
	return t, nil
}

// validHeader reports whether s may go in a request line or header value as is: no control
// characters (a CR or LF would split the request).
func validHeader(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// h1Answer is what post returns of a response.
type h1Answer struct {
	code     int
	status   string // "503 Service Unavailable"
	location string
}

// post sends one POST of body with the webhook headers and returns the answer. A kept
// connection the server closed meanwhile fails before any answer byte: the POST is then sent
// once more on a new connection (a subscriber deduplicates by webhook-id), and the endpoint's
// other kept connections are closed.
func (c *h1Client) post(ctx context.Context, raw, id string, ts time.Time, sig string, body []byte) (h1Answer, error) {
	t, err := c.target(raw)
	if err != nil {
		return h1Answer{}, err
	}
	if !validHeader(id) || !validHeader(sig) {
		return h1Answer{}, fmt.Errorf("webhook id %q: not a valid header value", id)
	}
	for attempt := 0; ; attempt++ {
		var cn *h1Conn
		reused := false
		if attempt == 0 {
			cn, reused = c.get(t)
		}
		if cn == nil {
			if cn, err = c.dial(ctx, t); err != nil {
				return h1Answer{}, err
			}
		}
		a, keep, early, err := c.roundTrip(ctx, cn, t, id, ts, sig, body)
		if err == nil && keep {
			c.put(t, cn)
		} else {
			_ = cn.c.Close()
		}
		if err != nil && early && reused && attempt == 0 && ctx.Err() == nil {
			c.drop(t) // the others kept were most likely closed too (a restart)
			continue
		}
		return a, err
	}
}

// roundTrip writes the request on cn and reads its answer. keep reports whether cn may carry
// another request; early whether it failed before any byte of an answer arrived.
func (c *h1Client) roundTrip(ctx context.Context, cn *h1Conn, t *h1Target, id string, ts time.Time, sig string, body []byte) (a h1Answer, keep, early bool, err error) {
	_ = cn.c.SetDeadline(time.Now().Add(c.timeout))
	cn.in.left = h1AnswerMax // what the subscriber may send before this answer is done
	stop := context.AfterFunc(ctx, func() { _ = cn.c.SetDeadline(time.Unix(1, 0)) })
	a, keep, early, err = c.exchange(ctx, cn, t, id, ts, sig, body)
	if !stop() {
		keep = false // ctx ended meanwhile: its deadline may still land on the connection
	}
	return a, keep, early, err
}

// exchange writes the request and reads the answer (roundTrip).
func (c *h1Client) exchange(ctx context.Context, cn *h1Conn, t *h1Target, id string, ts time.Time, sig string, body []byte) (a h1Answer, keep, early bool, err error) {
	w := cn.bw
	_, _ = w.WriteString("POST ")
	_, _ = w.WriteString(t.uri)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = w.WriteString(t.host)
	_, _ = w.WriteString("\r\nUser-Agent: telgw-webhooks\r\nContent-Type: application/json; charset=utf-8\r\naeg-event-type: Notification\r\n" +
		HeaderID + ": ")
	_, _ = w.WriteString(id)
	_, _ = w.WriteString("\r\n" + HeaderTimestamp + ": ")
	var num [20]byte
	_, _ = w.Write(strconv.AppendInt(num[:0], ts.Unix(), 10))
	_, _ = w.WriteString("\r\n" + HeaderSignature + ": ")
	_, _ = w.WriteString(sig)
	_, _ = w.WriteString("\r\nContent-Length: ")
	_, _ = w.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
	_, _ = w.WriteString("\r\n\r\n")
	_, _ = w.Write(body)
	if err := w.Flush(); err != nil {
		return a, false, true, c.ctxErr(ctx, err)
	}
	if _, err := cn.br.Peek(1); err != nil {
		return a, false, true, c.ctxErr(ctx, err)
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(cn.br, nil)
		if err != nil {
			return a, false, false, c.ctxErr(ctx, err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		// 1xx interim answers (RFC 9110 §15.2) precede the final one.
	}
	a = h1Answer{code: resp.StatusCode, status: resp.Status, location: resp.Header.Get("Location")}
	// Drain the answer (up to 64 KiB) so the connection can carry the next POST; a longer
	// or broken one closes it.
	n, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	keep = !resp.Close && rerr == nil && resp.StatusCode != http.StatusSwitchingProtocols
	if keep && n == 64<<10 {
		var one [1]byte
		if k, _ := resp.Body.Read(one[:]); k > 0 {
			keep = false
		}
	}
	_ = resp.Body.Close()
	return a, keep, false, nil
}

// ctxErr prefers the context's error when ctx ended (the deadline AfterFunc set caused err).
func (c *h1Client) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// dial connects to t through the guarded dialer, with TLS for https.
func (c *h1Client) dial(ctx context.Context, t *h1Target) (*h1Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := c.dialer.DialContext(dctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	if t.tls {
		cfg := c.tls.Clone()
		cfg.ServerName = t.serverName
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = tc
	}
	in := &capReader{r: conn}
	return &h1Conn{c: conn, in: in, br: bufio.NewReaderSize(in, 4<<10), bw: bufio.NewWriterSize(conn, 8<<10)}, nil
}

// get takes t's most recently used idle connection (nil when there is none), dropping those
// idle for longer than h1IdleTimeout.
func (c *h1Client) get(t *h1Target) (*h1Conn, bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[t.key]
	for len(list) > 0 {
		cn := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(cn.usedAt) < h1IdleTimeout {
			c.idle[t.key] = list
			return cn, true
		}
		_ = cn.c.Close()
	}
	delete(c.idle, t.key)
	return nil, false
}

// put keeps cn for t's next POST, unless maxIdle connections are already kept.
func (c *h1Client) put(t *h1Target, cn *h1Conn) {
	cn.usedAt = time.Now()
	c.mu.Lock()
	if len(c.idle[t.key]) < c.maxIdle {
		c.idle[t.key] = append(c.idle[t.key], cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		_ = cn.c.Close()
	}
}

// drop closes t's idle connections.
func (c *h1Client) drop(t *h1Target) {
	c.mu.Lock()
	list := c.idle[t.key]
	delete(c.idle, t.key)
	c.mu.Unlock()
	for _, cn := range list {
		_ = cn.c.Close()
	}
}

// closeIdle closes the connections idle for longer than h1IdleTimeout.
func (c *h1Client) closeIdle(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, list := range c.idle {
		keep := list[:0]
		for _, cn := range list {
			if now.Sub(cn.usedAt) < h1IdleTimeout {
				keep = append(keep, cn)
			} else {
				_ = cn.c.Close()
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(c.idle, key)
		} else {
			c.idle[key] = keep
		}
	}
}
