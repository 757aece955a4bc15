package sip_test

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sip/number"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	ourNumber   = "+14155550100"
	otherNumber = "+12125550199"
)

func carrierTrunk(name, ip string, port int) sip.TrunkConfig {
	return sip.TrunkConfig{Name: name, Address: net.JoinHostPort(ip, strconv.Itoa(port)),
		Allow: []netip.Prefix{netip.MustParsePrefix(ip + "/32")}, Username: "u", Password: "p"}
}

// inbound sets up one carrier trunk and a route for ourNumber to a PBX SIPp on pbxPort.
func inbound(t *testing.T, o envOpts) (*env, int) {
	sippPath(t)
	pbxPort := freePort(t, pbxIP)
	o.trunks = append(o.trunks, carrierTrunk("carrier1", carrierIP, freePort(t, carrierIP)))
	e := newEnv(t, o)
	e.router.set(ourNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:pbx@%s:%d", pbxIP, pbxPort)})
	return e, pbxPort
}

func TestInboundCallWithRTP(t *testing.T) {
	for _, tp := range []string{"u1", "t1"} {
		t.Run(tp, func(t *testing.T) {
			e, pbxPort := inbound(t, envOpts{})
			if tp == "t1" {
				e.router.set(ourNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:pbx@%s:%d;transport=tcp", pbxIP, pbxPort)})
			}
			pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)), "-t", tp)
			// The carrier sends the number in national 10-digit form: telgw normalizes it.
			e.call(carrierIP, e.scenario("uac.xml"), "4155550100", "+12125550199", "-t", tp)
			pbx.wait(t, 20*time.Second)
			cdr := e.cdrs.wait(t, 1)[0]
			if cdr.Disposition != "answered" || cdr.Direction != sip.Inbound || cdr.Trunk != "carrier1" || cdr.To != ourNumber || cdr.From != otherNumber || cdr.EndedBy != "caller" || cdr.SIPCode != 200 || cdr.Q850 != 16 {
				t.Fatalf("cdr %+v", cdr)
			}
			if d := cdr.Duration(); d < 800*time.Millisecond || d > 5*time.Second {
				t.Fatalf("duration %s", d)
			}
			// A second of 20 ms packets from the caller, echoed by the PBX: both directions relayed.
			if n := e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}); n < 60 {
				t.Fatalf("rtp relayed %v, want >= 60", n)
			}
			if n := e.counter("telgw_sip_calls_total", map[string]string{"disposition": "answered"}); n != 1 {
				t.Fatalf("answered calls metric %v", n)
			}
			eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
		})
	}
}

func TestInboundCalleeHangsUp(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_bye.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac_callee_bye.xml"), "14155550100", otherNumber)
	pbx.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.EndedBy != "callee" || cdr.Disposition != "answered" {
		t.Fatalf("cdr %+v", cdr)
	}
}

func TestInboundCancelBeforeAnswer(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_ring.xml"), "-m", "1")
	e.call(carrierIP, e.scenario("uac_cancel.xml"), ourNumber, otherNumber)
	pbx.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "cancelled" || cdr.SIPCode != 487 || cdr.Ringing.IsZero() || !cdr.Answer.IsZero() {
		t.Fatalf("cdr %+v", cdr)
	}
}

func TestInboundLateOffer(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac_late.xml"), ourNumber, otherNumber)
	pbx.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" {
		t.Fatalf("cdr %+v", cdr)
	}
	if n := e.counter("telgw_rtp_packets_relayed_total", map[string]string{"kind": "rtp"}); n < 30 {
		t.Fatalf("rtp relayed %v", n)
	}
}

func TestInboundCalleeRejects(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
		disp   string
		q850   int
	}{{486, "Busy Here", "busy", 17}, {603, "Decline", "rejected", 21}} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			e, pbxPort := inbound(t, envOpts{})
			code := strconv.Itoa(tc.code)
			pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_reject.xml", "REJECT_CODE", code, "REJECT_REASON", tc.reason), "-m", "1")
			e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", code), ourNumber, otherNumber)
			pbx.wait(t, 20*time.Second)
			if cdr := e.cdrs.wait(t, 1)[0]; cdr.SIPCode != tc.code || cdr.Disposition != tc.disp || cdr.Q850 != tc.q850 {
				t.Fatalf("cdr %+v", cdr)
			}
		})
	}
}

func TestInboundRefused(t *testing.T) {
	e, _ := inbound(t, envOpts{})
	e.router.set("+14155550111", nil) // ours, but no route
	for _, tc := range []struct {
		name, from, number, code string
	}{
		{"unknown number", carrierIP, "+14155550999", "404"},
		{"not a number", carrierIP, "alice", "404"},
		{"no route", carrierIP, "+14155550111", "480"},
		{"unauthorized source", strangerIP, ourNumber, "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.call(tc.from, e.scenario("uac_reject.xml", "EXPECT_CODE", tc.code), tc.number, otherNumber)
		})
	}
	t.Run("no codec in common", func(t *testing.T) {
		// G.729 only: nothing telgw relays (RFC 3264 §6: 488).
		e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "488", "RTP/AVP 0 101", "RTP/AVP 18"), ourNumber, otherNumber)
	})
	t.Run("malformed sdp", func(t *testing.T) {
		e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "488", "c=IN IP", "c=IN XX"), ourNumber, otherNumber)
	})
}

func TestInboundTrunkCapacity(t *testing.T) {
	e, _ := inbound(t, envOpts{})
	// Replace the trunk with one allowing no new call per second worth mentioning.
	tr := carrierTrunk("carrier1", carrierIP, 5999)
	tr.MaxCalls = 1
	tr.CPS = 0.001
	if err := e.svc.Admin().SetRouting([]sip.TrunkConfig{tr}, nil); err != nil {
		t.Fatal(err)
	}
	e.router.set("+14155550111", nil)
	e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "480"), "+14155550111", otherNumber) // takes the one token
	e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "503"), ourNumber, otherNumber)
}

// outbound sets up two carrier trunks, a route for US numbers over both, and a customer.
func outbound(t *testing.T, first sip.TrunkConfig) (*env, int, int) {
	sippPath(t)
	p1, p2 := freePort(t, carrierIP), freePort(t, carrier2IP)
	first.Address = net.JoinHostPort(carrierIP, strconv.Itoa(p1))
	first.Allow = []netip.Prefix{netip.MustParsePrefix(carrierIP + "/32")}
	second := carrierTrunk("carrier2", carrier2IP, p2)
	second.Format = number.Format{Style: "11"}
	e := newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{first, second},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{first.Name, "carrier2"}}},
		creds:  fakeCreds{"acme": sip.NewCredential("telgw", "acme", "s3cret", []string{ourNumber})},
	})
	e.router.set(ourNumber, sip.SIPRoute{URI: "sip:pbx@" + pbxIP})
	return e, p1, p2
}

func TestOutboundDigestBothWays(t *testing.T) {
	for _, code := range []string{"401", "407"} {
		t.Run(code, func(t *testing.T) {
			tr := sip.TrunkConfig{Name: "carrier1", Username: "u", Password: "p"}
			e, p1, _ := outbound(t, tr)
			var repl []string
			if code == "407" {
				repl = []string{"401 Unauthorized", "407 Proxy Authentication Required", "WWW-Authenticate:", "Proxy-Authenticate:",
					`<verifyauth assign_to="authvalid" username="u" password="p"/>`,
					`<ereg regexp="Digest .*username=.u.*response=" search_in="hdr" header="Proxy-Authorization:" check_it="true" assign_to="authvalid"/>`}
			}
			carrier := e.start("carrier", carrierIP, p1, e.scenario("uas_auth.xml", repl...), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
			e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret")
			carrier.wait(t, 20*time.Second)
			cdr := e.cdrs.wait(t, 1)[0]
			if cdr.Direction != sip.Outbound || cdr.Trunk != "carrier1" || cdr.Disposition != "answered" || cdr.To != otherNumber || cdr.From != ourNumber {
				t.Fatalf("cdr %+v", cdr)
			}
		})
	}
}

func TestOutboundFailover(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(e *env, port int)
	}{
		{"503", func(e *env, port int) {
			e.start("carrier1", carrierIP, port, e.scenario("uas_reject.xml", "REJECT_CODE", "503", "REJECT_REASON", "Service Unavailable"), "-m", "1")
		}},
		{"no answer", func(*env, int) {}}, // nothing listens: the failover timeout moves on
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, p1, p2 := outbound(t, sip.TrunkConfig{Name: "carrier1"})
			tc.first(e, p1)
			second := e.start("carrier2", carrier2IP, p2, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
			e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret")
			second.wait(t, 20*time.Second)
			if cdr := e.cdrs.wait(t, 1)[0]; cdr.Trunk != "carrier2" || cdr.Disposition != "answered" {
				t.Fatalf("cdr %+v", cdr)
			}
		})
	}
}

func TestOutboundRefused(t *testing.T) {
	e, _, _ := outbound(t, sip.TrunkConfig{Name: "carrier1"})
	for _, tc := range []struct {
		name, number, caller, user, pass, code string
	}{
		{"caller id not theirs", otherNumber, "+14155550142", "acme", "s3cret", "403"},
		{"wrong password", otherNumber, ourNumber, "acme", "nope", "403"},
		{"unknown user", otherNumber, ourNumber, "mallory", "x", "403"},
		{"no route", "+442071838750", ourNumber, "acme", "s3cret", "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.call(customerIP, e.authReject(tc.code), tc.number, tc.caller, "-au", tc.user, "-ap", tc.pass)
		})
	}
}

// authReject is uac_reject.xml preceded by answering a 407.
func (e *env) authReject(code string) string {
	return e.scenario("uac_auth_reject.xml", "EXPECT_CODE", code)
}

func TestGoroutinesSettle(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	before := runtime.NumGoroutine()
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "20", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac.xml"), ourNumber, otherNumber, "-m", "20", "-r", "20", "-d", "200")
	pbx.wait(t, 30*time.Second)
	e.cdrs.wait(t, 20)
	// Server transactions linger for Timer J/K (RFC 3261 §17.2.2, 64*T1 on UDP); what must
	// not stay is one goroutine per call.
	eventually(t, "goroutines back to the idle count", func() bool { return runtime.NumGoroutine() <= before+10 })
}

func TestInboundInfoAndReInvites(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{})
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas_reinvite.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
	e.call(carrierIP, e.scenario("uac_reinvite.xml"), ourNumber, otherNumber)
	pbx.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
}

func TestMediaTimeoutHangsUpBothLegs(t *testing.T) {
	e, pbxPort := inbound(t, envOpts{media: 700 * time.Millisecond})
	// Neither side sends RTP: telgw ends the call with a BYE to each (uas.xml and
	// uac_silent.xml both wait for one).
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "1")
	e.call(carrierIP, e.scenario("uac_silent.xml"), ourNumber, otherNumber)
	pbx.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.EndedBy != "media-timeout" || cdr.Disposition != "answered" {
		t.Fatalf("cdr %+v", cdr)
	}
	if n := e.counter("telgw_rtp_media_timeouts_total", nil); n != 1 {
		t.Fatalf("media timeouts %v", n)
	}
}

func TestTrunkDownIsSkipped(t *testing.T) {
	// carrier1 answers no OPTIONS (nothing listens): after two misses it is down and outbound
	// calls go straight to carrier2 without waiting for the failover timeout.
	tr := sip.TrunkConfig{Name: "carrier1", OptionsInterval: 300 * time.Millisecond}
	e, _, p2 := outbound(t, tr)
	eventually(t, "carrier1 down", func() bool { return !e.svc.Admin().TrunkUp("carrier1") })
	second := e.start("carrier2", carrier2IP, p2, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	start := time.Now()
	e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret")
	second.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Trunk != "carrier2" || cdr.Answer.Sub(cdr.Start) > time.Second {
		t.Fatalf("cdr %+v (call took %s)", cdr, time.Since(start))
	}
	if n := e.counter("telgw_sip_trunk_attempts_total", map[string]string{"trunk": "carrier1", "result": "down"}); n != 1 {
		t.Fatalf("down attempts %v", n)
	}
}

func TestTrunkRegistration(t *testing.T) {
	sippPath(t)
	port := freePort(t, carrierIP)
	tr := carrierTrunk("carrier1", carrierIP, port)
	tr.Register, tr.RegisterExpires = true, time.Minute
	e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{tr}})
	// The registrar starts after telgw's first attempt may have failed: telgw retries.
	reg := e.start("registrar", carrierIP, port, e.scenario("uas_register.xml"), "-m", "1")
	reg.wait(t, 45*time.Second)
	eventually(t, "registered", func() bool { return e.svc.Admin().Registered("carrier1") })
	if n := e.counter("telgw_sip_trunk_registered", map[string]string{"trunk": "carrier1"}); n != 1 {
		t.Fatalf("registered gauge %v", n)
	}
}

func TestSessionTimerRefreshTowardCarrier(t *testing.T) {
	e, p1, _ := outbound(t, sip.TrunkConfig{Name: "carrier1"})
	carrier := e.start("carrier", carrierIP, p1, e.scenario("uas_timer.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
	e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret", "-d", "3000")
	carrier.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
}

// TestOutboundInternational: the inventory sells US numbers, but a customer's call goes to any
// E.164 destination a route covers (+44 here, carried by the second trunk in its "11" format,
// i.e. without the plus).
func TestOutboundInternational(t *testing.T) {
	e, _, p2 := outbound(t, sip.TrunkConfig{Name: "carrier1"})
	routes := []sip.OutboundRoute{{Name: "uk", NumberPattern: `\+44\d{9,10}`, Trunks: []string{"carrier2"}}}
	trunks := e.svc.Admin().Trunks()
	var cfgs []sip.TrunkConfig
	for _, t := range trunks {
		cfgs = append(cfgs, t.TrunkConfig)
	}
	if err := e.svc.Admin().SetRouting(cfgs, routes); err != nil {
		t.Fatal(err)
	}
	uk := "+442071838750"
	carrier := e.start("carrier2", carrier2IP, p2, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	e.call(customerIP, e.scenario("uac_auth.xml"), uk, ourNumber, "-au", "acme", "-ap", "s3cret")
	carrier.wait(t, 20*time.Second)
	if cdr := e.cdrs.wait(t, 1)[0]; cdr.Trunk != "carrier2" || cdr.Disposition != "answered" || cdr.To != uk {
		t.Fatalf("cdr %+v", cdr)
	}
}
