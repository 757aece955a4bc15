package sip

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/telgw/telgw/internal/calls"
)

func TestParseReferTo(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
		err  error
	}{
		{[]string{"<sip:+14155550177@telgw.example.com>"}, "+14155550177", nil},
		{[]string{"sip:4155550177@10.0.0.1;user=phone"}, "+14155550177", nil},
		{[]string{`"Bob" <sips:+442079460000@x>;foo=bar`}, "+442079460000", nil},
		{[]string{"<tel:+12125550123>"}, "+12125550123", nil},
		{[]string{"tel:+12125550123"}, "+12125550123", nil},
		{nil, "", errReferMissing},
		{[]string{"<sip:a@x>", "<sip:b@x>"}, "", errReferMissing},
		{[]string{"<sip:alice@evil.example.com>"}, "", errReferNumber},
		{[]string{"<sip:evil.example.com>"}, "", errReferNumber},
		{[]string{"<sip:+14155550177@x?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>"}, "", errReferReplaces},
		{[]string{"<sip:+14155550177@x;method=BYE>"}, "", errReferMethod},
		{[]string{"<http://example.com/>"}, "", errReferSyntax},
		{[]string{"<<<"}, "", errReferSyntax},
	} {
		got, err := parseReferTo(tc.in)
		if !errors.Is(err, tc.err) || got.number != tc.want {
			t.Errorf("%q: got %q, %v; want %q, %v", tc.in, got.number, err, tc.want, tc.err)
		}
	}
}

// FuzzParseReferTo: any Refer-To value is either refused or names a number in E.164.
func FuzzParseReferTo(f *testing.F) {
	for _, s := range []string{"<sip:+14155550177@h>", "tel:+12125550123", "<sip:a@b?Replaces=x>", `"x" <sip:1@h>;p=1`, "<sips:+1@[::1]:5061;transport=tls>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseReferTo([]string{v})
		if err == nil && (len(got.number) < 2 || got.number[0] != '+') {
			t.Fatalf("%q: number %q", v, got.number)
		}
		_, _, _ = referToStatus(err)
	})
}

type routes map[string]Route

func (r routes) CallRoute(_ context.Context, n string) (Route, error) {
	if rt, ok := r[n]; ok {
		return rt, nil
	}
	return nil, calls.ErrUnknownNumber
}

// TestReferPolicy: who may transfer where (refer.go): own numbers for everyone, the outbound
// routes only for customers' legs and users, never for carriers; an app's number never.
func TestReferPolicy(t *testing.T) {
	tt := newTrunkTable(slog.New(slog.DiscardHandler), nil, nil)
	us := OutboundRoute{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier1"}}
	if err := us.Compile(); err != nil {
		t.Fatal(err)
	}
	tt.set([]TrunkConfig{{Name: "carrier1", Address: "192.0.2.1:5060"}}, []OutboundRoute{us})
	s := &dialogs{callEnv: &callEnv{trunks: tt}, router: routes{
		"+14155550100": SIPRoute{URI: "sip:pbx@192.0.2.9"},
		"+14155550101": UserRoute{User: "8:acs:u"},
		"+14155550102": calls.BotRoute{URL: "https://app.example.com/cb"},
	}}
	for _, tc := range []struct {
		from   calls.LegKind
		number string
		want   string // sip, user, trunk, none, forbidden
	}{
		{calls.LegCarrier, "+14155550100", "sip"},
		{calls.LegCarrier, "+14155550101", "user"},
		{calls.LegCarrier, "+12125550123", "forbidden"},
		{calls.LegCarrier, "+442079460000", "forbidden"},
		{calls.LegEndpoint, "+12125550123", "trunk"},
		{calls.LegWebRTC, "+12125550123", "trunk"},
		{calls.LegEndpoint, "+442079460000", "none"},
		{calls.LegEndpoint, "+14155550102", "forbidden"},
	} {
		p, err := s.referRoute(context.Background(), tc.from, tc.number, "+12065550100")
		got := "none"
		switch {
		case errors.Is(err, calls.ErrForbidden):
			got = "forbidden"
		case err != nil:
			got = err.Error()
		case p.user.ID != "":
			got = "user"
		case len(p.targets) == 1 && p.targets[0].trunk != nil:
			got = "trunk"
		case len(p.targets) == 1:
			got = "sip"
		}
		if got != tc.want {
			t.Errorf("%s → %s: %s, want %s", tc.from, tc.number, got, tc.want)
		}
	}
}
