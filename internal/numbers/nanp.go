package numbers

import (
	"strings"

	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
)

// E164 is a validated North American number in E.164 form: "+1" and ten digits, NPA-NXX-XXXX.
// Only Parse (and its callers) produce one, so holding an E164 means the NANP checks passed.
type E164 string

// String returns the E.164 text, e.g. "+14255550123".
func (e E164) String() string { return string(e) }

// ID is the ACS phone number id: the E.164 digits without the plus, e.g. "14255550123".
func (e E164) ID() string { return strings.TrimPrefix(string(e), "+") }

// NPA is the three-digit area code.
func (e E164) NPA() string {
	if len(e) != 12 {
		return ""
	}
	return string(e[2:5])
}

// NXX is the three-digit central office (exchange) code.
func (e E164) NXX() string {
	if len(e) != 12 {
		return ""
	}
	return string(e[5:8])
}

// TollFree reports whether the number is in a toll-free NPA.
func (e E164) TollFree() bool { return IsTollFreeNPA(e.NPA()) }

// Type is the ACS phone number type derived from the NPA.
func (e E164) Type() Type {
	if e.TollFree() {
		return TypeTollFree
	}
	return TypeGeographic
}

// IsTollFreeNPA reports whether npa is a toll-free area code (e164.IsTollFreeNPA).
func IsTollFreeNPA(npa string) bool { return e164.IsTollFreeNPA(npa) }

// ParseError says why a string is not a usable NANP number (e164.NANPError).
type ParseError = e164.NANPError

// Parse validates s as a North American number in E.164 form with the numbering-plan checks
// the inventory needs (e164.NANP).
func Parse(s string) (E164, error) {
	n, err := e164.NANP(s)
	if err != nil {
		return "", err
	}
	return E164(n), nil
}

// ValidNPA reports whether npa is a syntactically valid NANP area code (e164.ValidNPA).
func ValidNPA(npa string) bool { return e164.ValidNPA(npa) }

func nanpDigits(s string) ([11]byte, error) { return e164.NANPDigits(s) }

// ParseField is Parse for request fields: the error is a problem.Invalid naming target.
func ParseField(target, s string) (E164, error) {
	e, err := Parse(s)
	if err != nil {
		return "", problem.Invalid(target, "%q: %v", s, err).WithCode("InvalidPhoneNumber")
	}
	return e, nil
}
