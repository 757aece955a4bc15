// Package number turns the telephone numbers carriers put in SIP Request-URIs, To and From
// headers into E.164 and back into the form each trunk wants.
//
// Carriers in the North American Numbering Plan send the same number as +14155550123,
// 14155550123 or 4155550123, sometimes as a tel-style user part with visual separators and
// parameters (RFC 3966 §5.1.1, RFC 3261 §19.1.6: user=phone). telgw stores and routes numbers
// only in E.164 (ITU-T E.164, leading "+"), so every edge normalizes first.
package number

import (
	"fmt"
	"strings"

	"github.com/telgw/telgw/internal/e164"
)

// ErrInvalid matches (errors.Is) every error Normalize returns (e164.ErrInvalid).
var ErrInvalid = e164.ErrInvalid

// Normalize returns s in E.164 form (e164.Normalize).
func Normalize(s string) (string, error) { return e164.Normalize(s) }

// Format is how a trunk wants numbers written in the user part of the URIs telgw sends it.
type Format struct {
	// Style is "e164" (+14155550123, the default when empty), "11" (14155550123) or "10"
	// (4155550123, NANP numbers only; others keep E.164 without "+").
	Style string
	// TechPrefix is prepended to the called number only (e.g. "1010" or "#99"). Default none.
	TechPrefix string
	// UserPhone adds ";user=phone" to Request-URIs and To (RFC 3261 §19.1.1). Default false.
	UserPhone bool
}

// Validate reports a Style telgw does not know.
func (f Format) Validate() error {
	switch f.Style {
	case "", "e164", "11", "10":
		return nil
	}
	return fmt.Errorf("number format %q is not e164, 11 or 10", f.Style)
}

// User returns e164 written in the trunk's style, without the tech prefix.
func (f Format) User(e164 string) string {
	digits := strings.TrimPrefix(e164, "+")
	switch f.Style {
	case "11":
		return digits
	case "10":
		if len(digits) == 11 && digits[0] == '1' {
			return digits[1:]
		}
		return digits
	}
	return "+" + digits
}

// Called returns the called number as the trunk wants it: tech prefix and style.
func (f Format) Called(e164 string) string { return f.TechPrefix + f.User(e164) }
