package sip

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/policy"
)

func TestHeaderNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want string
	}{
		{`<sip:+14155550100@pbx.example;user=phone>;reason=unconditional`, "+14155550100"},
		{`"Desk" <sip:14155550100@pbx.example>, <tel:+14155550101;phone-context=x>`, "+14155550100,+14155550101"},
		{`<sip:+14155550100@a>;index=1, <sip:alice@b>;index=1.1`, "+14155550100,alice"},
		{`<sips:+14155550100;verstat=x@a>`, "+14155550100"},
		{`<broken`, "<broken"},
		{`no brackets`, ""},
	} {
		if got := strings.Join(headerNumbers(tc.in), ","); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCallerIDError(t *testing.T) {
	t.Parallel()
	own := []string{"+14155550100", "+14155550101"}
	req := func(hdrs ...string) *sip.Request {
		r := sip.NewRequest(sip.INVITE, sip.Uri{User: "+12125550199", Host: "telgw"})
		for i := 0; i+1 < len(hdrs); i += 2 {
			r.AppendHeader(sip.NewHeader(hdrs[i], hdrs[i+1]))
		}
		return r
	}
	for _, tc := range []struct {
		name string
		from string
		req  *sip.Request
		ok   bool
	}{
		{"own number", "+14155550100", req(), true},
		{"foreign number", "+14155550199", req(), false},
		{"own diversion", "+14155550100", req("Diversion", "<sip:+14155550101@pbx>;reason=no-answer"), true},
		{"foreign diversion", "+14155550100", req("Diversion", "<sip:+14155550199@pbx>"), false},
		{"foreign history-info", "+14155550100", req("History-Info", "<sip:+14155550100@a>;index=1,<sip:+19005550100@b>;index=1.1"), false},
		{"non-number diversion", "+14155550100", req("Diversion", "<sip:boss@pbx>"), false},
	} {
		if err := callerIDError(tc.req, tc.from, own); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestPolicyStatus(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]int{policy.KillSwitch: 403, policy.DestinationBlocked: 403, policy.DestinationNotAllowed: 403,
		policy.ConcurrentCalls: 486, policy.CallsPerMinute: 503, policy.CallMinutesPerDay: 403} {
		code, _, hdrs := policyStatus(&policy.Violation{Policy: p, Detail: `a "quoted" detail`})
		if code != want || !strings.Contains(hdrs[0].Value(), "policy "+p) || strings.Count(hdrs[0].Value(), `"`) != 2 {
			t.Errorf("%s: %d %v", p, code, hdrs)
		}
	}
}

func TestPIDFLO(t *testing.T) {
	t.Parallel()
	doc := pidfLO("+14155550100", "gw.example", Location{Country: "US", City: "A<B", Name: `"x" & y`, Latitude: "1", Longitude: "2"}, time.Unix(0, 0))
	for _, want := range []string{`entity="pres:+14155550100@gw.example"`, "<ca:A3>A&lt;B</ca:A3>", "<ca:NAM>&#34;x&#34; &amp; y</ca:NAM>",
		"<gml:pos>1 2</gml:pos>", "<dm:timestamp>1970-01-01T00:00:00Z</dm:timestamp>"} {
		if !strings.Contains(doc, want) {
			t.Errorf("no %s in %s", want, doc)
		}
	}
}

// FuzzHeaderNumbers: the Diversion/History-Info reader never panics and every number it
// returns comes from the input.
func FuzzHeaderNumbers(f *testing.F) {
	for _, s := range []string{`<sip:+14155550100@pbx>;reason=unconditional`, `<tel:+1415>`, `<<>>`, `<:@;>`, `a<b>c<`, `<sip:@>`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range headerNumbers(s) {
			if len(n) > len(s)+1 {
				t.Fatalf("%q from %q", n, s)
			}
		}
	})
}

// TestAdmitTransfer: a REFER out through a trunk passes the policy as a call the transferor
// places (the caller's subject on side 0, the number called on side 1); one to telgw's own
// numbers (no trunk) is not checked; the admission is held until the call ends.
func TestAdmitTransfer(t *testing.T) {
	t.Parallel()
	eng, _ := policy.New(policy.Config{Block: []string{"+1900"}, Defaults: policy.Limits{ConcurrentCalls: 1}}, nil, nil)
	tbl := &callTable{stop: t.Context()}
	c := &call{env: &callEnv{fraud: &fraudEnv{pol: eng}, log: slog.New(slog.DiscardHandler), table: tbl}}
	c.cc = calls.NewCall(time.Now(), calls.Leg{ID: "a", Kind: calls.LegCarrier, Participant: calls.Phone("+12125550199")})
	c.cc.SetFrom("+12125550199")
	c.cc.SetTo("+14155550100")
	trunkT := []target{{trunk: &trunk{}}}
	if _, v := c.admitTransfer(trunkT, "+19005550100", 1); v == nil || v.Policy != policy.DestinationBlocked {
		t.Fatalf("premium: %v", v)
	}
	adm, v := c.admitTransfer(trunkT, "+12125550123", 1)
	if v != nil {
		t.Fatal(v)
	}
	c.keepTransfer(adm)
	// The number's one concurrent call is the transfer's until the call ends.
	if _, v := c.admitTransfer(trunkT, "+12125550124", 1); v == nil || v.Policy != policy.ConcurrentCalls {
		t.Fatalf("second transfer: %v", v)
	}
	if _, v := c.admitTransfer([]target{{}}, "+19005550100", 1); v != nil {
		t.Fatalf("own number: %v", v)
	}
	cdr := c.cc.CDR()
	c.endFraud(&cdr)
	if adm, v := c.admitTransfer(trunkT, "+12125550124", 1); v != nil {
		t.Fatalf("after the call: %v", v)
	} else {
		adm.End(0)
	}
}
