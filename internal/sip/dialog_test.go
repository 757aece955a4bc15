package sip_test

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sip"
)

// udpPeer is a SIP party written by hand over one UDP socket, so a test knows every Call-ID and
// tag of the call (an attacker who sniffs the signalling knows them too) and can send whatever
// it likes from wherever it likes. BYE and INFO it receives are answered 200.
type udpPeer struct {
	t    *testing.T
	conn net.PacketConn
	msgs chan string
}

func newUDPPeer(t *testing.T, ip string) *udpPeer {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &udpPeer{t: t, conn: c, msgs: make(chan string, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			if m := strings.Fields(msg); len(m) > 0 && (m[0] == "BYE" || m[0] == "INFO") {
				_, _ = c.WriteTo([]byte(reply(msg, "200 OK", "", "", "")), from)
			}
			select {
			case p.msgs <- msg:
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return p
}

func (p *udpPeer) addr() string { return p.conn.LocalAddr().String() }

func (p *udpPeer) send(to, msg string) {
	p.t.Helper()
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.WriteTo([]byte(msg), ua); err != nil {
		p.t.Fatal(err)
	}
}

// await returns the next message for which f is true, skipping others.
func (p *udpPeer) await(what string, f func(string) bool) string {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-p.msgs:
			if f(m) {
				return m
			}
		case <-deadline:
			p.t.Fatalf("no %s", what)
			return ""
		}
	}
}

func startsWith(prefix string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(m, prefix) }
}

// reply builds a response to req: its Via, From, To (with toTag added when given), Call-ID and
// CSeq, a Contact at contact when given, and an SDP body when sdp is set.
func reply(req, status, toTag, contact, sdp string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, line := range strings.Split(req, "\r\n")[1:] {
		if line == "" {
			break
		}
		k, _, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(line + "\r\n")
		case "to", "t":
			if toTag != "" {
				line += ";tag=" + toTag
			}
			b.WriteString(line + "\r\n")
		}
	}
	if contact != "" {
		b.WriteString("Contact: <sip:peer@" + contact + ">\r\n")
	}
	if sdp != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

var tagParam = regexp.MustCompile(`(?i);\s*tag\s*=\s*([^;>\s,]+)`)

// audioSDP is a PCMU offer or answer with media at ip:port.
func audioSDP(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=peer 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", ip, ip, port)
}

// mediaAddr is the c= address and m=audio port of an SDP body.
func mediaAddr(t *testing.T, msg string) string {
	t.Helper()
	c := regexp.MustCompile(`(?m)^c=IN IP4 (\S+)`).FindStringSubmatch(msg)
	m := regexp.MustCompile(`(?m)^m=audio (\d+) `).FindStringSubmatch(msg)
	if c == nil || m == nil {
		t.Fatalf("no media address in %q", msg)
	}
	return net.JoinHostPort(c[1], m[1])
}

// rtpPeer is an RTP socket that counts what it receives and can echo it back.
type rtpPeer struct {
	conn net.PacketConn
	got  atomic.Int64
}

func newRTPPeer(t *testing.T, ip string, echo bool) *rtpPeer {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rtpPeer{conn: c}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			r.got.Add(1)
			if echo {
				_, _ = c.WriteTo(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
	return r
}

func (r *rtpPeer) port() int { return r.conn.LocalAddr().(*net.UDPAddr).Port }

// stream sends 20 ms PCMU packets to `to` until stop is closed.
func (r *rtpPeer) stream(t *testing.T, to string, stop chan struct{}) chan struct{} {
	ua, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		pkt := make([]byte, 12+160)
		pkt[0] = 0x80
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pkt[2], pkt[3] = byte(seq>>8), byte(seq)
			_, _ = r.conn.WriteTo(pkt, ua)
		}
	}()
	return done
}

// spoof sends msg (its top Via pointed at a fresh socket on ip) to telgw and returns the final
// response's status code, or "" when none came within wait.
func spoof(t *testing.T, ip, to, msg string, wait time.Duration) string {
	t.Helper()
	p := newUDPPeer(t, ip)
	if loc := topVia.FindStringIndex(msg); loc != nil {
		msg = msg[:loc[0]] + "Via: SIP/2.0/UDP " + p.addr() + msg[loc[1]:]
	}
	p.send(to, msg)
	deadline := time.After(wait)
	for {
		select {
		case m := <-p.msgs:
			if f := strings.Fields(m); len(f) > 1 && f[0] == "SIP/2.0" && f[1] != "100" {
				return f[1]
			}
		case <-deadline:
			return ""
		}
	}
}

// request writes an in-dialog request: from and to are whole header values.
func request(method, ruri, via, from, to, callID string, cseq int, sdp string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%s;rport\r\n", method, ruri, via, randTag())
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n", from, to, callID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:peer@%s>\r\n", via)
	if sdp != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	if method == "INFO" && sdp == "" {
		body := "Signal=5\r\nDuration=160\r\n"
		fmt.Fprintf(&b, "Content-Type: application/dtmf-relay\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return b.String()
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdp), sdp)
	return b.String()
}

var tagSeq atomic.Int64

func randTag() string { return "t" + strconv.FormatInt(time.Now().UnixNano()+tagSeq.Add(1), 36) }

// TestInDialogRequestsMatchTheDialog: on an established call (a carrier calling a PBX, both
// written by hand over UDP, RTP flowing both ways), BYE, re-INVITE, INFO and ACK that carry the
// call's Call-ID but forged tags, or the right tags from another source, get 481 (ACK: nothing)
// and are counted; a second INVITE reusing the Call-ID gets 482; the media stays where it was
// (the attacker's RTP port receives nothing, the caller keeps hearing the PBX's echo) and the
// call stays up until the caller's own BYE ends it. RFC 3261 §12.2.2.
func TestInDialogRequestsMatchTheDialog(t *testing.T) {
	hc := newHandCall(t, nil)
	e, carrier, pbx, callerRTP := hc.e, hc.carrier, hc.pbx, hc.callerRTP
	cid, cFrom, aTo, ruri := hc.callID, hc.from, hc.to, hc.ruri
	bCallID, bFrom, bTo := hc.bCallID, hc.bFrom, hc.bTo
	attackerRTP := newRTPPeer(t, strangerIP, false)
	forged := func(h string) string { return tagParam.ReplaceAllString(h, ";tag="+randTag()) }
	attack := audioSDP(strangerIP, attackerRTP.port())

	for _, tc := range []struct {
		name, ip, msg, want string
	}{
		{"BYE, forged tags, from a stranger", strangerIP, request("BYE", ruri, "x", forged(cFrom), forged(aTo), cid, 2, ""), "481"},
		{"BYE, forged tags, from the carrier", carrierIP, request("BYE", ruri, "x", forged(cFrom), forged(aTo), cid, 2, ""), "481"},
		{"BYE, forged To tag only", carrierIP, request("BYE", ruri, "x", cFrom, forged(aTo), cid, 2, ""), "481"},
		{"BYE, right tags, from a stranger", strangerIP, request("BYE", ruri, "x", cFrom, aTo, cid, 2, ""), "481"},
		{"re-INVITE to the attacker, right tags, from a stranger", strangerIP, request("INVITE", ruri, "x", cFrom, aTo, cid, 3, attack), "481"},
		{"re-INVITE to the attacker, forged tags, from the carrier", carrierIP, request("INVITE", ruri, "x", forged(cFrom), forged(aTo), cid, 3, attack), "481"},
		{"INFO, right tags, from a stranger", strangerIP, request("INFO", ruri, "x", cFrom, aTo, cid, 4, ""), "481"},
		{"ACK with an answer, right tags, from a stranger", strangerIP, request("ACK", ruri, "x", cFrom, aTo, cid, 1, attack), ""},
		{"callee's BYE, right tags, from a stranger", strangerIP, request("BYE", "sip:telgw@"+e.addr, "x", bFrom, bTo, bCallID, 2, ""), "481"},
		{"callee's BYE, forged tags, from the PBX", pbxIP, request("BYE", "sip:telgw@"+e.addr, "x", forged(bFrom), forged(bTo), bCallID, 2, ""), "481"},
		{"callee's re-INVITE to the attacker, right tags, from a stranger", strangerIP, request("INVITE", "sip:telgw@"+e.addr, "x", bFrom, bTo, bCallID, 2, attack), "481"},
		// Methods telgw does not implement are refused before any dialog matching (RFC 3261
		// §8.2.1), the same answer whether or not the call exists. REFER is matched (refer.go).
		{"UPDATE, forged tags, from a stranger", strangerIP, request("UPDATE", ruri, "x", forged(cFrom), forged(aTo), cid, 5, attack), "501"},
		{"REFER, right tags, from a stranger", strangerIP, request("REFER", ruri, "x", cFrom, aTo, cid, 5, ""), "481"},
		{"callee's REFER, right tags, from a stranger", strangerIP, request("REFER", "sip:telgw@"+e.addr, "x", bFrom, bTo, bCallID, 3, ""), "481"},
		{"callee's REFER, forged tags, from the PBX", pbxIP, request("REFER", "sip:telgw@"+e.addr, "x", forged(bFrom), forged(bTo), bCallID, 3, ""), "481"},
		{"a new INVITE reusing the Call-ID", carrierIP, request("INVITE", ruri, "x", forged(cFrom), "<"+ruri+">", cid, 1, attack), "482"},
	} {
		wait := 2 * time.Second
		if tc.want == "" {
			wait = 300 * time.Millisecond
		}
		if got := spoof(t, tc.ip, e.addr, tc.msg, wait); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := e.svc.ActiveCalls(); n != 1 {
		t.Fatalf("%d calls active after the forged requests, want the one call still up", n)
	}
	// An in-dialog request of the caller's from another port of its address is its own (a new
	// socket or a NAT rebinding): relayed to the PBX, answered 200.
	if got := spoof(t, carrierIP, e.addr, request("INFO", ruri, "x", cFrom, aTo, cid, 5, ""), 5*time.Second); got != "200" {
		t.Errorf("INFO from the caller's address, another port: got %q, want 200", got)
	}
	pbx.await("INFO relayed to the PBX", startsWith("INFO "))

	before := callerRTP.got.Load()
	time.Sleep(500 * time.Millisecond)
	if n := callerRTP.got.Load() - before; n < 10 {
		t.Errorf("caller got %d echoed packets in 500 ms after the forged requests, want the media to keep flowing", n)
	}
	if n := attackerRTP.got.Load(); n != 0 {
		t.Errorf("attacker's RTP port got %d packets", n)
	}
	for reason, want := range map[string]float64{"tags": 6, "source": 8} {
		if n := e.counter("telgw_sip_dialog_mismatch_total", map[string]string{"reason": reason}); n != want {
			t.Errorf("dialog mismatches for %s: %v, want %v", reason, n, want)
		}
	}

	// The caller's own BYE ends the call; telgw hangs up the PBX.
	hc.stopMedia()
	carrier.send(e.addr, request("BYE", ruri, carrier.addr(), cFrom, aTo, cid, 6, ""))
	carrier.await("200 for the BYE", func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 200") && strings.Contains(header(m, "CSeq"), "BYE")
	})
	pbx.await("BYE at the PBX", startsWith("BYE "))
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
	var answered bool
	for _, c := range e.cdrs.wait(t, 2) {
		answered = answered || c.Disposition == "answered" && c.EndedBy == "caller"
	}
	if !answered {
		t.Fatalf("no answered call ended by the caller in %+v", e.cdrs.all())
	}
}

// handCall is a call from a carrier to a PBX through telgw, both parties written by hand over
// UDP, the caller streaming RTP that the PBX echoes.
type handCall struct {
	e                   *env
	carrier, pbx        *udpPeer
	callerRTP           *rtpPeer
	callID, from, to    string // the caller's dialog: From and To as the caller sends them
	ruri                string
	bCallID, bFrom, bTo string // the PBX's dialog: From and To as the PBX sends them
	stopMedia           func()
}

func newHandCall(t *testing.T, tweak func(*sip.Config)) *handCall {
	t.Helper()
	hc := &handCall{carrier: newUDPPeer(t, carrierIP), pbx: newUDPPeer(t, pbxIP)}
	hc.e = newEnv(t, envOpts{trunks: []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, portOf(hc.carrier.addr()))}, tweak: tweak})
	e, carrier, pbx := hc.e, hc.carrier, hc.pbx
	e.router.set(ourNumber, sip.SIPRoute{URI: "sip:pbx@" + pbx.addr()})
	callerRTP, pbxRTP := newRTPPeer(t, carrierIP, false), newRTPPeer(t, pbxIP, true)
	hc.callerRTP = callerRTP

	hc.callID = "dlg-" + randTag() + "@" + carrierIP
	hc.from = fmt.Sprintf("<sip:%s@%s>;tag=%s", otherNumber, carrierIP, randTag())
	hc.ruri = "sip:" + ourNumber + "@" + e.addr
	carrier.send(e.addr, request("INVITE", hc.ruri, carrier.addr(), hc.from, "<"+hc.ruri+">", hc.callID, 1, audioSDP(carrierIP, callerRTP.port())))
	inv := pbx.await("INVITE at the PBX", startsWith("INVITE "))
	ptag := randTag()
	pbx.send(hostPortOfVia(t, inv), reply(inv, "200 OK", ptag, pbx.addr(), audioSDP(pbxIP, pbxRTP.port())))
	pbx.await("ACK at the PBX", startsWith("ACK "))
	ok := carrier.await("200 for the INVITE", func(m string) bool {
		return strings.HasPrefix(m, "SIP/2.0 200") && strings.Contains(header(m, "CSeq"), "INVITE")
	})
	hc.to = header(ok, "To", "t")
	carrier.send(e.addr, request("ACK", hc.ruri, carrier.addr(), hc.from, hc.to, hc.callID, 1, ""))
	stop := make(chan struct{})
	streamed := callerRTP.stream(t, mediaAddr(t, ok), stop)
	var once sync.Once
	hc.stopMedia = func() { once.Do(func() { close(stop); <-streamed }) }
	t.Cleanup(hc.stopMedia)
	eventually(t, "echo reaches the caller", func() bool { return callerRTP.got.Load() > 10 })
	// The callee's dialog as the PBX sees it (telgw is its UAC).
	hc.bCallID, hc.bFrom, hc.bTo = header(inv, "Call-ID", "i"), header(inv, "To", "t")+";tag="+ptag, header(inv, "From", "f")
	return hc
}

// TestDialogSourceCheckOff: with sip.dialogSourceCheck off, a request with the dialog's Call-ID
// and tags is the peer's wherever it comes from; forged tags still get 481.
func TestDialogSourceCheckOff(t *testing.T) {
	hc := newHandCall(t, func(c *sip.Config) { off := false; c.DialogSourceCheck = &off })
	forged := request("BYE", hc.ruri, "x", hc.from, tagParam.ReplaceAllString(hc.to, ";tag=forged"), hc.callID, 2, "")
	if got := spoof(t, strangerIP, hc.e.addr, forged, 2*time.Second); got != "481" {
		t.Fatalf("forged tags: %q, want 481", got)
	}
	if got := spoof(t, strangerIP, hc.e.addr, request("BYE", hc.ruri, "x", hc.from, hc.to, hc.callID, 3, ""), 5*time.Second); got != "200" {
		t.Fatalf("right tags from another address: %q, want 200", got)
	}
	hc.pbx.await("BYE at the PBX", startsWith("BYE "))
	eventually(t, "no active calls", func() bool { return hc.e.svc.ActiveCalls() == 0 })
}

// hostPortOfVia is where a request's sender takes responses: its top Via's sent-by (with
// rport's value when given).
func hostPortOfVia(t *testing.T, req string) string {
	t.Helper()
	v := header(req, "Via", "v")
	f := strings.Fields(v)
	if len(f) < 2 {
		t.Fatalf("no Via in %q", req)
	}
	sentBy, params, _ := strings.Cut(f[1], ";")
	for p := range strings.SplitSeq(params, ";") {
		if k, val, ok := strings.Cut(p, "="); ok && k == "rport" && val != "" {
			sentBy = net.JoinHostPort(hostOnly(sentBy), val)
		}
	}
	return sentBy
}

func portOf(hostport string) int {
	_, p, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(p)
	return n
}
