package sip_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/stir"
	"github.com/telgw/telgw/internal/stir/stirtest"
)

// recorder is policy.Events for the tests.
type recorder struct {
	mu        sync.Mutex
	refused   []policy.Refusal
	emergency []policy.Emergency
}

func (r *recorder) Refused(_ context.Context, x policy.Refusal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = append(r.refused, x)
}

func (r *recorder) EmergencyCall(_ context.Context, x policy.Emergency) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.emergency = append(r.emergency, x)
}

func (r *recorder) policies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, x := range r.refused {
		out = append(out, x.Violation.Policy)
	}
	return out
}

type fraudEnv struct {
	*env
	pol           *policy.Engine
	ev            *recorder
	carrier, e911 int // SIPp ports of trunk carrier1 and of the emergency trunk
	pki           *stirtest.PKI
}

// newFraudEnv: trunk carrier1 (carrierIP) for US numbers, the emergency trunk "psap"
// (carrier2IP over TCP, with maxCalls 1 and a trickle of cps so that capacity would refuse a
// call),
// customer "acme" with ourNumber, the policy pol, a signer and a verifier of pki.
func newFraudEnv(t *testing.T, pc policy.Config, tweak func(*sip.Config)) *fraudEnv {
	sippPath(t)
	f := &fraudEnv{ev: &recorder{}, carrier: freePort(t, carrierIP), e911: freePort(t, carrier2IP), pki: stirtest.New(t)}
	var err error
	if f.pol, err = policy.New(pc, nil, nil); err != nil {
		t.Fatal(err)
	}
	signer, err := stir.NewSigner(stir.SignerConfig{Key: f.pki.KeyPEM, Cert: f.pki.CertPEM, CertURL: f.pki.URL})
	if err != nil {
		t.Fatal(err)
	}
	guard := &events.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	verifier, err := stir.NewVerifier(stir.VerifierConfig{Roots: f.pki.Roots, Client: guard.Client(2 * time.Second), AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	c1 := carrierTrunk("carrier1", carrierIP, f.carrier)
	psap := carrierTrunk("psap", carrier2IP, f.e911)
	psap.MaxCalls, psap.CPS, psap.Transport = 1, 0.001, "tcp" // PIDF-LO makes the INVITE too big for UDP
	f.env = newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{c1, psap},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}},
		creds:  fakeCreds{"acme": sip.NewCredential("telgw", "acme", "s3cret", []string{ourNumber})},
		tweak: func(c *sip.Config) {
			c.Emergency = sip.EmergencyConfig{Trunk: "psap", SendLocation: true, Locations: map[string]sip.Location{
				ourNumber: {Country: "US", State: "CA", City: "San Francisco", Street: "Market", StreetSuffix: "St", HouseNumber: "1",
					Floor: "5", Name: "Acme & Co", PostalCode: "94105", Latitude: "37.7936", Longitude: "-122.3950"}}}
			if tweak != nil {
				tweak(c)
			}
		},
		deps: func(d *sip.Deps) { d.Policy, d.Events, d.Signer, d.Verifier = f.pol, f.ev, signer, verifier },
	})
	f.router.set(ourNumber, sip.SIPRoute{URI: "sip:pbx@" + net.JoinHostPort(pbxIP, strconv.Itoa(freePort(t, pbxIP)))})
	return f
}

// refs replaces </scenario> to reference vars, which SIPp requires of every
// variable a scenario assigns.
func refs(vars string) string {
	return `<Reference variables="` + vars + `"/></scenario>`
}

// refused is uac_auth_reject.xml expecting code with a Warning naming the policy.
func (e *env) refused(code, pol string) string {
	return e.scenario("uac_auth_reject.xml", `EXPECT_CODE"/>`, code+`"><action><ereg regexp="policy `+pol+`" search_in="hdr" header="Warning:" check_it="true" assign_to="w"/></action></recv>`, "</scenario>", refs("w"))
}

func (f *fraudEnv) callOut(t *testing.T, scenario, number string, args ...string) {
	t.Helper()
	f.call(customerIP, scenario, number, ourNumber, append([]string{"-au", "acme", "-ap", "s3cret"}, args...)...)
}

// answerAt starts the carrier's answering SIPp for n calls.
func (f *fraudEnv) carrierUAS(t *testing.T, n int, scenario string) *sipp {
	return f.start("carrier", carrierIP, f.carrier, scenario, "-m", strconv.Itoa(n), "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)))
}

func TestPolicyDestinations(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), nil)
	for _, tc := range []struct{ number, pol string }{
		{"+19005550100", policy.DestinationBlocked},
		{"+19765550100", policy.DestinationBlocked},
		{"+18765550100", policy.DestinationBlocked},
	} {
		f.callOut(t, f.refused("403", tc.pol), tc.number) // the env's SIPp helpers fail the test itself: no subtests
	}
	eventually(t, "3 refusal events", func() bool { got := f.ev.policies(); return len(got) == 3 && got[0] == policy.DestinationBlocked })
	// Per-credential allow list and kill switch.
	c := f.pol.Config()
	c.Credentials = map[string]policy.Rule{"acme": {Allow: []string{"+1415"}}}
	if err := f.pol.Set(c); err != nil {
		t.Fatal(err)
	}
	f.callOut(t, f.refused("403", policy.DestinationNotAllowed), otherNumber)
	c.Credentials = map[string]policy.Rule{"acme": {Disabled: true}}
	_ = f.pol.Set(c)
	f.callOut(t, f.refused("403", policy.KillSwitch), otherNumber)
	for _, cdr := range f.cdrs.wait(t, 5) {
		if cdr.SIPCode != 403 || cdr.Trunk != "" {
			t.Fatalf("cdr %+v", cdr)
		}
	}
}

func TestPolicyLimits(t *testing.T) {
	f := newFraudEnv(t, policy.Config{Defaults: policy.Limits{ConcurrentCalls: 1, CallsPerMinute: 2, CallMinutesPerDay: 1}}, nil)
	carrier := f.carrierUAS(t, 1, f.scenario("uas.xml"))
	// A call in progress: the second concurrent one is busy (486).
	long := f.start("long call", customerIP, freePort(t, customerIP), f.scenario("uac_auth.xml"),
		append([]string{f.addr, "-s", otherNumber, "-key", "caller", ourNumber, "-m", "1", "-d", "3000", "-mp", strconv.Itoa(freePort(t, customerIP)),
			"-au", "acme", "-ap", "s3cret"}, sippAuthURI(otherNumber, f.addr, []string{"-au"})...)...)
	eventually(t, "call up", func() bool { return f.counter("telgw_sip_calls_active", nil) == 1 })
	f.callOut(t, f.refused("486", policy.ConcurrentCalls), otherNumber)
	long.wait(t, 20*time.Second)
	carrier.wait(t, 20*time.Second)
	// Two calls started this minute (the refused one counts not): the third is refused 503
	// with Retry-After.
	carrier = f.carrierUAS(t, 1, f.scenario("uas.xml"))
	f.callOut(t, f.scenario("uac_auth.xml"), otherNumber)
	carrier.wait(t, 20*time.Second)
	f.callOut(t, f.refused("503", policy.CallsPerMinute), otherNumber)
	// The day's minutes: another minute of talk passes the limit of 1.
	f.pol.SetNow(func() time.Time { return time.Now().Add(2 * time.Minute) })
	if c, err := f.pol.StartCall(policy.Subject{Credential: "acme"}, otherNumber); err != nil {
		t.Fatal(err)
	} else {
		c.End(time.Minute)
	}
	f.callOut(t, f.refused("403", policy.CallMinutesPerDay), otherNumber)
	want := []string{policy.ConcurrentCalls, policy.CallsPerMinute, policy.CallMinutesPerDay}
	eventually(t, "refusal events "+strings.Join(want, ","), func() bool { return strings.Join(f.ev.policies(), ",") == strings.Join(want, ",") })
}

// psapUAS answers an emergency call after checking the callback number and the PIDF-LO.
func (f *fraudEnv) psapUAS(t *testing.T, callback string) *sipp {
	checks := `<recv request="INVITE" crlf="true"><action>` +
		`<ereg regexp="^\s*&lt;sip:` + regexp.QuoteMeta(callback) + `@" search_in="hdr" header="P-Asserted-Identity:" check_it="true" assign_to="pai"/>` +
		`<ereg regexp="^\s*&lt;cid:" search_in="hdr" header="Geolocation:" check_it="true" assign_to="geo"/>` +
		`<ereg regexp="multipart/mixed" search_in="hdr" header="Content-Type:" check_it="true" assign_to="ct"/>` +
		`<ereg regexp="Content-Type: application/pidf\+xml" search_in="msg" check_it="true" assign_to="pidf"/>` +
		`<ereg regexp="&lt;ca:A3&gt;San Francisco&lt;/ca:A3&gt;.*&lt;ca:NAM&gt;Acme &amp;amp; Co&lt;/ca:NAM&gt;" search_in="msg" check_it="true" assign_to="civic"/>` +
		`<ereg regexp="&lt;gml:pos&gt;37.7936 -122.3950&lt;/gml:pos&gt;" search_in="msg" check_it="true" assign_to="pos"/>` +
		`<ereg regexp="m=audio" search_in="msg" check_it="true" assign_to="sdp"/>` +
		`</action></recv>`
	return f.start("psap", carrier2IP, f.e911, f.scenario("uas.xml", `<recv request="INVITE" crlf="true"/>`, checks, "</scenario>", refs("pai,geo,ct,pidf,civic,pos,sdp")),
		"-m", "1", "-t", "t1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
}

// TestEmergencyWithEveryLimitExhausted: the credential is killed and over every limit, the
// emergency trunk is at capacity; 911 still reaches the emergency trunk with the callback
// number and the location.
func TestEmergencyWithEveryLimitExhausted(t *testing.T) {
	f := newFraudEnv(t, policy.Config{Defaults: policy.Limits{ConcurrentCalls: 1, CallsPerMinute: 1, CallMinutesPerDay: 1}}, nil)
	carrier := f.carrierUAS(t, 1, f.scenario("uas.xml"))
	f.callOut(t, f.scenario("uac_auth.xml"), otherNumber)
	carrier.wait(t, 20*time.Second)
	f.callOut(t, f.refused("503", policy.CallsPerMinute), otherNumber)
	c := f.pol.Config()
	c.Credentials = map[string]policy.Rule{"acme": {Disabled: true}}
	_ = f.pol.Set(c)
	f.callOut(t, f.refused("403", policy.KillSwitch), otherNumber)
	for _, dial := range []string{"911", "933"} {
		psap := f.psapUAS(t, ourNumber)
		// The endpoint presents a number not its own: the callback number is still its own.
		f.call(customerIP, f.scenario("uac_auth.xml"), dial, "+14155550142", "-au", "acme", "-ap", "s3cret")
		psap.wait(t, 20*time.Second)
	}
	cdrs := f.cdrs.wait(t, 5)
	for _, cdr := range cdrs[3:] {
		if cdr.Trunk != "psap" || cdr.Disposition != "answered" || cdr.From != ourNumber || (cdr.To != "911" && cdr.To != "933") || cdr.Attest != "A" {
			t.Fatalf("emergency cdr %+v", cdr)
		}
	}
	eventually(t, "emergency events", func() bool { f.ev.mu.Lock(); defer f.ev.mu.Unlock(); return len(f.ev.emergency) == 2 })
	f.ev.mu.Lock()
	defer f.ev.mu.Unlock()
	if len(f.ev.emergency) != 2 || f.ev.emergency[0].CallbackNumber != ourNumber || !f.ev.emergency[0].Location || f.ev.emergency[0].Subject.Credential != "acme" {
		t.Fatalf("emergency events %+v", f.ev.emergency)
	}
}

func TestEmergencyWithoutTrunk(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), func(c *sip.Config) { c.Emergency.Trunk = "" })
	f.callOut(t, f.authReject("503"), "911")
}

// TestCallerIDDiversion: Diversion and History-Info are accepted when they name the
// endpoint's own numbers, refused otherwise.
func TestCallerIDDiversion(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), nil)
	withHeader := func(scn, h string, repl ...string) string {
		return f.scenario(scn, append([]string{"Max-Forwards: 70\n", h + "\n      Max-Forwards: 70\n"}, repl...)...)
	}
	for _, h := range []string{"Diversion: <sip:+14155550142@pbx.example>;reason=unconditional",
		"History-Info: <sip:+14155550142@pbx.example>;index=1", "Diversion: <sip:anonymous@pbx.example>"} {
		f.callOut(t, withHeader("uac_auth_reject.xml", h, "EXPECT_CODE", "403"), otherNumber)
	}
	// Its own number: the call goes out with the Diversion header.
	check := `<recv request="INVITE" crlf="true"><action><ereg regexp="^\s*&lt;sip:\` + ourNumber + `@" search_in="hdr" header="Diversion:" check_it="true" assign_to="d"/></action></recv>`
	carrier := f.carrierUAS(t, 1, f.scenario("uas.xml", `<recv request="INVITE" crlf="true"/>`, check, "</scenario>", refs("d")))
	f.callOut(t, withHeader("uac_auth.xml", "Diversion: <sip:"+ourNumber+"@pbx.example>;reason=unconditional"), otherNumber)
	carrier.wait(t, 20*time.Second)
}

// TestIdentityOut: a call out carries an Identity header (attestation A) that verifies with
// an independent implementation (node:crypto) and with telgw's verifier; the CDR keeps the
// attestation.
func TestIdentityOut(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), nil)
	logged := `<recv request="INVITE" crlf="true"><action>` +
		`<ereg regexp=".*" search_in="hdr" header="Identity:" check_it="true" assign_to="id"/>` +
		`<log message="IDENTITY:[$id]"/></action></recv>`
	carrier := f.start("carrier", carrierIP, f.carrier, f.scenario("uas.xml", `<recv request="INVITE" crlf="true"/>`, logged),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrierIP)), "-trace_logs")
	f.callOut(t, f.scenario("uac_auth.xml"), otherNumber)
	carrier.wait(t, 20*time.Second)
	logs, _ := filepath.Glob(filepath.Join(f.dir, "*_logs.log"))
	var id string
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if m := regexp.MustCompile(`IDENTITY:\s*(\S+)`).FindSubmatch(b); m != nil {
			id = string(m[1])
		}
	}
	if !strings.Contains(id, ";info=<"+f.pki.URL+">;alg=ES256;ppt=shaken") {
		var all []string
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			all = append(all, string(b))
		}
		t.Fatalf("identity %q (logs %v)", id, all)
	}
	if cdr := f.cdrs.wait(t, 1)[0]; cdr.Attest != "A" {
		t.Fatalf("cdr %+v", cdr)
	}
	v, _ := stir.NewVerifier(stir.VerifierConfig{Roots: f.pki.Roots, Client: (&events.Guard{AllowPrivate: true}).Client(time.Second), AllowHTTP: true})
	if r := v.Verify(context.Background(), id, ourNumber, otherNumber); r.Verstat != stir.Passed || r.Attest != "A" {
		t.Fatalf("verify: %+v", r)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	out, err := exec.Command(node, "../stir/testdata/verify.mjs", id, ourNumber, otherNumber, f.pki.RootFile).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok A" {
		t.Fatalf("node verifier: %v %s", err, out)
	}
}

// TestIdentityIn: a carrier's call with a valid Identity reaches the PBX with verstat
// TN-Validation-Passed on the From number; a tampered one with TN-Validation-Failed; the
// CDRs keep them.
func TestIdentityIn(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), nil)
	signer, _ := stir.NewSigner(stir.SignerConfig{Key: f.pki.KeyPEM, Cert: f.pki.CertPEM, CertURL: f.pki.URL})
	good, _ := signer.Sign(otherNumber, ourNumber, stir.AttestFull)
	bad, _ := signer.Sign("+12125550100", ourNumber, stir.AttestFull) // another caller's
	r, _ := f.router.CallRoute(context.Background(), ourNumber)
	pbxPort := r.(sip.SIPRoute).URI[strings.LastIndexByte(r.(sip.SIPRoute).URI, ':')+1:]
	for i, tc := range []struct{ identity, verstat string }{{good, stir.Passed}, {bad, stir.Failed}} {
		check := `<recv request="INVITE" crlf="true"><action><ereg regexp="verstat=` + tc.verstat + `@" search_in="hdr" header="From:" check_it="true" assign_to="v"/></action></recv>`
		port, _ := strconv.Atoi(pbxPort)
		pbx := f.start("pbx", pbxIP, port, f.scenario("uas.xml", `<recv request="INVITE" crlf="true"/>`, check, "</scenario>", refs("v")), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))
		f.call(carrierIP, f.scenario("uac.xml", "Max-Forwards: 70\n", "Identity: "+tc.identity+"\n      Max-Forwards: 70\n"), ourNumber, otherNumber)
		pbx.wait(t, 20*time.Second)
		if cdr := f.cdrs.wait(t, i+1)[i]; cdr.Verstat != tc.verstat || cdr.Disposition != "answered" {
			t.Fatalf("cdr %+v", cdr)
		}
	}
}

// TestIdentityToApp: the verification status reaches Call Automation's IncomingCall
// (customContext X-MS-Custom-Verstat), and a verstat header the carrier sends itself is
// replaced by telgw's finding.
func TestIdentityToApp(t *testing.T) {
	pki := stirtest.New(t)
	guard := &events.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	verifier, err := stir.NewVerifier(stir.VerifierConfig{Roots: pki.Roots, Client: guard.Client(2 * time.Second), AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := stir.NewSigner(stir.SignerConfig{Key: pki.KeyPEM, Cert: pki.CertPEM, CertURL: pki.URL})
	e, auto, pub, _ := botEnv(t, envOpts{deps: func(d *sip.Deps) { d.Verifier = verifier }}, true)
	for i, tc := range []struct{ orig, verstat string }{{otherNumber, stir.Passed}, {"+12125550100", stir.Failed}} {
		id, _ := signer.Sign(tc.orig, ourNumber, stir.AttestFull)
		wait := app(t, pub, func(ic calls.IncomingCall) error {
			if got := ic.CustomContext["X-MS-Custom-Verstat"]; got != tc.verstat {
				return fmt.Errorf("verstat %q, want %q (%v)", got, tc.verstat, ic.CustomContext)
			}
			return auto.Reject(context.Background(), ic.IncomingCallContext, calls.RejectBusy)
		})
		e.call(carrierIP, e.scenario("uac_reject.xml", "EXPECT_CODE", "486", "Max-Forwards: 70\n",
			"Identity: "+id+"\n      X-MS-Custom-Verstat: TN-Validation-Passed\n      Max-Forwards: 70\n"), "14155550100", otherNumber)
		wait()
		if cdr := e.cdrs.wait(t, i+1)[i]; cdr.Verstat != tc.verstat {
			t.Fatalf("cdr %+v", cdr)
		}
	}
}

// TestAppCallPolicyAndIdentity: an app's call (createCall) to a blocked number fails with
// CreateCallFailed; one to an allowed number carries an Identity header, attestation A.
func TestAppCallPolicyAndIdentity(t *testing.T) {
	sippPath(t)
	const far = "+12025550142"
	pki := stirtest.New(t)
	signer, _ := stir.NewSigner(stir.SignerConfig{Key: pki.KeyPEM, Cert: pki.CertPEM, CertURL: pki.URL})
	pol, _ := policy.New(policy.DefaultConfig(), nil, nil)
	ev := &recorder{}
	c2Port := freePort(t, carrier2IP)
	e, auto, _, cbs := botEnv(t, envOpts{
		trunks: []sip.TrunkConfig{carrierTrunk("carrier2", carrier2IP, c2Port)},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier2"}}},
		deps:   func(d *sip.Deps) { d.Policy, d.Signer, d.Events = pol, signer, ev },
	}, true)
	ctx := context.Background()
	p := calls.CreateCallParams{Target: calls.Phone("+19005550100"), SourceCallerID: ourNumber, CallbackURI: appURL}
	if _, err := auto.CreateCall(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CreateCallFailed", func() bool { return len(cbs.types()) == 1 })
	eventually(t, "refusal event", func() bool { return len(ev.policies()) == 1 && ev.policies()[0] == policy.DestinationBlocked })
	check := `<recv request="INVITE" crlf="true"><action><ereg regexp="ppt=shaken$" search_in="hdr" header="Identity:" check_it="true" assign_to="id"/></action></recv>`
	callee := e.start("carrier2", carrier2IP, c2Port, e.scenario("uas.xml", `<recv request="INVITE" crlf="true"/>`, check, "</scenario>", refs("id")),
		"-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, carrier2IP)))
	p.Target = calls.Phone(far)
	conn, err := auto.CreateCall(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "CallConnected", func() bool { return len(cbs.types()) == 2 })
	if err := auto.HangUp(ctx, conn.CallConnectionID); err != nil {
		t.Fatal(err)
	}
	callee.wait(t, 20*time.Second)
	cdrs := e.cdrs.wait(t, 2)
	if cdrs[0].SIPCode != 403 || cdrs[1].Attest != "A" || cdrs[1].Disposition != "answered" {
		t.Fatalf("cdrs %+v", cdrs)
	}
}

// TestIdentityLeftOutOverUDP: an INVITE that would pass 1300 bytes with its Identity header
// (here a long Diversion header) still goes out over the UDP trunk, unsigned.
func TestIdentityLeftOutOverUDP(t *testing.T) {
	f := newFraudEnv(t, policy.DefaultConfig(), nil)
	carrier := f.carrierUAS(t, 1, f.scenario("uas.xml"))
	long := "Diversion: <sip:" + ourNumber + "@pbx.example;x=" + strings.Repeat("a", 400) + ">;reason=unconditional"
	f.callOut(t, f.scenario("uac_auth.xml", "Max-Forwards: 70\n", long+"\n      Max-Forwards: 70\n"), otherNumber)
	carrier.wait(t, 20*time.Second)
	if cdr := f.cdrs.wait(t, 1)[0]; cdr.Disposition != "answered" || cdr.Attest != "" {
		t.Fatalf("cdr %+v", cdr)
	}
}
