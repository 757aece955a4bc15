package sip_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip"
)

// fakePublisher stands in for the events package's IncomingCall delivery: the test is the app.
type fakePublisher struct{ calls chan calls.IncomingCall }

func (f *fakePublisher) PublishIncomingCall(_ context.Context, ic calls.IncomingCall) error {
	f.calls <- ic
	return nil
}

// fakeCallbacks records mid-call callbacks.
type fakeCallbacks struct {
	mu  sync.Mutex
	evs []calls.CallbackEvent
	uri []string
}

func (f *fakeCallbacks) Send(_ context.Context, uri string, evs ...calls.CallbackEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range evs {
		f.uri = append(f.uri, uri)
	}
	f.evs = append(f.evs, evs...)
	return nil
}

func (f *fakeCallbacks) types() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.evs {
		out = append(out, e.Type)
	}
	return out
}

const appURL = "http://127.0.0.1:9/callbacks"

// botEnv is a SIP service with one carrier trunk and ourNumber routed to an app.
func botEnv(t *testing.T, o envOpts, publish bool) (*env, *calls.Automation, *fakePublisher, *fakeCallbacks) {
	t.Helper()
	sippPath(t)
	pub := &fakePublisher{calls: make(chan calls.IncomingCall, 4)}
	cbs := &fakeCallbacks{}
	numbers := &lazyRouter{}
	cfg := calls.AutomationConfig{Callbacks: cbs, Numbers: numbers, MaxParticipants: o.maxParticipants}
	if publish {
		cfg.Publisher = pub
	}
	auto, err := calls.NewAutomation(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o.automation = auto
	o.trunks = append(o.trunks, carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP)))
	e := newEnv(t, o)
	numbers.r = e.router
	e.router.set(ourNumber, calls.BotRoute{URL: appURL})
	return e, auto, pub, cbs
}

// app runs f on the next IncomingCall, in the background; wait returns f's error.
func app(t *testing.T, pub *fakePublisher, f func(ic calls.IncomingCall) error) (wait func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		select {
		case ic := <-pub.calls:
			errc <- f(ic)
		case <-time.After(20 * time.Second):
			errc <- errors.New("no IncomingCall")
		}
	}()
	return func() {
		t.Helper()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestBotAnswerCallerHangsUp(t *testing.T) {
	e, auto, pub, cbs := botEnv(t, envOpts{}, true)
	ctx := context.Background()
	var conn calls.ConnectionProperties
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		if ic.To.ID != ourNumber || ic.From.ID != otherNumber || ic.ServerCallID == "" || ic.IncomingCallContext == "" {
			return fmt.Errorf("incoming call %+v", ic)
		}
		var err error
		conn, err = auto.Answer(ctx, calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL, OperationContext: "op1"})
		if err != nil {
			return err
		}
		if conn.ServerCallID != ic.ServerCallID || conn.CallConnectionID == "" {
			return fmt.Errorf("connection %+v", conn)
		}
		// The context answered once is spent.
		if _, err := auto.Answer(ctx, calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL}); problem.KindOf(err) != problem.KindNotFound {
			return fmt.Errorf("second answer: %v", err)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac.xml"), "4155550100", otherNumber)
	wait()
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.Direction != sip.Inbound || cdr.Trunk != "carrier1" || cdr.EndedBy != "caller" || cdr.To != ourNumber {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "callbacks", func() bool { return len(cbs.types()) == 2 })
	if got := cbs.types(); got[0] != "Microsoft.Communication.CallConnected" || got[1] != "Microsoft.Communication.CallDisconnected" {
		t.Fatalf("callbacks %v", got)
	}
	if _, err := auto.Connection(ctx, conn.CallConnectionID); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("ended connection: %v", err)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

func TestBotAnswerAppHangsUp(t *testing.T) {
	e, auto, pub, cbs := botEnv(t, envOpts{}, true)
	ctx := context.Background()
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		conn, err := auto.Answer(ctx, calls.AnswerParams{IncomingCallContext: ic.IncomingCallContext, CallbackURI: appURL})
		if err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond) // answerCall returns connecting; connected follows
		got, err := auto.Connection(ctx, conn.CallConnectionID)
		if err != nil || got.State != calls.StateConnected {
			return fmt.Errorf("get: %+v %v", got, err)
		}
		if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
			return err
		}
		if err := auto.HangUp(ctx, conn.CallConnectionID); problem.KindOf(err) != problem.KindNotFound {
			return fmt.Errorf("hang up an ended call: %v", err)
		}
		return nil
	})
	e.call(carrierIP, e.scenario("uac_callee_bye.xml"), "14155550100", otherNumber)
	wait()
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" || cdr.EndedBy != "callee" {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "callbacks", func() bool { return len(cbs.types()) == 2 })
}

func TestBotReject(t *testing.T) {
	for _, tc := range []struct {
		reason      calls.RejectReason
		code        int
		disposition string
	}{{calls.RejectBusy, 486, "busy"}, {calls.RejectNone, 603, "rejected"}, {calls.RejectForbidden, 403, "unauthorized"}} {
		t.Run(string(tc.reason), func(t *testing.T) {
			e, auto, pub, _ := botEnv(t, envOpts{}, true)
			wait := app(t, pub, func(ic calls.IncomingCall) error {
				return auto.Reject(context.Background(), ic.IncomingCallContext, tc.reason)
			})
			e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", strconv.Itoa(tc.code)), "14155550100", otherNumber)
			wait()
			if cdr := e.cdrs.wait(t, 1)[0]; cdr.SIPCode != tc.code || cdr.Disposition != tc.disposition {
				t.Fatalf("cdr %+v", cdr)
			}
		})
	}
}

func TestBotRingTimeout(t *testing.T) {
	e, auto, pub, _ := botEnv(t, envOpts{tweak: func(c *sip.Config) { c.RingTimeout = time.Second }}, true)
	var token string
	wait := app(t, pub, func(ic calls.IncomingCall) error { token = ic.IncomingCallContext; return nil })
	e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "480"), "14155550100", otherNumber)
	wait()
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "no-answer" {
		t.Fatalf("cdr %+v", cdr)
	}
	// Too late: the context expired with the ring timeout.
	if _, err := auto.Answer(context.Background(), calls.AnswerParams{IncomingCallContext: token, CallbackURI: appURL}); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("late answer: %v", err)
	}
}

func TestBotWithoutPublisher(t *testing.T) {
	e, _, _, _ := botEnv(t, envOpts{}, false)
	e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "480"), "14155550100", otherNumber)
}

func TestBotRedirectToPSTN(t *testing.T) {
	sippPath(t)
	const far = "+12025550142"
	c2Port := freePort(t, carrier2IP)
	e, auto, pub, _ := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
	}, true)
	callee := e.start("carrier2", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	wait := app(t, pub, func(ic calls.IncomingCall) error {
		ctx := context.Background()
		// No route: refused, and the call keeps waiting.
		if err := auto.Redirect(ctx, ic.IncomingCallContext, calls.Phone("+442071838750")); problem.KindOf(err) != problem.KindInvalid {
			return fmt.Errorf("redirect without route: %v", err)
		}
		// No WebRTC users served here: refused, and the call keeps waiting.
		if err := auto.Redirect(ctx, ic.IncomingCallContext, calls.User("8:acs:x")); problem.KindOf(err) != problem.KindUnavailable {
			return fmt.Errorf("redirect to a user: %v", err)
		}
		return auto.Redirect(ctx, ic.IncomingCallContext, calls.Phone(far))
	})
	e.call(carrierIP, e.scenario("uac.xml"), "14155550100", otherNumber)
	wait()
	callee.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.To != far || cdr.Trunk != "carrier2" || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
}

// TestBotCallerCancels: the caller gives up while the app decides (CANCEL, 487); the app's
// context is then spent. The INVITE's custom headers reach the app in IncomingCall.
func TestBotCallerCancels(t *testing.T) {
	e, auto, pub, _ := botEnv(t, envOpts{}, true)
	icc := make(chan calls.IncomingCall, 1)
	wait := app(t, pub, func(ic calls.IncomingCall) error { icc <- ic; return nil })
	e.call(carrierIP, e.scenario("uac_cancel.xml", "Max-Forwards: 70", "Max-Forwards: 70\n      X-MS-Custom-Ticket: 42\n      User-To-User: 56a390f3d2b7310023a2;encoding=hex"),
		"14155550100", otherNumber)
	wait()
	ic := <-icc
	if ic.CustomContext["X-MS-Custom-Ticket"] != "42" || ic.CustomContext["User-To-User"] != "56a390f3d2b7310023a2;encoding=hex" {
		t.Fatalf("custom context %v", ic.CustomContext)
	}
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "cancelled" || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	if err := auto.Reject(context.Background(), ic.IncomingCallContext, calls.RejectBusy); problem.KindOf(err) != problem.KindNotFound {
		t.Fatalf("reject after cancel: %v", err)
	}
}

// lazyRouter is the env's router once it exists (the engine is built before the env).
type lazyRouter struct{ r calls.Router }

func (l *lazyRouter) CallRoute(ctx context.Context, e164 string) (calls.Route, error) {
	return l.r.CallRoute(ctx, e164)
}

func TestBotCreateCall(t *testing.T) {
	sippPath(t)
	const far = "+12025550142"
	c2Port := freePort(t, carrier2IP)
	e, auto, _, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
	}, true)
	ctx := context.Background()
	p := calls.CreateCallParams{Target: calls.Phone(far), SourceCallerID: otherNumber, CallbackURI: appURL, OperationContext: "out"}
	if _, err := auto.CreateCall(ctx, p); problem.KindOf(err) != problem.KindForbidden {
		t.Fatalf("caller id not ours: %v", err)
	}
	p.SourceCallerID = ourNumber
	callee := e.start("carrier2", carrier2IP, c2Port, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	conn, err := auto.CreateCall(ctx, p)
	if err != nil || conn.State != calls.StateConnecting {
		t.Fatalf("create: %+v %v", conn, err)
	}
	eventually(t, "CallConnected", func() bool { return len(cbs.types()) == 1 })
	if got, err := auto.Connection(ctx, conn.CallConnectionID); err != nil || got.State != calls.StateConnected {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	callee.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.Direction != sip.Outbound || cdr.Trunk != "carrier2" || cdr.From != ourNumber || cdr.To != far || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	// No route: CreateCallFailed.
	p.Target = calls.Phone("+442071838750")
	if _, err := auto.CreateCall(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CreateCallFailed", func() bool { return len(cbs.types()) == 3 })
	if got := cbs.types(); got[1] != "Microsoft.Communication.CallDisconnected" || got[2] != "Microsoft.Communication.CreateCallFailed" {
		t.Fatalf("callbacks %v", got)
	}
}
