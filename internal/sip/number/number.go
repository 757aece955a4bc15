// Package number writes E.164 numbers in the form each trunk wants in the user part of the
// URIs telgw sends it.
//
// Carriers in the North American Numbering Plan expect the same number as +14155550123,
// 14155550123 or 4155550123, some with a tech prefix or ;user=phone (RFC 3261 §19.1.6).
// Reading numbers the other way (whatever a carrier sends, into E.164) is internal/e164's.
package number

import (
	"fmt"
	"strings"
)

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
