package sip_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/pion/rtp"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sip/digest"
	"github.com/telgw/telgw/internal/sipws"
)

const (
	alice      = "8:acs:test_alice"
	aliceToken = "token-alice"
	bob        = "8:acs:test_bob" // has no number
	bobToken   = "token-bob"
)

// tokens stands in for the identity service: two users with voip tokens.
type tokens struct{}

func (tokens) Verify(_ context.Context, tok string) (identity.Claims, error) {
	switch tok {
	case aliceToken:
		return identity.Claims{Identity: alice, Scopes: []identity.Scope{identity.ScopeVoIP}}, nil
	case bobToken:
		return identity.Claims{Identity: bob, Scopes: []identity.Scope{identity.ScopeVoIP}}, nil
	case "token-chat":
		return identity.Claims{Identity: alice, Scopes: []identity.Scope{identity.ScopeChat}}, nil
	}
	return identity.Claims{}, problem.Unauthorized("invalid token")
}

// DigestHA1s: alice's token is her digest password (realm telgw).
func (tokens) DigestHA1s(_ context.Context, user, alg string) ([]string, error) {
	if user != alice {
		return nil, nil
	}
	return []string{digest.HA1(alg, alice, identity.DigestRealm, aliceToken)}, nil
}

// userEnv is a Service serving WebRTC users on a WebSocket endpoint, with SIPp as carrier.
type userEnv struct {
	*env
	ws       string // host:port of the SIP WebSocket
	loc      *registrar.Location
	users    *sip.Users
	notified chan string
	eng      *webrtc.Engine
}

func newUserEnv(t *testing.T, trunks []sip.TrunkConfig, routes []sip.OutboundRoute) *userEnv {
	return newUserEnvTimeout(t, trunks, routes, 10*time.Second)
}

func newUserEnvTimeout(t *testing.T, trunks []sip.TrunkConfig, routes []sip.OutboundRoute, connect time.Duration) *userEnv {
	t.Helper()
	checkSockets(t)
	quiet := slog.New(slog.DiscardHandler)
	eng, err := webrtc.NewEngine(webrtc.Config{IncludeLoopback: true, IPs: []string{"127.0.0.1"}, ConnectTimeout: connect}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	ue := &userEnv{notified: make(chan string, 4), eng: eng}
	loc := registrar.NewLocation(nil)
	users := &sip.Users{
		Registrar: &registrar.Registrar{Auth: registrar.NewAuthenticator(tokens{}, []byte("secret")), Location: loc},
		Engine:    eng,
		Number: func(_ context.Context, user string) (string, error) {
			if user == alice {
				return ourNumber, nil
			}
			return "", errors.New("no number")
		},
		Notify: func(_ context.Context, user, _, _, _ string) { ue.notified <- user },
	}
	ue.loc, ue.users = loc, users
	ue.env = newEnv(t, envOpts{trunks: trunks, routes: routes, users: users})
	l := sipws.NewListener(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	srv := httptest.NewServer(l)
	done := make(chan error, 1)
	go func() { done <- ue.svc.ServeWS(l) }()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		srv.CloseClientConnections()
		srv.Close()
	})
	ue.ws = srv.Listener.Addr().String()
	return ue
}

// device is a WebRTC user's app: a sipgo UA over one WebSocket and a pion WebRTC leg that
// echoes the audio it receives.
type device struct {
	t      *testing.T
	ue     *userEnv
	token  string
	ua     *sipgo.UserAgent
	client *sipgo.Client
	dlgUA  *sipgo.DialogUA
	answer chan *sipgo.DialogServerSession
	legs   chan *webrtc.Leg
	reject int  // answer incoming calls with this code instead
	mute   bool // answer, then never complete ICE (the leg is closed at once)
	echoed atomic.Int64
	dtmf   atomic.Int64 // telephone-event packets received (PT 101)
	user   string       // Contact user part, unique per device
	infos  atomic.Int64 // INFO requests received
	cur    atomic.Pointer[sipgo.DialogServerSession]
	// auth, when set, is sent as the Authorization value instead of the Bearer token.
	auth string
	// lastChallenge is the Digest challenge (MD5) of the last 401; lastReason the last
	// REGISTER response's reason phrase.
	lastChallenge string
	lastReason    string
	// extraContacts are further Contact values sent in REGISTER.
	extraContacts []string
}

// close closes the device's connection (its WebSocket), as a closed browser tab does.
func (d *device) close() { _ = d.ua.Close() }

func (d *device) authorization() string {
	if d.auth != "" {
		return d.auth
	}
	if d.token != "" {
		return "Bearer " + d.token
	}
	return ""
}

func (d *device) noteChallenge(res *sipmsg.Response) {
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		if v := h.Value(); strings.HasPrefix(v, "Digest") && strings.Contains(v, "MD5") {
			d.lastChallenge = v
		}
	}
}

func newDevice(t *testing.T, ue *userEnv, token string, reject int) *device {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("pion-device"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	d := &device{t: t, ue: ue, token: token, ua: ua, client: cli, answer: make(chan *sipgo.DialogServerSession, 1), legs: make(chan *webrtc.Leg, 2), reject: reject}
	d.user = "dev" + sipmsg.GenerateTagN(6)
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: d.user, Host: "df7jal23ls0d.invalid", UriParams: sipmsg.NewParams()}}
	contact.Address.UriParams.Add("transport", "ws")
	d.dlgUA = &sipgo.DialogUA{Client: cli, ContactHDR: contact, RewriteContact: true}
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		ds, err := d.dlgUA.ReadInvite(req, tx)
		if err != nil {
			return
		}
		d.cur.Store(ds)
		_ = ds.Respond(180, "Ringing", nil)
		if d.reject != 0 {
			_ = ds.Respond(d.reject, "Busy Here", nil)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		leg, ans, err := ue.eng.Answer(ctx, string(req.Body()), webrtc.LegOptions{})
		if err != nil {
			_ = ds.Respond(488, "Not Acceptable Here", nil)
			return
		}
		if d.mute {
			_ = leg.Close()
		} else {
			d.echo(leg)
		}
		if err := ds.RespondSDP([]byte(ans)); err != nil {
			_ = leg.Close()
			return
		}
		d.answer <- ds
	})
	srv.OnInfo(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		d.infos.Add(1)
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnAck(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if ds := d.cur.Load(); ds != nil {
			_ = ds.ReadAck(req, tx)
		}
	})
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		if ds := d.cur.Load(); ds == nil || ds.ReadBye(req, tx) != nil {
			_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
		}
		for {
			select {
			case l := <-d.legs:
				_ = l.Close()
			default:
				return
			}
		}
	})
	t.Cleanup(func() {
		for {
			select {
			case l := <-d.legs:
				_ = l.Close()
			default:
				_ = srv.Close()
				_ = ua.Close()
				return
			}
		}
	})
	return d
}

// echo returns every RTP packet the leg receives (audio and DTMF), like SIPp's -rtp_echo.
func (d *device) echo(leg *webrtc.Leg) { d.receive(leg, true) }

// receive reads the leg's RTP, counting it in echoed and sending it back when echo is set.
func (d *device) receive(leg *webrtc.Leg, echo bool) {
	d.legs <- leg
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := leg.ReadRTP(buf)
			if err != nil {
				return
			}
			if buf[1]&0x7f == 101 {
				d.dtmf.Add(1)
			}
			if !echo {
				d.echoed.Add(1)
			} else if leg.WriteRTP(buf[:n]) == nil {
				d.echoed.Add(1)
			}
		}
	}()
}

func (d *device) request(method sipmsg.RequestMethod, user string) *sipmsg.Request {
	req := sipmsg.NewRequest(method, sipmsg.Uri{Scheme: "sip", User: user, Host: "127.0.0.1"})
	req.SetDestination(d.ue.ws)
	req.SetTransport("WS")
	return req
}

// register sends REGISTER with the token as Bearer (RFC 8898) and returns the status.
func (d *device) register(expires int) int {
	d.t.Helper()
	req := d.request(sipmsg.REGISTER, "")
	req.AppendHeader(sipmsg.NewHeader("To", "<sip:"+alice+"@127.0.0.1>"))
	req.AppendHeader(sipmsg.NewHeader("From", "<sip:"+alice+"@127.0.0.1>;tag="+sipmsg.GenerateTagN(8)))
	req.AppendHeader(sipmsg.NewHeader("Contact", "<sip:"+d.user+"@df7jal23ls0d.invalid;transport=ws>;expires="+strconv.Itoa(expires)))
	for _, c := range d.extraContacts {
		req.AppendHeader(sipmsg.NewHeader("Contact", c))
	}
	if a := d.authorization(); a != "" {
		req.AppendHeader(sipmsg.NewHeader("Authorization", a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := d.client.Do(ctx, req)
	if err != nil {
		d.t.Fatalf("register: %v", err)
	}
	d.lastReason = res.Reason
	d.noteChallenge(res)
	return res.StatusCode
}

// invite sends one INVITE with body as the offer and returns the final status (a 2xx is
// acknowledged and hung up).
func (d *device) invite(number, body string) int {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inv := d.request(sipmsg.INVITE, number)
	inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	inv.AppendHeader(sipmsg.NewHeader("From", "<sip:"+alice+"@127.0.0.1>;tag="+sipmsg.GenerateTagN(8)))
	inv.AppendHeader(sipmsg.NewHeader("To", "<sip:"+number+"@127.0.0.1>"))
	inv.AppendHeader(&d.dlgUA.ContactHDR)
	inv.AppendHeader(sipmsg.NewHeader("Authorization", "Bearer "+d.token))
	inv.SetBody([]byte(body))
	dlg, err := d.dlgUA.WriteInvite(ctx, inv)
	if err != nil {
		d.t.Fatal(err)
	}
	defer dlg.Close()
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) {
		return dr.Res.StatusCode
	}
	if err != nil {
		d.t.Fatal(err)
	}
	_ = dlg.Ack(ctx)
	_ = dlg.Bye(ctx)
	return 200
}

// call places a call to number; it returns the dialog after 2xx+ACK, or the final status.
func (d *device) call(number string) (*sipgo.DialogClientSession, int, bool) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leg, offer, err := d.ue.eng.Offer(ctx, webrtc.LegOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	inv := d.request(sipmsg.INVITE, number)
	inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	inv.AppendHeader(sipmsg.NewHeader("From", "<sip:"+alice+"@127.0.0.1>;tag="+sipmsg.GenerateTagN(8)))
	inv.AppendHeader(sipmsg.NewHeader("To", "<sip:"+number+"@127.0.0.1>"))
	inv.AppendHeader(&d.dlgUA.ContactHDR)
	if a := d.authorization(); a != "" {
		inv.AppendHeader(sipmsg.NewHeader("Authorization", a))
	}
	inv.SetBody([]byte(offer))
	dlg, err := d.dlgUA.WriteInvite(ctx, inv)
	if err != nil {
		d.t.Fatal(err)
	}
	early := false
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sipmsg.Response) error {
		if res.StatusCode == 183 && len(res.Body()) > 0 && !early {
			early = true
			if err := leg.SetAnswer(string(res.Body())); err != nil {
				return err
			}
			d.receive(leg, false)
		}
		return nil
	}})
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) {
		_ = leg.Close()
		d.noteChallenge(dr.Res)
		return nil, dr.Res.StatusCode, early
	}
	if err != nil {
		d.t.Fatal(err)
	}
	if !early {
		if err := leg.SetAnswer(string(dlg.InviteResponse.Body())); err != nil {
			d.t.Fatal(err)
		}
		d.receive(leg, false)
	}
	if err := dlg.Ack(ctx); err != nil {
		d.t.Fatal(err)
	}
	return dlg, 200, early
}

func (ue *userEnv) routeToAlice() { ue.router.set(ourNumber, sip.UserRoute{User: alice}) }

func TestUserRegisterAuth(t *testing.T) {
	ue := newUserEnv(t, nil, nil)
	if code := newDevice(t, ue, "", 0).register(300); code != 401 {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	if code := newDevice(t, ue, "forged", 0).register(300); code != 401 {
		t.Fatalf("bad token: %d, want 401", code)
	}
	if code := newDevice(t, ue, "token-chat", 0).register(300); code != 403 {
		t.Fatalf("chat-only token: %d, want 403", code)
	}
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(10); code != 423 {
		t.Fatalf("expires 10: %d, want 423 Interval Too Brief", code)
	}
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
}

// TestUserInboundCall: a carrier (SIPp, RTP from a file) calls the number routed to alice; her
// two devices ring, the first answers (pion WebRTC, echoing), the other is cancelled; media
// flows carrier → WebRTC → carrier.
func TestUserInboundCall(t *testing.T) {
	sippPath(t)
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))}, nil)
	ue.routeToAlice()
	// No device yet: 480 and a push notification.
	ue.call(carrierIP, ue.scenario("uac_reject.xml", "EXPECT_CODE", "480"), "+14155550100", otherNumber)
	select {
	case u := <-ue.notified:
		if u != alice {
			t.Fatalf("notified %q", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push notification")
	}
	busy := newDevice(t, ue, aliceToken, 486)
	d := newDevice(t, ue, aliceToken, 0)
	for _, dev := range []*device{busy, d} {
		if code := dev.register(300); code != 200 {
			t.Fatalf("register: %d", code)
		}
	}
	ue.call(carrierIP, ue.scenario("uac.xml"), "+14155550100", otherNumber, "-d", "2000")
	select {
	case <-d.answer:
	default:
		t.Fatal("the device did not answer")
	}
	cdr := ue.cdrs.wait(t, 2)[1]
	if cdr.Disposition != "answered" || cdr.Direction != sip.Inbound || cdr.To != ourNumber || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	if n := d.echoed.Load(); n < 40 {
		t.Fatalf("device echoed %d RTP packets, want ≥ 40 (2 s of 20 ms audio)", n)
	}
	if n := ue.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}); n < 80 {
		t.Fatalf("rtp relayed %v, want ≥ 80 (both directions)", n)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestUserOutboundCall: alice dials a PSTN number from her device; it leaves by the trunk with
// her number as caller ID; the carrier (SIPp) echoes RTP; she hangs up.
func TestUserOutboundCall(t *testing.T) {
	sippPath(t)
	port := freePort(t, carrierIP)
	tr := carrierTrunk("carrier1", carrierIP, port)
	ue := newUserEnv(t, []sip.TrunkConfig{tr}, []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}})
	// The carrier rings 300 ms before answering: the device's client transaction reports a
	// 183 and a 200 that arrive together in either order.
	ringing := ue.scenario("uas.xml", `<send retrans="500">`, `<pause milliseconds="300"/>
  <send retrans="500">`)
	carrier := ue.start("carrier", carrierIP, port, ringing, "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	dlg, code, early := d.call(otherNumber)
	if code != 200 {
		t.Fatalf("call: %d", code)
	}
	if !early {
		t.Error("no 183 with telgw's answer before the 200 (early media)")
	}
	// Send 1.5 s of μ-law silence; the carrier echoes it.
	var leg *webrtc.Leg
	select {
	case leg = <-d.legs:
		d.legs <- leg
	default:
		t.Fatal("no leg")
	}
	sendAudio(t, leg, 75, 0)
	// RFC 4733 events for digit 5 travel to the carrier and, echoed, back.
	sendAudio(t, leg, 10, 101)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	carrier.wait(t, 20*time.Second)
	cdr := ue.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.Direction != sip.Outbound || cdr.From != ourNumber || cdr.To != otherNumber || cdr.Trunk != "carrier1" || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	if n := d.echoed.Load(); n < 40 {
		t.Fatalf("device got %d RTP packets back, want ≥ 40", n)
	}
	if n := d.dtmf.Load(); n < 5 {
		t.Fatalf("device got %d telephone-event packets back, want ≥ 5 (DTMF both ways through the bridge)", n)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

func TestUserOutboundRefused(t *testing.T) {
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))},
		[]sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}})
	for _, tc := range []struct {
		name, token, number string
		want                int
	}{
		{"no token", "", otherNumber, 401},
		{"revoked or forged token", "forged", otherNumber, 401},
		{"no assigned number", bobToken, otherNumber, 403},
		{"not a number", aliceToken, "12", 484},
		{"no route", aliceToken, "+442079460000", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, _ := newDevice(t, ue, tc.token, 0).call(tc.number)
			if code != tc.want {
				t.Fatalf("got %d, want %d", code, tc.want)
			}
		})
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// sendAudio writes n 20 ms packets: PCMU silence (pt 0) or RFC 4733 §2.3 events for digit 5
// (pt 101).
func sendAudio(t *testing.T, leg *webrtc.Leg, n int, pt uint8) {
	t.Helper()
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = 0xff
	}
	if pt != 0 {
		payload = []byte{5, 10, 0, 160}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(i) + uint16(pt)*100, Timestamp: uint32(i * 160), SSRC: 0x1234}, Payload: payload}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		_ = leg.WriteRTP(b)
		<-tick.C
	}
}

// openSockets counts the process's open sockets (/proc/self/fd links socket:[…]); -1 where
// /proc is missing.
func openSockets() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// checkSockets fails the test if, once everything it set up is torn down, more sockets are
// open than before it (UDP media ports, WebSockets, ICE agents).
func checkSockets(t *testing.T) {
	before := openSockets()
	t.Cleanup(func() {
		if before < 0 {
			return
		}
		// A client transaction over UDP holds its connection until it terminates: a
		// non-INVITE one Timer K (T4, 5 s) after its final response (RFC 3261 §17.1.2.2),
		// so a socket may close only that long after the test. The deadline leaves room for
		// that on a loaded machine (TestDrain's OPTIONS failed it at exactly 5 s).
		deadline := time.Now().Add(15 * time.Second)
		for {
			n := openSockets()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d sockets open after the test, %d before", n, before)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestUserBadInput: a WebRTC offer without a DTLS fingerprint gets 488, a device whose ICE never
// completes fails the call (480 to the carrier) once the connect timeout passes, garbage on the
// WebSocket closes that connection only; nothing leaks (goleak in TestMain, checkSockets).
func TestUserBadInput(t *testing.T) {
	sippPath(t)
	carrierPort := freePort(t, carrierIP)
	ue := newUserEnvTimeout(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, carrierPort)},
		[]sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}}, 2*time.Second)
	ue.routeToAlice()

	t.Run("offer without DTLS fingerprint", func(t *testing.T) {
		d := newDevice(t, ue, aliceToken, 0)
		plain := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=rtcp-mux\r\na=sendrecv\r\n"
		if code := d.invite(otherNumber, plain); code != 488 {
			t.Fatalf("got %d, want 488", code)
		}
		if code := d.invite(otherNumber, "v=0\r\ngarbage"); code != 488 {
			t.Fatalf("malformed SDP: got %d, want 488", code)
		}
	})

	t.Run("garbage on the WebSocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, _, _, err := ws.Dialer{Protocols: []string{"sip"}}.Dial(ctx, "ws://"+ue.ws)
		if err != nil {
			t.Fatal(err)
		}
		_ = wsutil.WriteClientText(conn, []byte("NOT SIP AT ALL\r\n\r\n"))
		_ = wsutil.WriteClientBinary(conn, []byte{0xff, 0x00, 0x13, 0x37})
		_, _ = conn.Write([]byte{0x81, 0xff, 0xff}) // a truncated frame header
		_ = conn.Close()
		// The stack keeps serving.
		if code := newDevice(t, ue, aliceToken, 0).register(300); code != 200 {
			t.Fatalf("register after garbage: %d", code)
		}
	})

	t.Run("ICE never completes", func(t *testing.T) {
		d := newDevice(t, ue, aliceToken, 0)
		d.mute = true
		if code := d.register(300); code != 200 {
			t.Fatalf("register: %d", code)
		}
		// telgw answers the carrier only once the device's media connected: this one never
		// does, so the carrier gets 480 and the device a BYE.
		ue.call(carrierIP, ue.scenario("uac_reject.xml", "EXPECT_CODE", "480"), "+14155550100", otherNumber)
		// CDRs are written as calls end, so an earlier subtest's may still arrive: find the
		// carrier's call (the only inbound one here) rather than count.
		var cdr sip.CDR
		eventually(t, "the carrier call's CDR", func() bool {
			for _, c := range ue.cdrs.all() {
				if c.Direction == sip.Inbound {
					cdr = c
					return true
				}
			}
			return false
		})
		if cdr.SIPCode != 480 || !cdr.Answer.IsZero() {
			t.Fatalf("cdr %+v", cdr)
		}
		if code := d.register(0); code != 200 {
			t.Fatalf("unregister: %d", code)
		}
	})
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestUserHoldAndInfo: the carrier's INFO reaches the device; the carrier's hold and unhold
// re-INVITEs are answered (recvonly, then sendrecv); the device's own hold re-INVITE (pion
// re-offer, a=sendonly) is answered by its WebRTC leg with a=recvonly.
func TestUserHoldAndInfo(t *testing.T) {
	sippPath(t)
	port := freePort(t, carrierIP)
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, port)},
		[]sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}})
	ue.routeToAlice()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	ue.call(carrierIP, ue.scenario("uac_reinvite.xml"), "+14155550100", otherNumber)
	if d.infos.Load() != 1 {
		t.Fatalf("device got %d INFO, want 1", d.infos.Load())
	}

	carrier := ue.start("carrier", carrierIP, port, ue.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	dlg, code, _ := d.call(otherNumber)
	if code != 200 {
		t.Fatalf("call: %d", code)
	}
	var leg *webrtc.Leg
	for range 2 {
		select {
		case l := <-d.legs:
			if l.Media().Direction == webrtc.SendRecv {
				leg = l
			}
			defer func() { d.legs <- l }()
		default:
		}
	}
	if leg == nil {
		t.Fatal("no live leg")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dir := range []webrtc.Direction{webrtc.SendOnly, webrtc.SendRecv} {
		offer, err := leg.Reoffer(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		reinvite := func() *sipmsg.Request {
			req := sipmsg.NewRequest(sipmsg.INVITE, dlg.InviteResponse.Contact().Address)
			req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
			req.SetBody([]byte(offer))
			return req
		}
		res, err := dlg.Do(ctx, reinvite())
		for try := 0; err == nil && res.StatusCode == 491 && try < 10; try++ {
			// RFC 3261 §14.1: retry after a while (telgw is still confirming the dialog).
			time.Sleep(100 * time.Millisecond)
			res, err = dlg.Do(ctx, reinvite())
		}
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("re-INVITE %s: %v %v", dir, res, err)
		}
		if err := dlg.WriteRequest(sipmsg.NewRequest(sipmsg.ACK, dlg.InviteResponse.Contact().Address)); err != nil {
			t.Fatal(err)
		}
		want := "a=recvonly"
		if dir == webrtc.SendRecv {
			want = "a=sendrecv"
		}
		if !strings.Contains(string(res.Body()), want) {
			t.Fatalf("answer to %s lacks %s:\n%s", dir, want, res.Body())
		}
		if err := leg.SetAnswer(string(res.Body())); err != nil {
			t.Fatal(err)
		}
	}
	if err := dlg.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	carrier.wait(t, 20*time.Second)
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestUserDialogOnItsWebSocket: a WebRTC user's dialogs (her call out, and a carrier's call she
// answered) take in-dialog requests only over her own WebSocket connection: the same BYE, with
// the right Call-ID and tags, from another WebSocket connection of the same user or over UDP,
// gets 481 and the call goes on; her own BYE, or the carrier's, ends it.
func TestUserDialogOnItsWebSocket(t *testing.T) {
	sippPath(t)
	port := freePort(t, carrierIP)
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, port)},
		[]sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}})
	ue.routeToAlice()
	d, other := newDevice(t, ue, aliceToken, 0), newDevice(t, ue, aliceToken, 486)
	for _, dev := range []*device{d, other} {
		if code := dev.register(300); code != 200 {
			t.Fatalf("register: %d", code)
		}
	}
	// forge sends BYE for the dialog (callID, from, to) over other's WebSocket and over UDP.
	forge := func(t *testing.T, callID string, from *sipmsg.FromHeader, to *sipmsg.ToHeader) {
		t.Helper()
		bye := other.request(sipmsg.BYE, "telgw")
		bye.AppendHeader(sipmsg.HeaderClone(from))
		bye.AppendHeader(sipmsg.HeaderClone(to))
		bye.AppendHeader(sipmsg.NewHeader("Call-ID", callID))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := other.client.Do(ctx, bye)
		if err != nil || res.StatusCode != 481 {
			t.Fatalf("BYE over another WebSocket: %v %v, want 481", res, err)
		}
		raw := "BYE sip:telgw@" + ue.addr + " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-" + randTag() + "\r\n" +
			"From: " + from.Value() + "\r\nTo: " + to.Value() + "\r\nCall-ID: " + callID + "\r\nCSeq: 99 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
		if got := spoof(t, telgwIP, ue.addr, raw, 2*time.Second); got != "481" {
			t.Fatalf("BYE over UDP: %q, want 481", got)
		}
		if n := ue.svc.ActiveCalls(); n != 1 {
			t.Fatalf("%d calls active after the forged BYEs", n)
		}
	}

	t.Run("her call out", func(t *testing.T) {
		carrier := ue.start("carrier", carrierIP, port, ue.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
		dlg, code, _ := d.call(otherNumber)
		if code != 200 {
			t.Fatalf("call: %d", code)
		}
		forge(t, dlg.InviteRequest.CallID().Value(), dlg.InviteRequest.From(), dlg.InviteResponse.To())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dlg.Bye(ctx); err != nil {
			t.Fatal(err)
		}
		carrier.wait(t, 20*time.Second)
		if cdr := ue.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" || cdr.EndedBy != "caller" {
			t.Fatalf("cdr %+v", cdr)
		}
	})

	t.Run("a carrier's call she answered", func(t *testing.T) {
		caller := ue.start("caller", carrierIP, freePort(t, carrierIP), ue.scenario("uac.xml"), ue.addr, "-s", ourNumber, "-key", "caller", otherNumber,
			"-m", "1", "-d", "3000", "-mp", strconv.Itoa(freePort(t, carrierIP)))
		var ds *sipgo.DialogServerSession
		select {
		case ds = <-d.answer:
		case <-time.After(10 * time.Second):
			t.Fatal("the device did not answer")
		}
		eventually(t, "call up", func() bool { return ue.svc.ActiveCalls() == 1 })
		// The device is the UAS of this dialog: its tag is in To, telgw's in From.
		from, to := ds.InviteRequest.To().AsFrom(), ds.InviteRequest.From().AsTo()
		forge(t, ds.InviteRequest.CallID().Value(), &from, &to)
		caller.wait(t, 20*time.Second)
		if cdr := ue.cdrs.wait(t, 2)[1]; cdr.Disposition != "answered" || cdr.EndedBy != "caller" {
			t.Fatalf("cdr %+v", cdr)
		}
	})
	if n := ue.counter("telgw_sip_dialog_mismatch_total", map[string]string{"reason": "source"}); n != 4 {
		t.Errorf("source mismatches %v, want 4", n)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}
