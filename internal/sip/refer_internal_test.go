package sip

import (
	"errors"
	"testing"
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
