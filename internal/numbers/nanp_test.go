package numbers

import (
	"errors"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/telgw/telgw/internal/problem"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{"+14255551234", "+14255551234", ""},
		{" +1 (425) 555-1234 ", "+14255551234", ""},
		{"1.425.555.1234", "+14255551234", ""},
		{"14255551234", "+14255551234", ""},
		{"+18005551234", "+18005551234", ""},
		{"+18335551234", "+18335551234", ""},
		{"+14255550199", "", "fictional"},
		{"+14255550100", "", "fictional"},
		{"+14255550200", "+14255550200", ""},
		{"+14255550099", "+14255550099", ""},
		{"+14254110000", "", "N11"},
		{"+14259110000", "", "N11"},
		{"+14251230000", "", "NXX"},
		{"+14250230000", "", "NXX"},
		{"+11255550123", "", "NPA"},
		{"+10255550123", "", "NPA"},
		{"+12995550123", "", "reserved"},
		{"+14115550123", "", "N11"},
		{"+18225551234", "", "toll-free"},
		{"+15555551234", "", "not assigned"},
		{"+442071234567", "", "North American"},
		{"+1425555012", "", "10 digits"},
		{"+142555501234", "", "too many"},
		{"", "", "no digits"},
		{"+", "", "no digits"},
		{"+1425555O123", "", "unexpected"},
		{"++14255550123", "", "unexpected"},
		{"+-14255550123", "", "not an E.164"},
		{"1425555012३", "", "unexpected"},
	} {
		got, err := Parse(tc.in)
		if tc.err == "" {
			if err != nil || string(got) != tc.want {
				t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		var pe *ParseError
		if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestE164Parts(t *testing.T) {
	t.Parallel()
	e, _ := Parse("+18885551234")
	if e.NPA() != "888" || e.NXX() != "555" || e.ID() != "18885551234" || !e.TollFree() || e.Type() != TypeTollFree {
		t.Fatalf("%q: %s %s %s %v", e, e.NPA(), e.NXX(), e.ID(), e.TollFree())
	}
	if E164("junk").NPA() != "" {
		t.Fatal("NPA of junk")
	}
}

func TestParseField(t *testing.T) {
	t.Parallel()
	_, err := ParseField("phoneNumbers[2]", "+1")
	pe, ok := problem.As(err)
	if !ok || pe.Kind != problem.KindInvalid || pe.Target != "phoneNumbers[2]" {
		t.Fatalf("%#v", err)
	}
}

// TestStricterThanLibphonenumber pins the cases the issue names: nyaruka/phonenumbers accepts
// them, telgw does not.
func TestStricterThanLibphonenumber(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"+14154110000", "+14155550150"} {
		n, err := phonenumbers.Parse(s, "US")
		if err != nil || !phonenumbers.IsValidNumber(n) {
			t.Fatalf("libphonenumber rejects %s; the premise changed", s)
		}
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%s) accepted", s)
		}
	}
}

func TestValidNPA(t *testing.T) {
	t.Parallel()
	for npa, want := range map[string]bool{"425": true, "800": true, "190": false, "911": false, "290": false, "42": false, "4a5": false, "822": false} {
		if ValidNPA(npa) != want {
			t.Errorf("ValidNPA(%q) = %v", npa, !want)
		}
	}
}

func TestAreaCodes(t *testing.T) {
	t.Parallel()
	if l, s, ok := AreaCodeInfo("206"); !ok || l != "Seattle" || s != "WA" {
		t.Fatalf("206: %q %q %v", l, s, ok)
	}
	if _, s, ok := AreaCodeInfo("888"); !ok || s != "" {
		t.Fatalf("888: %q %v", s, ok)
	}
	if _, _, ok := AreaCodeInfo("604"); ok {
		t.Fatal("604 (Canada) is not a US area code")
	}
	codes := USAreaCodes()
	if len(codes) < 300 {
		t.Fatalf("%d area codes", len(codes))
	}
	for _, c := range codes {
		if !ValidNPA(c) {
			t.Errorf("table holds invalid NPA %s", c)
		}
	}
	if StateAbbr("washington") != "WA" || StateAbbr("wa") != "WA" || StateAbbr("Narnia") != "" || StateName("OR") != "Oregon" {
		t.Fatal("state names")
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	if !CapBoth.Covers(CapInbound) || CapInbound.Covers(CapOutbound) || !CapNone.Covers(CapNone) || CapNone.Covers(CapInbound) {
		t.Fatal("Covers")
	}
	if got := Covering(CapOutbound); len(got) != 2 || got[0] != CapOutbound || got[1] != CapBoth {
		t.Fatalf("Covering: %v", got)
	}
	if _, err := ParseCapability("sms", "both"); problem.KindOf(err) != problem.KindInvalid {
		t.Fatal(err)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		kind RouteKind
		ok   bool
	}{
		{"", RouteDefault, true},
		{"sip:app@pbx.example.com:5060;transport=tcp", RouteSIP, true},
		{"sips:+14255550123@pbx.example.com", RouteSIP, true},
		{"user:8:acs:abc_123", RouteUser, true},
		{"bot:https://bot.example.com/calls", RouteBot, true},
		{"sip:", "", false},
		{"sip:a b@c", "", false},
		{"user:alice", "", false},
		{"bot:ftp://x", "", false},
		{"tel:+14255550123", "", false},
	} {
		r, err := ParseRoute(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (r.Kind() != tc.kind || r.String() != tc.in)) {
			t.Errorf("ParseRoute(%q) = %v %q, %v", tc.in, r.Kind(), r.String(), err)
		}
	}
}
