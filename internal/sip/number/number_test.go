package number

import (
	"testing"

	"github.com/telgw/telgw/internal/e164"
)

func TestFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		f            Format
		in           string
		user, called string
	}{
		{Format{}, "+14155550123", "+14155550123", "+14155550123"},
		{Format{Style: "e164"}, "+14155550123", "+14155550123", "+14155550123"},
		{Format{Style: "11"}, "+14155550123", "14155550123", "14155550123"},
		{Format{Style: "10", TechPrefix: "1010"}, "+14155550123", "4155550123", "10104155550123"},
		{Format{Style: "10"}, "+442071838750", "442071838750", "442071838750"},
	} {
		if got := tc.f.User(tc.in); got != tc.user {
			t.Errorf("%+v.User(%q) = %q, want %q", tc.f, tc.in, got, tc.user)
		}
		if got := tc.f.Called(tc.in); got != tc.called {
			t.Errorf("%+v.Called(%q) = %q, want %q", tc.f, tc.in, got, tc.called)
		}
	}
	if err := (Format{Style: "x"}).Validate(); err == nil {
		t.Error("Validate accepted style x")
	}
}

// FuzzFormat checks that every trunk format of a number e164.Normalize accepts normalizes back
// to it (what a trunk is sent is read back the same when it comes in).
func FuzzFormat(f *testing.F) {
	for _, s := range []string{"+14155550123", "4155550123", "1 (415) 555-0123;npdi", "+442071838750", "", "+", ";"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := e164.Normalize(s)
		if err != nil {
			return
		}
		for _, style := range []string{"e164", "11"} {
			u := Format{Style: style}.User(got)
			if back, err := e164.Normalize(u); got[1] == '1' && (err != nil || back != got) {
				t.Fatalf("style %s: %q -> %q -> %q, %v", style, got, u, back, err)
			}
		}
	})
}
