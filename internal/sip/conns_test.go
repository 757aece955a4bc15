package sip_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sipws"
)

// closedWithin reports whether telgw closes c within d (reading and discarding what it sends),
// and how long it took.
func closedWithin(c net.Conn, d time.Duration) (bool, time.Duration) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return false, time.Since(start)
		case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
			return true, time.Since(start)
		default:
			return true, time.Since(start)
		}
	}
}

// TestIdleStreamConnection: a TCP connection without traffic for sip.idleTimeout is closed; one
// that sends RFC 5626 §4.4.1 CRLF keep-alives gets its pongs and stays open, and so does its
// next request.
func TestIdleStreamConnection(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(c *sip.Config) { c.IdleTimeout, c.RequestTimeout = time.Second, 5*time.Second }})
	idle := dialStream(t, "TCP", e.addr, nil)
	idle.send(streamOptions("TCP", idle.LocalAddr().String(), "idle-1"))
	if res := idle.next(); status(res) != "200" {
		t.Fatalf("OPTIONS: %q", res)
	}
	pinger := dialStream(t, "TCP", e.addr, nil)
	pinger.send(streamOptions("TCP", pinger.LocalAddr().String(), "ping-1"))
	if res := pinger.next(); status(res) != "200" {
		t.Fatalf("OPTIONS: %q", res)
	}
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		time.Sleep(200 * time.Millisecond)
		pinger.send("\r\n\r\n")
		_ = pinger.SetReadDeadline(time.Now().Add(time.Second))
		if pong, err := pinger.r.ReadString('\n'); err != nil || pong != "\r\n" {
			t.Fatalf("pong: %q, %v", pong, err)
		}
	}
	if ok, took := closedWithin(idle.Conn, 2*time.Second); !ok || took > 1500*time.Millisecond {
		t.Fatalf("idle connection closed %v after %v (plus 1.5s), want within the idle timeout", ok, took)
	}
	_ = pinger.SetDeadline(time.Now().Add(2 * time.Second))
	pinger.send(streamOptions("TCP", pinger.LocalAddr().String(), "ping-2"))
	if res := pinger.next(); status(res) != "200" {
		t.Fatalf("OPTIONS after pings: %q", res)
	}
	if n := e.counter("telgw_sip_connections_closed_total", map[string]string{"transport": "tcp", "reason": "idle"}); n != 1 {
		t.Fatalf("closed for idleness: %v, want 1", n)
	}
}

// TestSlowStreamConnection: a TCP connection that sends no complete request within
// sip.requestTimeout, or sends one a byte at a time, is closed well before the idle timeout.
func TestSlowStreamConnection(t *testing.T) {
	e := newEnv(t, envOpts{tweak: func(c *sip.Config) { c.IdleTimeout, c.RequestTimeout = time.Minute, 500*time.Millisecond }})
	silent := dialStream(t, "TCP", e.addr, nil)
	if ok, took := closedWithin(silent.Conn, 3*time.Second); !ok || took > 2*time.Second {
		t.Fatalf("silent connection closed %v after %v", ok, took)
	}
	slow := dialStream(t, "TCP", e.addr, nil)
	slow.send(streamOptions("TCP", slow.LocalAddr().String(), "slow-0"))
	if res := slow.next(); status(res) != "200" {
		t.Fatalf("OPTIONS: %q", res)
	}
	msg := streamOptions("TCP", slow.LocalAddr().String(), "slow-1")
	start := time.Now()
	for i := 0; i < len(msg) && time.Since(start) < 3*time.Second; i++ {
		if _, err := slow.Write([]byte{msg[i]}); err != nil {
			break // closed
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok, took := closedWithin(slow.Conn, 3*time.Second); !ok || time.Since(start) > 3*time.Second {
		t.Fatalf("a request sent a byte at a time: closed %v after %v", ok, took)
	}
	if n := e.counter("telgw_sip_connections_closed_total", map[string]string{"transport": "tcp", "reason": "incomplete"}); n != 1 {
		t.Fatalf("closed as incomplete: %v, want 1", n)
	}
}

// TestConnectionsPerIP: one address holds at most sip.maxConnsPerIP connections, the next is
// closed at once; a closed one frees its place; a trunk's address has no cap.
func TestConnectionsPerIP(t *testing.T) {
	trunk := sip.TrunkConfig{Name: "carrier1", Address: carrierIP + ":5060", Transport: "tcp",
		Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}
	e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{trunk}, tweak: func(c *sip.Config) { c.MaxConnsPerIP = 3 }})
	var peers []*streamPeer
	for i := range 3 {
		p := dialStream(t, "TCP", e.addr, nil)
		p.send(streamOptions("TCP", p.LocalAddr().String(), "cap-"+string(rune('a'+i))))
		if res := p.next(); status(res) != "200" {
			t.Fatalf("connection %d: %q", i, res)
		}
		peers = append(peers, p)
	}
	extra := dialStream(t, "TCP", e.addr, nil)
	extra.send(streamOptions("TCP", extra.LocalAddr().String(), "cap-d"))
	if ok, _ := closedWithin(extra.Conn, 2*time.Second); !ok {
		t.Fatal("the 4th connection from one address was not closed")
	}
	_ = peers[0].Close()
	var again *streamPeer
	for range 50 { // telgw notices the close when its read returns
		time.Sleep(20 * time.Millisecond)
		again = dialStream(t, "TCP", e.addr, nil)
		again.send(streamOptions("TCP", again.LocalAddr().String(), "cap-e"))
		_ = again.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if line, err := again.r.ReadString('\n'); err == nil && strings.HasPrefix(line, "SIP/2.0 200") {
			break
		}
		_ = again.Close()
		again = nil
	}
	if again == nil {
		t.Fatal("a closed connection's place was not freed")
	}
	// The trunk's address: no cap.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(carrierIP)}, Timeout: 2 * time.Second}
	for i := range 5 {
		c, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p := &streamPeer{t: t, Conn: c, r: bufio.NewReader(c)}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		p.send(streamOptions("TCP", c.LocalAddr().String(), "trunk-"+string(rune('a'+i))))
		if res := p.next(); status(res) != "200" {
			t.Fatalf("trunk connection %d: %q", i, res)
		}
	}
	if n := e.counter("telgw_sip_connections_closed_total", map[string]string{"transport": "tcp", "reason": "limit"}); n < 1 {
		t.Fatalf("refused over the limit: %v", n)
	}
}

// wsEnv is a Service serving WebRTC users' REGISTER on a SIP WebSocket endpoint.
func wsEnv(t *testing.T, tweak func(*sip.Config)) (*env, string) {
	t.Helper()
	users := &sip.Users{Registrar: &registrar.Registrar{Auth: registrar.NewAuthenticator(tokens{}, []byte("secret")), Location: registrar.NewLocation(nil)}}
	e := newEnv(t, envOpts{users: users, tweak: tweak})
	l := sipws.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	srv := httptest.NewServer(l)
	done := make(chan error, 1)
	go func() { done <- e.svc.ServeWS(l) }()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		srv.CloseClientConnections()
		srv.Close()
	})
	return e, srv.Listener.Addr().String()
}

// wsRegister sends a REGISTER for alice (with token as Bearer, RFC 8898, unless empty) on c
// and returns the status code.
func wsRegister(t *testing.T, c net.Conn, host, token, callID string) string {
	t.Helper()
	reg := "REGISTER sip:" + host + " SIP/2.0\r\n" +
		"Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK" + callID + ";rport\r\n" +
		"From: <sip:" + alice + "@" + host + ">;tag=65bnmj.i2\r\nTo: <sip:" + alice + "@" + host + ">\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n" +
		"Contact: <sip:dev@df7jal23ls0d.invalid;transport=ws>;expires=300\r\n"
	if token != "" {
		reg += "Authorization: Bearer " + token + "\r\n"
	}
	if err := wsutil.WriteClientText(c, []byte(reg+"Content-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	msg, err := wsutil.ReadServerText(c)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return status(string(msg))
}

func dialWS(t *testing.T, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, "ws://"+addr+"/sip/ws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestWebSocketMustRegister: a WebSocket that carries no authenticated request within
// sip.webrtc.registerTimeout is closed, whether it sends nothing or only requests that fail
// authentication; one whose REGISTER succeeded stays open while it sends CRLF keep-alives
// (RFC 5626 §4.4.1, answered with a pong) or WebSocket pings, and is closed once idle. A
// WebSocket beyond sip.maxConnsPerIP is closed at once.
func TestWebSocketMustRegister(t *testing.T) {
	e, addr := wsEnv(t, func(c *sip.Config) {
		c.WSRegisterTimeout, c.IdleTimeout, c.MaxConnsPerIP = 500*time.Millisecond, 1500*time.Millisecond, 3
	})
	silent := dialWS(t, addr)
	unauth := dialWS(t, addr)
	if code := wsRegister(t, unauth, addr, "", "ws-unauth"); code != "401" {
		t.Fatalf("REGISTER without credentials: %s", code)
	}
	user := dialWS(t, addr)
	if code := wsRegister(t, user, addr, aliceToken, "ws-alice"); code != "200" {
		t.Fatalf("REGISTER: %s", code)
	}
	// A fourth WebSocket from the address is over sip.maxConnsPerIP: closed before its handshake.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if c, _, _, err := (ws.Dialer{Protocols: []string{"sip"}}).Dial(ctx, "ws://"+addr+"/sip/ws"); err == nil {
		_ = c.Close()
		t.Fatal("a WebSocket over sip.maxConnsPerIP was accepted")
	}
	cancel()
	for name, c := range map[string]net.Conn{"silent": silent, "unauthenticated": unauth} {
		if ok, took := closedWithin(c, 3*time.Second); !ok || took > 2*time.Second {
			t.Fatalf("%s WebSocket closed %v after %v", name, ok, took)
		}
	}
	start := time.Now()
	for time.Since(start) < 2500*time.Millisecond {
		time.Sleep(300 * time.Millisecond)
		if err := wsutil.WriteClientText(user, []byte("\r\n\r\n")); err != nil {
			t.Fatalf("the registered WebSocket was closed after %v: %v", time.Since(start), err)
		}
		_ = user.SetReadDeadline(time.Now().Add(time.Second))
		if pong, err := wsutil.ReadServerText(user); err != nil || string(pong) != "\r\n" {
			t.Fatalf("pong after %v: %q, %v", time.Since(start), pong, err)
		}
	}
	// WebSocket ping frames (RFC 6455 §5.5.2) are traffic too.
	for start := time.Now(); time.Since(start) < 2500*time.Millisecond; {
		time.Sleep(300 * time.Millisecond)
		if err := wsutil.WriteClientMessage(user, ws.OpPing, nil); err != nil {
			t.Fatalf("the registered WebSocket was closed while pinging: %v", err)
		}
	}
	if code := wsRegister(t, user, addr, aliceToken, "ws-alice-2"); code != "200" {
		t.Fatalf("REGISTER refresh after pings: %s", code)
	}
	if ok, took := closedWithin(user, 4*time.Second); !ok || took > 3*time.Second {
		t.Fatalf("idle registered WebSocket closed %v after %v", ok, took)
	}
	for reason, want := range map[string]float64{"no_request": 2, "idle": 1, "limit": 1} {
		if n := e.counter("telgw_sip_connections_closed_total", map[string]string{"transport": "ws", "reason": reason}); n != want {
			t.Errorf("ws closed for %s: %v, want %v", reason, n, want)
		}
	}
}

// TestIdleConnectionCarryingACall: a customer's call over TCP keeps its connection open past
// sip.idleTimeout, though no SIP crosses it between the ACK and the BYE.
func TestIdleConnectionCarryingACall(t *testing.T) {
	sippPath(t)
	port := freePort(t, carrierIP)
	e := newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}},
		creds:  fakeCreds{"acme": sip.NewCredential("telgw", "acme", "s3cret", []string{ourNumber})},
		tweak:  func(c *sip.Config) { c.IdleTimeout = 700 * time.Millisecond },
	})
	carrier := e.start("carrier", carrierIP, port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret", "-t", "t1", "-d", "2500")
	carrier.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || cdr.Duration() < 2*time.Second {
		t.Fatalf("cdr %+v", cdr)
	}
}
