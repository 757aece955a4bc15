package e164

import "strings"

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

// NANPError says why a string is not a usable NANP number; Reason is a short human sentence.
type NANPError struct {
	Input  string
	Reason string
}

// Error implements error.
func (e *NANPError) Error() string { return e.Reason }

// NANP validates s as a North American (country code 1) number and returns it in E.164 form.
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
func NANP(s string) (string, error) {
	d, err := NANPDigits(s)
	if err != nil {
		return "", err
	}
	in := s
	npa, nxx, line := string(d[1:4]), string(d[4:7]), string(d[7:11])
	if err := checkNPA(npa); err != "" {
		return "", &NANPError{in, err}
	}
	if nxx[0] < '2' {
		return "", &NANPError{in, "exchange (NXX) " + nxx + " must start with 2-9"}
	}
	if nxx[1] == '1' && nxx[2] == '1' {
		return "", &NANPError{in, "exchange (NXX) " + nxx + " is an N11 service code"}
	}
	if nxx == "555" && line >= "0100" && line <= "0199" {
		return "", &NANPError{in, "555-0100 through 555-0199 are fictional numbers"}
	}
	return "+" + string(d[:]), nil
}

// NANPDigits reads s as "+1" and ten digits (punctuation allowed), without numbering-plan checks.
func NANPDigits(s string) ([11]byte, error) {
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
				return d, &NANPError{in, "too many digits for a North American number"}
			}
			d[n] = c
			n++
		case c == '+' && i == 0:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
			if plus && n == 0 && c != ' ' {
				return d, &NANPError{in, "not an E.164 number"}
			}
		default:
			return d, &NANPError{in, "not an E.164 number: unexpected character"}
		}
	}
	if n == 0 {
		return d, &NANPError{in, "not an E.164 number: no digits"}
	}
	if d[0] != '1' {
		return d, &NANPError{in, "only North American numbers (+1) are supported"}
	}
	if n != 11 {
		return d, &NANPError{in, "a North American number has 10 digits after +1"}
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
