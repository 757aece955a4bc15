// Package e164 normalizes telephone numbers to E.164 (ITU-T E.164: "+", country code,
// subscriber number; 8 to 15 digits), the only form telgw stores and routes. Carriers in the
// North American Numbering Plan send the same number as +14155550123, 14155550123 or
// 4155550123, sometimes as a tel-style user part with visual separators and parameters
// (RFC 3966 §5.1.1); apps send "+1 (415) 555-0123". Every edge normalizes here first.
package e164

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid matches (errors.Is) every error Normalize returns: the input is not a telephone
// number telgw can route. SIP edges answer 404 (RFC 3261 §21.4.5) or 484 Address Incomplete.
var ErrInvalid = errors.New("e164: not a routable telephone number")

// maxInput bounds the input Normalize looks at; a SIP user part longer than this is no number.
const maxInput = 64

// Normalize returns s in E.164 form ("+" then 8 to 15 digits). It accepts:
//   - "+" followed by digits (any country code; NANP numbers, country code 1, must be valid
//     NANP: NPA and NXX start with 2–9);
//   - "1" followed by 10 NANP digits, and 10 NANP digits alone (assumed +1);
//   - RFC 3966 visual separators ("-", ".", "(", ")", " ") anywhere, and ";parameters" after the
//     number (e.g. ";npdi", ";rn=…"), which are dropped.
func Normalize(s string) (string, error) {
	if len(s) > maxInput {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalid, maxInput)
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i] // RFC 3966 §3: par = parameter / extension / isdn-subaddress
	}
	plus := strings.HasPrefix(s, "+")
	if plus {
		s = s[1:]
	}
	var b strings.Builder
	b.Grow(16)
	b.WriteByte('+')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == '-' || c == '.' || c == '(' || c == ')' || c == ' ':
			// RFC 3966 §5.1.1 visual-separator
		default:
			return "", fmt.Errorf("%w: unexpected %q", ErrInvalid, c)
		}
	}
	d := b.String()[1:]
	switch {
	case plus:
	case len(d) == 10:
		d = "1" + d
	case len(d) == 11 && d[0] == '1':
	default:
		return "", fmt.Errorf("%w: %d digits without a leading + is not a NANP number", ErrInvalid, len(d))
	}
	if len(d) < 8 || len(d) > 15 {
		return "", fmt.Errorf("%w: E.164 numbers have 8 to 15 digits, not %d", ErrInvalid, len(d))
	}
	if d[0] == '0' {
		return "", fmt.Errorf("%w: country codes do not start with 0", ErrInvalid)
	}
	if d[0] == '1' {
		if len(d) != 11 {
			return "", fmt.Errorf("%w: NANP numbers have 10 digits after +1", ErrInvalid)
		}
		if d[1] < '2' || d[4] < '2' {
			return "", fmt.Errorf("%w: NANP area code and exchange start with 2-9", ErrInvalid)
		}
	}
	if d[0] != '1' && !knownCountryCode(d) {
		return "", fmt.Errorf("%w: no country has calling code %s…", ErrInvalid, d[:min(3, len(d))])
	}
	return "+" + d, nil
}

// Clean reads a number as apps send it (the ACS SMS API's "from" and "to"): "+", a country
// code and subscriber digits, 7 to 15 digits in all (ITU-T E.164 §6), with spaces, dashes,
// dots and parentheses tolerated and removed. It returns the cleaned text and whether it is
// such a number with a country code in service (nyaruka/phonenumbers' metadata).
func Clean(s string) (string, bool) {
	c := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if len(c) < 8 || len(c) > 16 || c[0] != '+' || c[1] == '0' {
		return c, false
	}
	for i := 1; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return c, false
		}
	}
	return c, knownCountryCode(c[1:])
}

// Parse is Clean with an error matching ErrInvalid.
func Parse(s string) (string, error) {
	c, ok := Clean(s)
	if !ok {
		return "", fmt.Errorf("%w: %q is not an E.164 number (+, country code, 7 to 15 digits)", ErrInvalid, s)
	}
	return c, nil
}

// knownCountryCode reports whether digits start with an ITU-T E.164 country calling code in
// service. Country codes are prefix-free (one to three digits), so the first that is known
// decides.
func knownCountryCode(digits string) bool {
	for n := 1; n <= 3 && n < len(digits); n++ {
		cc := 0
		for _, d := range digits[:n] {
			cc = cc*10 + int(d-'0')
		}
		if phonenumbers.GetRegionCodeForCountryCode(cc) != phonenumbers.UNKNOWN_REGION {
			return true
		}
	}
	return false
}
