package sip_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// header returns the value of the first header field name (long or compact form) in a message.
func header(msg string, names ...string) string {
	for _, line := range strings.Split(msg, "\r\n")[1:] {
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		for _, n := range names {
			if ok && strings.EqualFold(strings.TrimSpace(k), n) {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

var branchParam = regexp.MustCompile(`(?i);\s*branch\s*=\s*([^;,\s]+)`)

// TestMalformedOverUDP: a running Service answers requests sipgo's parser refuses (RFC 4475
// torture requests and hand-made ones) with a 400 (505, 416) that carries the request's Call-ID,
// CSeq and Via branch, drops what it cannot answer, counts both, and keeps serving.
func TestMalformedOverUDP(t *testing.T) {
	e := newEnv(t, envOpts{})
	type tc struct {
		name, msg string
		code      string // "" when no answer is due
	}
	var cases []tc
	for name, code := range map[string]string{
		"badinv01.dat": "400", "clerr.dat": "400", "ncl.dat": "400", "scalar02.dat": "400", "quotbal.dat": "400",
		"ltgtruri.dat": "400", "lwsruri.dat": "400", "lwsstart.dat": "400", "trws.dat": "400", "badaspec.dat": "400",
		"baddn.dat": "400", "badvers.dat": "505", "novelsc.dat": "416",
		"scalarlg.dat": "", "bigcode.dat": "", "test.dat": "",
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "torture", "invalid", name))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{name, string(b), code})
	}
	const (
		via  = "Via: SIP/2.0/UDP 127.0.0.5:5999;branch=z9hG4bK-garbled\r\n"
		tail = "From: <sip:t@127.0.0.5>;tag=1\r\nTo: <sip:telgw@127.0.0.1>\r\nCall-ID: garbled-1\r\nCSeq: 5 OPTIONS\r\nMax-Forwards: 70\r\n"
	)
	cases = append(cases,
		tc{"no colon", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + tail + "Garbage line\r\nContent-Length: 0\r\n\r\n", "400"},
		tc{"bad Content-Length", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + tail + "Content-Length: 1x\r\n\r\n", "400"},
		tc{"Content-Length too large", "INVITE sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + strings.ReplaceAll(tail, "OPTIONS", "INVITE") + "Content-Length: 500\r\n\r\nv=0\r\n", "400"},
		tc{"SIP/3.0", "OPTIONS sip:telgw@127.0.0.1 SIP/3.0\r\n" + via + tail + "Content-Length: 0\r\n\r\n", "505"},
		tc{"bare LF", strings.ReplaceAll("OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n"+via+tail+"Content-Length: 0\r\n\r\n", "\r\n", "\n"), "400"},
		tc{"no Via", "OPTIONS sip:telgw@127.0.0.1 SIP/2.0\r\n" + tail + "Content-Length: x\r\n\r\n", ""},
		tc{"ACK", "ACK sip:telgw@127.0.0.1 SIP/2.0\r\n" + via + strings.ReplaceAll(tail, "OPTIONS", "ACK") + "Content-Length: x\r\n\r\n", ""},
		tc{"keep-alive", "\r\n\r\n", ""},
	)
	answered, dropped := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := c.msg // exchange points its top Via at the test's socket
			got := exchangeRaw(t, e.addr, []byte(msg), 300*time.Millisecond)
			if c.code == "" {
				if len(got) > 0 {
					t.Fatalf("answered %q, want no answer", got)
				}
				if c.name != "keep-alive" {
					dropped++
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d answers %q, want one %s", len(got), got, c.code)
			}
			answered++
			res := got[0]
			if !strings.HasPrefix(res, "SIP/2.0 "+c.code+" ") {
				t.Fatalf("answer %q, want %s", strings.SplitN(res, "\r\n", 2)[0], c.code)
			}
			reqMsg := strings.ReplaceAll(msg, "\n", "\r\n")
			reqMsg = strings.ReplaceAll(reqMsg, "\r\r\n", "\r\n")
			for _, h := range [][]string{{"Call-ID", "i"}, {"CSeq"}} {
				if want, have := header(reqMsg, h...), header(res, h...); want == "" || have != want {
					t.Errorf("%s: answer has %q, request %q", h[0], have, want)
				}
			}
			if m := branchParam.FindStringSubmatch(header(reqMsg, "Via", "v")); m != nil {
				if b := branchParam.FindStringSubmatch(header(res, "Via")); b == nil || b[1] != m[1] {
					t.Errorf("Via branch: answer %q, want %s", header(res, "Via"), m[1])
				}
			}
			if to := header(res, "To"); !strings.Contains(strings.ToLower(to), "tag=") {
				t.Errorf("To without tag: %q", to)
			}
			if w := header(res, "Warning"); !strings.HasPrefix(w, "399 ") {
				t.Errorf("Warning %q, want a 399 saying what was wrong", w)
			}
		})
	}
	// The stack keeps serving.
	opt := "OPTIONS sip:telgw@" + e.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP " + strangerIP + ":5999;branch=z9hG4bK-after-garbled\r\n" +
		"From: <sip:t@" + strangerIP + ">;tag=1\r\nTo: <sip:telgw@" + e.addr + ">\r\nCall-ID: after-garbled\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if codes := exchange(t, e.addr, []byte(opt), 2*time.Second); len(codes) != 1 || codes[0] != "200" {
		t.Fatalf("OPTIONS after malformed requests: %v", codes)
	}
	lbl := func(action string) map[string]string { return map[string]string{"transport": "udp", "action": action} }
	if n := e.counter("telgw_sip_malformed_messages_total", lbl("responded")); int(n) != answered {
		t.Errorf("responded counter %v, want %d", n, answered)
	}
	if n := e.counter("telgw_sip_malformed_messages_total", lbl("dropped")); int(n) != dropped {
		t.Errorf("dropped counter %v, want %d", n, dropped)
	}
}

// TestMalformedAnswerGoesToRport: with rport the answer goes to the datagram's source port,
// whatever port the Via's sent-by names (RFC 3581 §4), and says so in the Via.
func TestMalformedAnswerGoesToRport(t *testing.T) {
	e := newEnv(t, envOpts{})
	c, err := net.ListenPacket("udp", strangerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg := "OPTIONS sip:telgw@" + e.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:9;rport;branch=z9hG4bK-rport\r\n" +
		"From: <sip:t@example.com>;tag=1\r\nTo: <sip:telgw@example.com>\r\nCall-ID: rport-1\r\nCSeq: 1 OPTIONS\r\nContent-Length: -1\r\n\r\n"
	ua, _ := net.ResolveUDPAddr("udp", e.addr)
	if _, err := c.WriteTo([]byte(msg), ua); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no answer at the source port: %v", err)
	}
	res := string(buf[:n])
	want := "Via: SIP/2.0/UDP 10.9.9.9:9;rport=" + strconv.Itoa(port) + ";branch=z9hG4bK-rport;received=" + strangerIP + "\r\n"
	if !strings.HasPrefix(res, "SIP/2.0 400 ") || !strings.Contains(res, want) {
		t.Fatalf("answer:\n%s\nwant 400 with %q", res, want)
	}
}

// streamOptions is an OPTIONS request sent over a stream from local (RFC 3261 §18.1.1: the Via
// names the transport and the connection's address).
func streamOptions(transport, local, callID string) string {
	host := hostOnly(local)
	return "OPTIONS sip:telgw@" + telgwIP + " SIP/2.0\r\nVia: SIP/2.0/" + transport + " " + local + ";branch=z9hG4bK-" + callID + ";rport\r\n" +
		"From: <sip:t@" + host + ">;tag=1\r\nTo: <sip:telgw@" + telgwIP + ">\r\nCall-ID: " + callID + "\r\nCSeq: 3 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

func hostOnly(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// streamPeer is a connection to telgw's TCP or TLS listener from strangerIP.
type streamPeer struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dialStream(t *testing.T, transport, addr string, conf *tls.Config) *streamPeer {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(strangerIP)}, Timeout: 2 * time.Second}
	var c net.Conn
	var err error
	if transport == "TLS" {
		c, err = tls.DialWithDialer(d, "tcp", addr, conf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &streamPeer{t: t, Conn: c, r: bufio.NewReader(c)}
}

func (p *streamPeer) send(msg string) {
	p.t.Helper()
	if _, err := io.WriteString(p.Conn, msg); err != nil {
		p.t.Fatal(err)
	}
}

// next reads one message: the header section and the body its Content-Length counts.
func (p *streamPeer) next() string {
	p.t.Helper()
	var b strings.Builder
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("read: %v (after %q)", err, b.String()+line)
		}
		b.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	n, _ := strconv.Atoi(header(b.String(), "Content-Length", "l"))
	body := make([]byte, n)
	if _, err := io.ReadFull(p.r, body); err != nil {
		p.t.Fatalf("read body: %v", err)
	}
	return b.String() + string(body)
}

// closed waits until telgw closes the connection, with nothing more sent.
func (p *streamPeer) closed() {
	p.t.Helper()
	b, err := p.r.ReadByte()
	if err == nil {
		rest, _ := p.r.Peek(p.r.Buffered())
		p.t.Fatalf("read %q, want the connection closed", append([]byte{b}, rest...))
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		p.t.Fatalf("read: %v, want the connection closed", err)
	}
}

// status is a response's status code.
func status(res string) string {
	if f := strings.Fields(res); len(f) > 1 {
		return f[1]
	}
	return ""
}

// checkAnswer checks that res answers req with code, carrying its Call-ID, CSeq and Via branch.
func checkAnswer(t *testing.T, req, res, code string) {
	t.Helper()
	if status(res) != code {
		t.Fatalf("answer %q, want %s", strings.SplitN(res, "\r\n", 2)[0], code)
	}
	for _, h := range [][]string{{"Call-ID", "i"}, {"CSeq"}} {
		if want, have := header(req, h...), header(res, h...); want == "" || have != want {
			t.Errorf("%s: answer has %q, request %q", h[0], have, want)
		}
	}
	m := branchParam.FindStringSubmatch(header(req, "Via", "v"))
	if b := branchParam.FindStringSubmatch(header(res, "Via")); m == nil || b == nil || b[1] != m[1] {
		t.Errorf("Via branch: answer %q, want the request's %q", header(res, "Via"), header(req, "Via"))
	}
}

// TestMalformedOverTCP: on a TCP connection, a request sipgo's parser refuses (or one that
// cannot be framed: no or a bad Content-Length, RFC 3261 §18.3) is answered with a 400 (413
// when too large, 505 for another SIP-Version) carrying its Call-ID, CSeq and Via branch, and
// the connection is then closed, unless the message was well framed (505 alone); good traffic
// (pipelined, cut in small writes, keep-alive pings) passes unchanged.
func TestMalformedOverTCP(t *testing.T) {
	e := newEnv(t, envOpts{})
	testMalformedStream(t, e, "TCP", e.addr, nil)
}

// TestMalformedOverTLS: the same on the SIP over TLS listener.
func TestMalformedOverTLS(t *testing.T) {
	pki := newTestPKI(t, false)
	e := newEnv(t, envOpts{tweak: withTLS(pki)})
	testMalformedStream(t, e, "TLS", e.svc.TLSAddr().String(), &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12})
}

func testMalformedStream(t *testing.T, e *env, transport, addr string, conf *tls.Config) {
	dial := func(t *testing.T) *streamPeer { return dialStream(t, transport, addr, conf) }
	answered := 0
	for _, tc := range []struct {
		name, code string
		garble     func(string) string
		open       bool // the framing held: the connection stays open
	}{
		{"line without a colon", "400", func(m string) string { return strings.Replace(m, "Max-Forwards: 70", "Garbage", 1) }, false},
		{"unterminated To", "400", func(m string) string {
			return strings.Replace(m, "To: <sip:telgw@"+telgwIP+">", "To: <sip:telgw@"+telgwIP, 1)
		}, false},
		{"no Content-Length", "400", func(m string) string { return strings.Replace(m, "Content-Length: 0\r\n", "", 1) }, false},
		{"bad Content-Length", "400", func(m string) string { return strings.Replace(m, "Content-Length: 0", "Content-Length: 0x", 1) }, false},
		{"body over the limit", "413", func(m string) string { return strings.Replace(m, "Content-Length: 0", "Content-Length: 100000", 1) }, false},
		{"SIP/3.0", "505", func(m string) string { return strings.Replace(m, "SIP/2.0\r\n", "SIP/3.0\r\n", 1) }, true},
		{"garbled SIP/3.0", "505", func(m string) string {
			return strings.Replace(strings.Replace(m, "SIP/2.0\r\n", "SIP/3.0\r\n", 1), "Max-Forwards: 70", "Garbage", 1)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dial(t)
			req := tc.garble(streamOptions(transport, p.LocalAddr().String(), "garbled-"+strconv.Itoa(answered)))
			p.send(req)
			checkAnswer(t, req, p.next(), tc.code)
			answered++
			if tc.open {
				next := streamOptions(transport, p.LocalAddr().String(), "after-"+strconv.Itoa(answered))
				p.send(next)
				checkAnswer(t, next, p.next(), "200")
				return
			}
			p.closed()
		})
	}
	t.Run("valid OPTIONS on a new connection", func(t *testing.T) {
		p := dial(t)
		req := streamOptions(transport, p.LocalAddr().String(), "after-garbled")
		p.send(req)
		checkAnswer(t, req, p.next(), "200")
	})
	t.Run("pipelined", func(t *testing.T) {
		p := dial(t)
		a, b := streamOptions(transport, p.LocalAddr().String(), "pipe-a"), streamOptions(transport, p.LocalAddr().String(), "pipe-b")
		p.send(a + b)
		got := map[string]string{}
		for range 2 {
			res := p.next()
			got[header(res, "Call-ID")] = status(res)
		}
		if got["pipe-a"] != "200" || got["pipe-b"] != "200" {
			t.Fatalf("answers by Call-ID %v, want both 200", got)
		}
	})
	t.Run("small writes", func(t *testing.T) {
		p := dial(t)
		req := streamOptions(transport, p.LocalAddr().String(), "dribble")
		for i := 0; i < len(req); i += 7 {
			p.send(req[i:min(i+7, len(req))])
			time.Sleep(time.Millisecond)
		}
		checkAnswer(t, req, p.next(), "200")
	})
	t.Run("keep-alive", func(t *testing.T) {
		p := dial(t)
		p.send("\r\n\r\n") // RFC 5626 §4.4.1 ping: answered by a CRLF pong
		pong := make([]byte, 2)
		if _, err := io.ReadFull(p.r, pong); err != nil || string(pong) != "\r\n" {
			t.Fatalf("pong %q, %v", pong, err)
		}
		req := streamOptions(transport, p.LocalAddr().String(), "after-ping")
		p.send("\r\n" + req) // a pong before a request is skipped
		checkAnswer(t, req, p.next(), "200")
	})
	t.Run("valid then garbled", func(t *testing.T) {
		p := dial(t)
		good := streamOptions(transport, p.LocalAddr().String(), "before-garbled")
		bad := strings.Replace(streamOptions(transport, p.LocalAddr().String(), "garbled-after-good"), "Max-Forwards: 70", "Garbage", 1)
		p.send(good + bad)
		got := map[string]string{}
		for range 2 { // the 200 may come after the 400: the connection lingers for it
			res := p.next()
			got[header(res, "Call-ID")] = status(res)
		}
		if got["before-garbled"] != "200" || got["garbled-after-good"] != "400" {
			t.Fatalf("answers by Call-ID %v, want 200 then 400", got)
		}
		p.closed()
		answered++
	})
	lbl := map[string]string{"transport": strings.ToLower(transport), "action": "responded"}
	if n := e.counter("telgw_sip_malformed_messages_total", lbl); int(n) != answered {
		t.Errorf("responded counter %v, want %d", n, answered)
	}
}
