package sip_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/bridge/webrtc"
	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/registrar"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sipws"
)

// userBotEnv serves WebRTC users (alice has ourNumber) and hands calls to bot-routed numbers
// to the test, the app: a carrier trunk carrier1; ourNumber routed to the app.
func userBotEnv(t *testing.T, o envOpts) (*userEnv, *calls.Automation, *fakePublisher, *fakeCallbacks) {
	t.Helper()
	sippPath(t)
	checkSockets(t)
	pub := &fakePublisher{calls: make(chan calls.IncomingCall, 4)}
	cbs := &fakeCallbacks{}
	numbers := &lazyRouter{}
	auto, err := calls.NewAutomation(calls.AutomationConfig{Callbacks: cbs, Numbers: numbers, Publisher: pub, MaxParticipants: o.maxParticipants})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	eng, err := webrtc.NewEngine(webrtc.Config{IncludeLoopback: true, IPs: []string{"127.0.0.1"}, ConnectTimeout: 10 * time.Second}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	ue := &userEnv{notified: make(chan string, 4), eng: eng}
	loc := registrar.NewLocation(nil)
	ue.loc = loc
	ue.users = &sip.Users{
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
	o.trunks = append(o.trunks, carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP)))
	o.users, o.automation = ue.users, auto
	ue.env = newEnv(t, o)
	numbers.r = ue.router
	ue.router.set(ourNumber, calls.BotRoute{URL: appURL})
	auto.SetDialer(ue.svc)
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
	return ue, auto, pub, cbs
}

// TestBotRedirectToUser: an app redirects a carrier's call to a communication user: her
// devices ring (fork), the one that answers talks to the caller (RTP echoed back); the CDR
// shows the carrier's leg and her WebRTC leg.
func TestBotRedirectToUser(t *testing.T) {
	ue, auto, pub, _ := userBotEnv(t, envOpts{})
	busy := newDevice(t, ue, aliceToken, 486)
	d := newDevice(t, ue, aliceToken, 0)
	for _, dev := range []*device{busy, d} {
		if code := dev.register(300); code != 200 {
			t.Fatalf("register: %d", code)
		}
	}
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		return auto.Redirect(context.Background(), ic.IncomingCallContext, calls.User(alice))
	})
	ue.call(carrierIP, ue.scenario("uac.xml"), "+14155550100", otherNumber, "-d", "2000")
	wait()
	var ds = <-d.answer
	if f := ds.InviteRequest.From(); f.Address.User != otherNumber {
		t.Errorf("the user sees caller %q, want %q", f.Address.User, otherNumber)
	}
	cdr := ue.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || len(cdr.Legs) != 2 {
		t.Fatalf("cdr %+v", cdr)
	}
	if l := cdr.Legs[1]; l.Kind != calls.LegWebRTC || l.Participant != calls.User(alice) {
		t.Fatalf("callee leg %+v", l)
	}
	if n := d.echoed.Load(); n < 40 {
		t.Fatalf("device echoed %d RTP packets, want ≥ 40", n)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestBotCreateCallToUser: an app calls a communication user: her device rings showing the
// caller id and display name the app set, answers, the app hears CallConnected, hangs up and
// the device gets BYE. With no device registered the app hears CreateCallFailed (480).
func TestBotCreateCallToUser(t *testing.T) {
	ue, auto, _, cbs := userBotEnv(t, envOpts{})
	ctx := context.Background()
	p := calls.CreateCallParams{Target: calls.User(alice), SourceCallerID: ourNumber, SourceDisplayName: "Support Desk", CallbackURI: appURL}
	if _, err := auto.CreateCall(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CreateCallFailed", func() bool { return len(cbs.types()) == 1 })
	if got := cbs.types()[0]; got != "Microsoft.Communication.CreateCallFailed" {
		t.Fatalf("callback %s", got)
	}

	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	conn, err := auto.CreateCall(ctx, p)
	if err != nil || len(conn.Targets) != 1 || conn.Targets[0] != calls.User(alice) {
		t.Fatalf("create: %+v %v", conn, err)
	}
	var ds = <-d.answer
	if f := ds.InviteRequest.From(); f.DisplayName != "Support Desk" || f.Address.User != ourNumber {
		t.Errorf("the user sees %q <%s>", f.DisplayName, f.Address.User)
	}
	eventually(t, "CallConnected", func() bool { return len(cbs.types()) == 2 })
	if got, err := auto.Connection(ctx, conn.CallConnectionID); err != nil || got.State != calls.StateConnected {
		t.Fatalf("get: %+v %v", got, err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CallDisconnected", func() bool { return len(cbs.types()) == 3 })
	if got := cbs.types(); got[1] != "Microsoft.Communication.CallConnected" || got[2] != "Microsoft.Communication.CallDisconnected" {
		t.Fatalf("callbacks %v", got)
	}
	cdrs := ue.cdrs.wait(t, 2)
	cdr := cdrs[1]
	if cdr.Disposition != "answered" || cdr.From != ourNumber || len(cdr.Legs) != 2 || cdr.Legs[0].Kind != calls.LegBot || cdr.Legs[1].Kind != calls.LegWebRTC {
		t.Fatalf("cdr %+v", cdr)
	}
	if h := cdr.Legs[0].Participant.ID; h != "127.0.0.1:9" {
		t.Errorf("bot leg shows %q, want the callback host", h)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestBotGroupCall: an app's createCall with two targets (a communication user and a phone
// number) rings both; once both answered they are bridged and the app hears CallConnected;
// when the app hangs up both get BYE. Three targets are refused beyond calls.maxParticipants
// (2 here; conference_test.go places a call to three).
func TestBotGroupCall(t *testing.T) {
	const far = "+12025550142"
	c2Port := freePort(t, carrier2IP)
	ue, auto, _, cbs := userBotEnv(t, envOpts{
		trunks:          []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes:          []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
		maxParticipants: 2,
	})
	ctx := context.Background()
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	p := calls.CreateCallParams{Targets: []calls.Participant{calls.User(alice), calls.Phone(far)}, SourceCallerID: ourNumber, CallbackURI: appURL}
	three := p
	three.Targets = append(three.Targets, calls.Phone("+12025550143"))
	if _, err := auto.CreateCall(ctx, three); problem.KindOf(err) != problem.KindInvalid || !strings.Contains(err.Error(), "targets") {
		t.Fatalf("three targets: %v", err)
	}
	callee := ue.start("carrier2", carrier2IP, c2Port, ue.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	conn, err := auto.CreateCall(ctx, p)
	if err != nil || len(conn.Targets) != 2 {
		t.Fatalf("create: %+v %v", conn, err)
	}
	<-d.answer
	eventually(t, "CallConnected", func() bool { return len(cbs.types()) == 1 })
	if got := cbs.types()[0]; got != "Microsoft.Communication.CallConnected" {
		t.Fatalf("callback %s", got)
	}
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	callee.wait(t, 20*time.Second)
	cdr := ue.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || len(cdr.Legs) != 3 || cdr.Legs[1].Kind != calls.LegWebRTC || cdr.Legs[2].Kind != calls.LegCarrier || cdr.Legs[2].Participant.ID != far {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
	_ = fmt.Sprint
}

// TestIncomingCallEvents: a call to one of the resource's numbers with no route is refused
// (480) unless calls.incomingCallEvents is on; then the apps hear IncomingCall as for a bot:
// route, and the app's decision (here: busy) is carried out.
func TestIncomingCallEvents(t *testing.T) {
	const unrouted = "+14155550188"
	for _, on := range []bool{false, true} {
		t.Run(strconv.FormatBool(on), func(t *testing.T) {
			sippPath(t)
			pub := &fakePublisher{calls: make(chan calls.IncomingCall, 4)}
			auto, err := calls.NewAutomation(calls.AutomationConfig{Publisher: pub, IncomingCallEvents: on})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))}, automation: auto})
			e.router.set(unrouted, nil)
			if !on {
				e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "480"), unrouted, otherNumber)
				select {
				case ic := <-pub.calls:
					t.Fatalf("IncomingCall published: %+v", ic)
				default:
				}
				return
			}
			wait := app(t, pub, func(ic calls.IncomingCall) error {
				if ic.To.ID != unrouted || ic.From.ID != otherNumber {
					return fmt.Errorf("incoming call %+v", ic)
				}
				return auto.Reject(context.Background(), ic.IncomingCallContext, calls.RejectBusy)
			})
			e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "486"), unrouted, otherNumber)
			wait()
			if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "busy" || len(cdr.Legs) != 2 || cdr.Legs[1].Kind != calls.LegBot {
				t.Fatalf("cdr %+v", cdr)
			}
		})
	}
}

// TestReferFromWebRTCUser: a carrier's call reached a WebRTC user, whose device transfers it
// (REFER over its WebSocket) to a number routed to a PBX: 202, the carrier's caller ends up
// talking to the PBX (its RTP echoed back from there), the device gets BYE.
func TestReferFromWebRTCUser(t *testing.T) {
	sippPath(t)
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))}, nil)
	ue.routeToAlice()
	targetPort := freePort(t, pbxIP)
	ue.router.set(transferNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:target@%s:%d", pbxIP, targetPort)})
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	target := ue.start("target", pbxIP, targetPort, ue.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	caller := ue.start("caller", carrierIP, freePort(t, carrierIP), ue.scenario("uac.xml"),
		ue.addr, "-s", ourNumber, "-key", "caller", otherNumber, "-m", "1", "-d", "4000", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	ds := <-d.answer
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	refer := sipmsg.NewRequest(sipmsg.REFER, ds.InviteRequest.Contact().Address)
	refer.AppendHeader(sipmsg.NewHeader("Refer-To", "<sip:"+transferNumber+"@127.0.0.1>"))
	refer.AppendHeader(sipmsg.NewHeader("Authorization", "Bearer "+aliceToken))
	res, err := ds.Do(ctx, refer)
	if err != nil || res.StatusCode != 202 {
		t.Fatalf("REFER: %v %v", res, err)
	}
	relayed := ue.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"})
	caller.wait(t, 30*time.Second)
	target.wait(t, 20*time.Second)
	if n := ue.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}) - relayed; n < 60 {
		t.Errorf("%v RTP packets relayed after the transfer, want >= 60", n)
	}
	cdr := ue.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || len(cdr.Legs) != 3 || cdr.Legs[1].Kind != calls.LegEndpoint || cdr.Legs[2].Kind != calls.LegWebRTC || !cdr.Legs[2].Transferred {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}

// TestReferToWebRTCUser: a PBX transfers the carrier's call to a number routed to a WebRTC
// user: her device rings (first answer wins), answers, and the caller's RTP reaches it and
// comes back (echo) over the re-bridged media; the PBX gets NOTIFY 200 and BYE.
func TestReferToWebRTCUser(t *testing.T) {
	sippPath(t)
	ue := newUserEnv(t, []sip.TrunkConfig{carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP))}, nil)
	pbxPort := freePort(t, pbxIP)
	ue.router.set(ourNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:pbx@%s:%d", pbxIP, pbxPort)})
	ue.router.set(transferNumber, sip.UserRoute{User: alice})
	d := newDevice(t, ue, aliceToken, 0)
	if code := d.register(300); code != 200 {
		t.Fatalf("register: %d", code)
	}
	pbx := ue.start("pbx", pbxIP, pbxPort, ue.scenario("uas_refer.xml", "REFER_TARGET", "sip:"+transferNumber+"@"+telgwIP, "FINAL_STATUS", "200 OK"),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	ue.call(carrierIP, ue.scenario("uac.xml"), ourNumber, otherNumber, "-d", "4000")
	pbx.wait(t, 20*time.Second)
	select {
	case ds := <-d.answer:
		if f := ds.InviteRequest.From(); f.Address.User != otherNumber {
			t.Errorf("the user sees caller %q, want the transferee %q", f.Address.User, otherNumber)
		}
	default:
		t.Fatal("the device did not answer")
	}
	if n := d.echoed.Load(); n < 40 {
		t.Errorf("device echoed %d RTP packets, want >= 40", n)
	}
	cdr := ue.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.EndedBy != "caller" || len(cdr.Legs) != 3 || cdr.Legs[1].Kind != calls.LegWebRTC || cdr.Legs[1].Participant != calls.User(alice) {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "no active calls", func() bool { return ue.svc.ActiveCalls() == 0 })
}
