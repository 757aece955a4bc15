package sip_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	icdigest "github.com/icholy/digest"

	"github.com/telgw/telgw/internal/sip"
)

// fakeUAS is a carrier or PBX that answers every INVITE with code and counts them.
type fakeUAS struct {
	addr    string
	invites atomic.Int64
}

func startFakeUAS(t *testing.T, ip string, code int) *fakeUAS {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("fake-uas"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUAS{}
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		f.invites.Add(1)
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, code, "Busy Here", nil))
	})
	srv.OnAck(func(*sipmsg.Request, sipmsg.ServerTransaction) {})
	conn, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	f.addr = conn.LocalAddr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		_ = conn.Close()
		_ = srv.Close()
		_ = ua.Close()
		<-done
	})
	return f
}

// rawUAC sends hand-written SIP over UDP from one address, as an attacker replaying
// captured headers would.
type rawUAC struct {
	t    *testing.T
	conn net.PacketConn
	to   net.Addr
	n    int
}

func newRawUAC(t *testing.T, ip, to string) *rawUAC {
	t.Helper()
	conn, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	return &rawUAC{t: t, conn: conn, to: ua}
}

const testOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.4\r\ns=-\r\nc=IN IP4 127.0.0.4\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// send sends one out-of-dialog request (a fresh Call-ID and branch each time, as a replayer
// would) and returns its final response; a non-2xx INVITE response is acknowledged.
func (u *rawUAC) send(method, ruri, from string, hdrs ...string) *sipmsg.Response {
	u.t.Helper()
	u.n++
	local := u.conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-raw-%d-%d", time.Now().UnixNano(), u.n)
	callID := fmt.Sprintf("raw-%d-%d", time.Now().UnixNano(), u.n)
	head := fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nFrom: <sip:%s@%s>;tag=f%d\r\nTo: <%s>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 %s\r\nContact: <sip:c@%s>\r\nMax-Forwards: 70\r\n",
		method, ruri, local, branch, from, hostOf(local), u.n, ruri, callID, method, local)
	for _, h := range hdrs {
		head += h + "\r\n"
	}
	body := ""
	if method == "INVITE" {
		body = testOffer
		head += "Content-Type: application/sdp\r\n"
	}
	msg := head + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	if _, err := u.conn.WriteTo([]byte(msg), u.to); err != nil {
		u.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_ = u.conn.SetReadDeadline(deadline)
		n, _, err := u.conn.ReadFrom(buf)
		if err != nil {
			u.t.Fatalf("%s %s: no final response: %v", method, ruri, err)
		}
		m, err := sipmsg.ParseMessage(buf[:n])
		if err != nil {
			u.t.Fatalf("parse %q: %v", buf[:n], err)
		}
		res, ok := m.(*sipmsg.Response)
		if !ok || res.StatusCode < 200 {
			continue
		}
		if method == "INVITE" && res.StatusCode >= 300 {
			ack := fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nFrom: <sip:%s@%s>;tag=f%d\r\nTo: %s\r\n"+
				"Call-ID: %s\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
				ruri, local, branch, from, hostOf(local), u.n, res.To().Value(), callID)
			_, _ = u.conn.WriteTo([]byte(ack), u.to)
		}
		return res
	}
}

func hostOf(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}

// answerChallenge computes credentials for a 401/407's challenge, for ruri, with nonce-count nc.
func answerChallenge(t *testing.T, chal, method, ruri, user, pass string, nc int) string {
	t.Helper()
	c, err := icdigest.ParseChallenge(chal)
	if err != nil {
		t.Fatalf("challenge %q: %v", chal, err)
	}
	cred, err := icdigest.Digest(c, icdigest.Options{Method: method, URI: ruri, Username: user, Password: pass, Count: nc, Cnonce: "a1b2c3d4"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

// TestDigestReplayRefused: a customer endpoint's authorized INVITE is captured; its
// Proxy-Authorization replayed for another number is refused (403, RFC 7616 §3.4.6) and
// replayed for the same number with the same nonce-count is challenged again (RFC 7616 §3.4.5),
// while the endpoint's own next request on the nonce (nc 2) still goes through without a new
// challenge. Today the captured header dialled any number for 5 minutes.
func TestDigestReplayRefused(t *testing.T) {
	carrier := startFakeUAS(t, carrierIP, 486)
	tr := sip.TrunkConfig{Name: "carrier1", Address: carrier.addr, Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}
	e := newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{tr},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}},
		creds:  fakeCreds{"acme": sip.NewCredential("telgw", "acme", "s3cret", []string{ourNumber})},
	})
	uac := newRawUAC(t, customerIP, e.addr)
	ruri := "sip:" + otherNumber + "@" + e.addr
	res := uac.send("INVITE", ruri, ourNumber)
	if res.StatusCode != 407 {
		t.Fatalf("no credentials: %d, want 407", res.StatusCode)
	}
	chal := res.GetHeader("Proxy-Authenticate").Value()
	captured := answerChallenge(t, chal, "INVITE", ruri, "acme", "s3cret", 1)
	if res := uac.send("INVITE", ruri, ourNumber, "Proxy-Authorization: "+captured); res.StatusCode != 486 || carrier.invites.Load() != 1 {
		t.Fatalf("authorized call: %d, carrier saw %d INVITEs; want the carrier's 486 after 1", res.StatusCode, carrier.invites.Load())
	}

	// (a) Another Request-URI (another number) with the captured header: 403.
	for _, other := range []string{"+12125550142", "+19005550100"} {
		res := uac.send("INVITE", "sip:"+other+"@"+e.addr, ourNumber, "Proxy-Authorization: "+captured)
		if res.StatusCode != 403 {
			t.Fatalf("replay to %s: %d, want 403", other, res.StatusCode)
		}
	}
	// (b) The same Request-URI and nonce-count again: challenged again (stale=true).
	res = uac.send("INVITE", ruri, ourNumber, "Proxy-Authorization: "+captured)
	if res.StatusCode != 407 || !strings.Contains(strings.ToLower(res.GetHeader("Proxy-Authenticate").Value()), "stale=true") {
		t.Fatalf("replay with the same nc: %d %v, want 407 stale=true", res.StatusCode, res.GetHeader("Proxy-Authenticate"))
	}
	if n := carrier.invites.Load(); n != 1 {
		t.Fatalf("the carrier saw %d INVITEs, want 1: a replay got through", n)
	}
	// The endpoint's own next call on the same nonce, nc 2 (SIPp, baresip, JsSIP do this).
	next := answerChallenge(t, chal, "INVITE", ruri, "acme", "s3cret", 2)
	if res := uac.send("INVITE", ruri, ourNumber, "Proxy-Authorization: "+next); res.StatusCode != 486 || carrier.invites.Load() != 2 {
		t.Fatalf("nc 2: %d, carrier saw %d INVITEs; want 486 after 2", res.StatusCode, carrier.invites.Load())
	}
}

// TestUserDigestInviteReplayRefused: the same for a WebRTC user's INVITE over WebSocket with
// its token as the digest password (registrar.Authenticator).
func TestUserDigestInviteReplayRefused(t *testing.T) {
	carrier := startFakeUAS(t, carrierIP, 486)
	tr := sip.TrunkConfig{Name: "carrier1", Address: carrier.addr, Allow: []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}}
	ue := newUserEnv(t, []sip.TrunkConfig{tr}, []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}})
	d := newDevice(t, ue, "", 0)
	_, code, _ := d.call(otherNumber)
	if code != 401 || d.lastChallenge == "" {
		t.Fatalf("no credentials: %d, want 401 with a digest challenge", code)
	}
	ruri := "sip:" + otherNumber + "@127.0.0.1"
	d.auth = answerChallenge(t, d.lastChallenge, "INVITE", ruri, alice, aliceToken, 1)
	if _, code, _ := d.call(otherNumber); code != 486 || carrier.invites.Load() != 1 {
		t.Fatalf("authorized call: %d, carrier saw %d; want 486 after 1", code, carrier.invites.Load())
	}
	if _, code, _ := d.call("+12125550142"); code != 403 {
		t.Fatalf("replay to another number: %d, want 403", code)
	}
	if _, code, _ := d.call(otherNumber); code != 401 || !strings.Contains(d.lastChallenge, "stale=true") {
		t.Fatalf("replay with the same nc: %d (%s), want 401 stale=true", code, d.lastChallenge)
	}
	if n := carrier.invites.Load(); n != 1 {
		t.Fatalf("the carrier saw %d INVITEs, want 1: a replay got through", n)
	}
}

// TestWebSocketIsNeverATrunk: a trunk accepts 127.0.0.1 (a reverse proxy, or a local Kamailio
// trunk); a WebSocket client on loopback is still a user: without a token it is challenged
// (401), not routed as the carrier's call, and with one it calls out as the user.
func TestWebSocketIsNeverATrunk(t *testing.T) {
	carrier := startFakeUAS(t, carrierIP, 486)
	pbx := startFakeUAS(t, pbxIP, 486)
	tr := sip.TrunkConfig{Name: "local-kamailio", Address: carrier.addr, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	ue := newUserEnv(t, []sip.TrunkConfig{tr}, []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"local-kamailio"}}})
	ue.router.set(ourNumber, sip.SIPRoute{URI: "sip:pbx@" + pbx.addr})
	for _, number := range []string{ourNumber, otherNumber} {
		if _, code, _ := newDevice(t, ue, "", 0).call(number); code != 401 {
			t.Fatalf("WebSocket INVITE to %s without a token: %d, want 401", number, code)
		}
	}
	if p, c := pbx.invites.Load(), carrier.invites.Load(); p != 0 || c != 0 {
		t.Fatalf("a tokenless WebSocket INVITE was routed as a carrier call (pbx %d, carrier %d INVITEs)", p, c)
	}
	if _, code, _ := newDevice(t, ue, aliceToken, 0).call(otherNumber); code != 486 || carrier.invites.Load() != 1 {
		t.Fatalf("with a token: %d, carrier saw %d; want the carrier's 486", code, carrier.invites.Load())
	}
	for _, c := range ue.cdrs.all() {
		if c.Direction == sip.Inbound {
			t.Fatalf("a WebSocket call recorded as inbound from a trunk: %+v", c)
		}
	}
}

// TestUserRegisterBounds: devices per user and contacts per REGISTER are capped (403, the
// existing bindings stay); REGISTER over plain UDP or TCP is refused; a closed WebSocket takes
// its bindings with it.
func TestUserRegisterBounds(t *testing.T) {
	ue := newUserEnv(t, nil, nil)
	ue.users.Registrar.MaxDevices = 2
	ue.users.Registrar.MaxContacts = 2
	devs := []*device{newDevice(t, ue, aliceToken, 0), newDevice(t, ue, aliceToken, 0), newDevice(t, ue, aliceToken, 0)}
	for i, d := range devs[:2] {
		if code := d.register(300); code != 200 {
			t.Fatalf("device %d: %d", i, code)
		}
	}
	if code := devs[2].register(300); code != 403 || devs[2].lastReason != "Too Many Registrations" {
		t.Fatalf("third device: %d %q, want 403 Too Many Registrations", code, devs[2].lastReason)
	}
	if code := devs[0].register(600); code != 200 {
		t.Fatalf("refresh at the cap: %d", code)
	}
	if n := len(ue.loc.Lookup(alice)); n != 2 {
		t.Fatalf("%d bindings, want 2", n)
	}
	// Three Contact values in one REGISTER (after one device left: room for them but one).
	if code := devs[1].register(0); code != 200 {
		t.Fatalf("unregister: %d", code)
	}
	devs[2].extraContacts = []string{"<sip:x1@h.invalid;transport=ws>", "<sip:x2@h.invalid;transport=ws>"}
	if code := devs[2].register(300); code != 403 || devs[2].lastReason != "Too Many Contacts" {
		t.Fatalf("3 contacts in one REGISTER: %d %q, want 403 Too Many Contacts", code, devs[2].lastReason)
	}
	if n := len(ue.loc.Lookup(alice)); n != 1 {
		t.Fatalf("%d bindings after refused REGISTERs, want 1", n)
	}

	// Plain UDP and TCP: 403, whatever the token.
	for _, tp := range []string{"udp", "tcp"} {
		conn, err := net.Dial(tp, ue.addr)
		if err != nil {
			t.Fatal(err)
		}
		local := conn.LocalAddr().String()
		msg := fmt.Sprintf("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/%s %s;branch=z9hG4bK-reg-%s\r\nFrom: <sip:%s@127.0.0.1>;tag=r1\r\n"+
			"To: <sip:%s@127.0.0.1>\r\nCall-ID: reg-%s\r\nCSeq: 1 REGISTER\r\nContact: <sip:u@%s;transport=%s>;expires=300\r\n"+
			"Authorization: Bearer %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			strings.ToUpper(tp), local, tp, alice, alice, tp, local, tp, aliceToken)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		_ = conn.Close()
		if err != nil {
			t.Fatalf("%s: %v", tp, err)
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 403") {
			t.Fatalf("REGISTER over %s: %q, want 403", tp, strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
		}
	}
	if n := len(ue.loc.Lookup(alice)); n != 1 {
		t.Fatalf("%d bindings after REGISTERs over UDP/TCP, want 1", n)
	}

	// The remaining device's WebSocket closes: its binding goes with it.
	devs[0].close()
	eventually(t, "bindings of a closed WebSocket removed", func() bool { return len(ue.loc.Lookup(alice)) == 0 })
}

// TestUserBindingsFollowTheWebSocket: bindings made over one connection go when it closes, and
// another connection's stay.
func TestUserBindingsFollowTheWebSocket(t *testing.T) {
	ue := newUserEnv(t, nil, nil)
	a, b := newDevice(t, ue, aliceToken, 0), newDevice(t, ue, aliceToken, 0)
	for _, d := range []*device{a, b} {
		if code := d.register(300); code != 200 {
			t.Fatalf("register: %d", code)
		}
	}
	if n := len(ue.loc.Lookup(alice)); n != 2 {
		t.Fatalf("%d bindings, want 2", n)
	}
	a.close()
	eventually(t, "one binding left", func() bool { return len(ue.loc.Lookup(alice)) == 1 })
	if got := ue.loc.Lookup(alice)[0].URI.User; got != b.user {
		t.Fatalf("binding left is %q, want %q", got, b.user)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(ue.loc.Lookup(alice)); n != 1 {
		t.Fatalf("%d bindings, want 1", n)
	}
}
