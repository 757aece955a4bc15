package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip/number"
	"github.com/telgw/telgw/internal/sip/sdp"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, 200},
		{ErrUnknownNumber, 404},
		{fmt.Errorf("route: %w", problem.ErrNotFound), 404},
		{e164.ErrInvalid, 404},
		{calls.ErrNoRoute, 480},
		{fmt.Errorf("route: %w", calls.ErrNoAnswer), 480},
		{calls.ErrBusy, 486},
		{calls.ErrRejected, 603},
		{calls.ErrForbidden, 403},
		{calls.ErrUnauthorized, 403},
		{problem.Forbidden("x", "no"), 403},
		{calls.ErrUnavailable, 503},
		{fmt.Errorf("offer: %w", sdp.ErrNotAcceptable), 488},
		{errLoop, 483},
		{context.DeadlineExceeded, 408},
		{errors.New("boom"), 500},
	} {
		if got, _ := Status(tc.err); got != tc.code {
			t.Errorf("Status(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
}

func TestFailoverQ850Disposition(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code     int
		failover bool
		q850     int
		disp     string
	}{
		{0, true, 31, "failed"},
		{200, false, 16, "answered"},
		{404, false, 1, "rejected"},
		{408, true, 18, "no-answer"},
		{480, false, 18, "no-answer"},
		{486, false, 17, "busy"},
		{487, false, 16, "cancelled"},
		{500, true, 38, "failed"},
		{503, true, 34, "failed"},
		{600, false, 17, "busy"},
		{603, false, 21, "rejected"},
	} {
		if got := failover(tc.code); got != tc.failover {
			t.Errorf("failover(%d) = %v", tc.code, got)
		}
		if got := q850(nil, tc.code); got != tc.q850 {
			t.Errorf("q850(%d) = %d, want %d", tc.code, got, tc.q850)
		}
		if got := disposition(tc.code); got != tc.disp {
			t.Errorf("disposition(%d) = %s, want %s", tc.code, got, tc.disp)
		}
	}
	res := sip.NewResponse(503, "Service Unavailable")
	res.AppendHeader(sip.NewHeader("Reason", "Q.850;cause=41;text=\"Temporary failure\""))
	if got := q850(res, 503); got != 41 {
		t.Errorf("q850 from Reason = %d", got)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	req := sip.NewRequest(sip.INVITE, sip.Uri{Host: "x"})
	req.AppendHeader(sip.NewHeader("Session-Expires", "1800;refresher=UAS"))
	if d, r := sessionExpires(req); d != 1800*time.Second || r != "uas" {
		t.Fatalf("%s %s", d, r)
	}
	req = sip.NewRequest(sip.INVITE, sip.Uri{Host: "x"})
	req.AppendHeader(sip.NewHeader("x", "90"))
	if d, r := sessionExpires(req); d != 90*time.Second || r != "" {
		t.Fatalf("compact: %s %q", d, r)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := Config{Trunks: []TrunkConfig{{Name: "a", Address: "192.0.2.1:5060"}}, Routes: []OutboundRoute{{Name: "r", NumberPattern: `\+1\d+`}}}
	c, err := c.provision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:5060" || c.Host != "127.0.0.1" || c.Trunks[0].Transport != "udp" ||
		c.Trunks[0].Allow[0] != netip.MustParsePrefix("192.0.2.1/32") || !*c.RejectUnknownSource || c.Realm != "telgw" {
		t.Fatalf("defaults: %+v", c)
	}
	if !c.Routes[0].Match("+14155550100") || c.Routes[0].Match("x+14155550100") {
		t.Fatal("route pattern is not anchored")
	}
	for name, bad := range map[string]Config{
		"addr":      {Addr: "nope"},
		"trunk":     {Trunks: []TrunkConfig{{Name: "", Address: "1.2.3.4:5"}}},
		"duplicate": {Trunks: []TrunkConfig{{Name: "a", Address: "1.2.3.4:5"}, {Name: "a", Address: "1.2.3.4:6"}}},
		"transport": {Trunks: []TrunkConfig{{Name: "a", Address: "1.2.3.4:5", Transport: "sctp"}}},
		"format":    {Trunks: []TrunkConfig{{Name: "a", Address: "1.2.3.4:5", Format: number.Format{Style: "x"}}}},
		"pattern":   {Routes: []OutboundRoute{{Name: "r", NumberPattern: "("}}},
		"timer":     {SessionExpires: time.Second},
	} {
		if _, err := bad.provision(context.Background()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTrunkLimits(t *testing.T) {
	t.Parallel()
	tr := newTrunk(TrunkConfig{Name: "a", MaxCalls: 2, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if !tr.allows(netip.MustParseAddr("10.1.2.3")) || tr.allows(netip.MustParseAddr("11.0.0.1")) {
		t.Fatal("allow-list")
	}
	first, second, third := tr.acquire(), tr.acquire(), tr.acquire()
	if !first || !second || third {
		t.Fatal("max calls")
	}
	tr.release()
	if !tr.acquire() {
		t.Fatal("release")
	}
	cps := newTrunk(TrunkConfig{Name: "b", CPS: 1})
	if !cps.acquire() || cps.acquire() {
		t.Fatal("cps")
	}
}
