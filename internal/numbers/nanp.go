package numbers

import (
	"strings"

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

// tollFree lists the toll-free NPAs in service (NANPA: 800, 833, 844, 855, 866, 877, 888).
var tollFree = [...]string{"800", "833", "844", "855", "866", "877", "888"}

// IsTollFreeNPA reports whether npa is a toll-free area code.
func IsTollFreeNPA(npa string) bool {
	for _, t := range tollFree {
		if npa == t {
			return true
		}
	}
	return false
}

// ParseError says why a string is not a usable NANP number; Reason is a short human sentence.
type ParseError struct {
	Input  string
	Reason string
}

// Error implements error.
func (e *ParseError) Error() string { return e.Reason }

// Parse validates s as a North American (country code 1) number and returns it in E.164 form.
//
// It accepts E.164 ("+14255550123") and, for operator input, the same with spaces, dashes, dots
// and parentheses, or the 11 digits without the plus. It enforces the NANP numbering plan
// beyond what generic libraries check (nyaruka/phonenumbers accepts N11 exchanges and the
// fictional 555-01XX block):
//   - NPA (area code) [2-9][0-8]\d — the middle digit 9 is reserved for expansion;
//   - NXX (exchange) [2-9]\d\d and not N11 (211…911 are service codes);
//   - 555-0100…555-0199 are fictional (reserved for films and examples) and rejected;
//   - for toll-free NPAs only the seven in service (800/833/844/855/866/877/888) are toll-free;
//     other 8YY codes (822, 880…) are not assigned and rejected.
func Parse(s string) (E164, error) {
	d, err := nanpDigits(s)
	if err != nil {
		return "", err
	}
	in := s
	npa, nxx, line := string(d[1:4]), string(d[4:7]), string(d[7:11])
	if err := checkNPA(npa); err != "" {
		return "", &ParseError{in, err}
	}
	if nxx[0] < '2' {
		return "", &ParseError{in, "exchange (NXX) " + nxx + " must start with 2-9"}
	}
	if nxx[1] == '1' && nxx[2] == '1' {
		return "", &ParseError{in, "exchange (NXX) " + nxx + " is an N11 service code"}
	}
	if nxx == "555" && line >= "0100" && line <= "0199" {
		return "", &ParseError{in, "555-0100 through 555-0199 are fictional numbers"}
	}
	return E164("+" + string(d[:])), nil
}

// nanpDigits reads s as "+1" and ten digits (punctuation allowed), without numbering-plan checks.
func nanpDigits(s string) ([11]byte, error) {
	in := s
	s = strings.TrimSpace(s)
	var d [11]byte
	n := 0
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(d) {
				return d, &ParseError{in, "too many digits for a North American number"}
			}
			d[n] = c
			n++
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
			if plus && n == 0 && c != ' ' {
				return d, &ParseError{in, "not an E.164 number"}
			}
		default:
			return d, &ParseError{in, "not an E.164 number: unexpected character"}
		}
	}
	if n == 0 {
		return d, &ParseError{in, "not an E.164 number: no digits"}
	}
	if d[0] != '1' {
		return d, &ParseError{in, "only North American numbers (+1) are supported"}
	}
	if n != 11 {
		return d, &ParseError{in, "a North American number has 10 digits after +1"}
	}
	return d, nil
}

func checkNPA(npa string) string {
	if npa[0] < '2' {
		return "area code (NPA) " + npa + " must start with 2-9"
	}
	if npa[1] == '9' {
		return "area code (NPA) " + npa + " is reserved (middle digit 9)"
	}
	if npa[1] == '1' && npa[2] == '1' {
		return "area code (NPA) " + npa + " is an N11 service code"
	}
	if npa[0] == '8' && npa[1] == npa[2] && !IsTollFreeNPA(npa) {
		return "area code (NPA) " + npa + " is a toll-free code not in service"
	}
	if npa == "555" {
		return "area code (NPA) 555 is not assigned"
	}
	return ""
}

// ValidNPA reports whether npa is a syntactically valid NANP area code (three digits,
// [2-9][0-8]\d, not N11).
func ValidNPA(npa string) bool {
	if len(npa) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if npa[i] < '0' || npa[i] > '9' {
			return false
		}
	}
	return checkNPA(npa) == ""
}

// ParseField is Parse for request fields: the error is a problem.Invalid naming target.
func ParseField(target, s string) (E164, error) {
	e, err := Parse(s)
	if err != nil {
		return "", problem.Invalid(target, "%q: %v", s, err).WithCode("InvalidPhoneNumber")
	}
	return e, nil
}
