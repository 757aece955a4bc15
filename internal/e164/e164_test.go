package e164

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{"+14155550123", "+14155550123"},
		{"14155550123", "+14155550123"},
		{"4155550123", "+14155550123"},
		{"+1 (415) 555-0123", "+14155550123"},
		{"415.555.0123", "+14155550123"},
		{"+14155550123;npdi;rn=+14155559999", "+14155550123"},
		{"+442071838750", "+442071838750"},
		{"+4930123456", "+4930123456"},
		{"", ""},
		{"+", ""},
		{"abc", ""},
		{"415555012", ""},         // 9 digits
		{"24155550123", ""},       // 11 digits not starting with 1
		{"+10155550123", ""},      // NPA starts with 0
		{"+14151550123", ""},      // NXX starts with 1
		{"+1415555012", ""},       // +1 with 9 digits
		{"+0441234567", ""},       // country code 0
		{"+1234567890123456", ""}, // 16 digits
		{"sip:4155550123", ""},
		{"4155550123x1", ""},
	} {
		got, err := Normalize(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzNormalize checks that Normalize never panics, that what it returns is E.164 and that it is
// idempotent.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+14155550123", "4155550123", "1 (415) 555-0123;npdi", "+442071838750", "", "+", ";"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Normalize(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Normalize(%q): error %v does not match ErrInvalid", s, err)
			}
			return
		}
		if len(got) < 9 || len(got) > 16 || got[0] != '+' {
			t.Fatalf("Normalize(%q) = %q: not E.164", s, got)
		}
		if again, err := Normalize(got); err != nil || again != got {
			t.Fatalf("Normalize(Normalize(%q)) = %q, %v; want %q", s, again, err, got)
		}
	})
}

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, out string
		ok      bool
	}{{"+14255550100", "+14255550100", true}, {" +1 (425) 555-0100 ", "+14255550100", true}, {"14255550100", "14255550100", false},
		{"+0123456789", "+0123456789", false}, {"+1234567890123456", "+1234567890123456", false}, {"+123456", "+123456", false},
		{"+2801234567", "+2801234567", false}, {"+44 20 7183 8750", "+442071838750", true}, {"+8005551234", "+8005551234", true}}
	for _, tt := range tests {
		if out, ok := Clean(tt.in); out != tt.out || ok != tt.ok {
			t.Errorf("Clean(%q) = %q %v", tt.in, out, ok)
		}
	}
}
