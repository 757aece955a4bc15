// Package receipt parses SMSC delivery receipts: the de-facto text format of SMPP 3.4
// Appendix B ("id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…") and the
// receipted_message_id / message_state / network_error_code TLVs (SMPP 3.4 §5.3.2.12,
// §5.3.2.35, §5.3.2.31), and matches receipt ids against the ids SMSCs returned at submit time.
package receipt

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// State is a message_state value, SMPP 3.4 §5.2.28.
type State byte

// The message states.
const (
	StateUnset         State = 0
	StateEnroute       State = 1
	StateDelivered     State = 2
	StateExpired       State = 3
	StateDeleted       State = 4
	StateUndeliverable State = 5
	StateAccepted      State = 6
	StateUnknown       State = 7
	StateRejected      State = 8
)

var stateNames = map[string]State{
	"ENROUTE": StateEnroute, "DELIVRD": StateDelivered, "DELIVERED": StateDelivered,
	"EXPIRED": StateExpired, "DELETED": StateDeleted, "UNDELIV": StateUndeliverable,
	"UNDELIVERABLE": StateUndeliverable, "ACCEPTD": StateAccepted, "ACCEPTED": StateAccepted,
	"UNKNOWN": StateUnknown, "REJECTD": StateRejected, "REJECTED": StateRejected,
}

// String returns the Appendix B abbreviation of s.
func (s State) String() string {
	switch s {
	case StateEnroute:
		return "ENROUTE"
	case StateDelivered:
		return "DELIVRD"
	case StateExpired:
		return "EXPIRED"
	case StateDeleted:
		return "DELETED"
	case StateUndeliverable:
		return "UNDELIV"
	case StateAccepted:
		return "ACCEPTD"
	case StateRejected:
		return "REJECTD"
	case StateUnknown:
		return "UNKNOWN"
	}
	return "UNSET"
}

// Final reports whether s ends the message's life (no further receipt is expected).
func (s State) Final() bool {
	switch s {
	case StateDelivered, StateExpired, StateDeleted, StateUndeliverable, StateRejected:
		return true
	}
	return false
}

// Delivered reports whether s means the handset got the message.
func (s State) Delivered() bool { return s == StateDelivered }

// Receipt is a parsed delivery receipt.
type Receipt struct {
	// ID is the SMSC message id, as sent (see Candidates for matching).
	ID string
	// Submitted and Delivered are the sub: and dlvrd: counts (-1 when absent or not numeric).
	Submitted, Delivered int
	// SubmitDate and DoneDate are zero when absent or malformed.
	SubmitDate, DoneDate time.Time
	// State is the final or intermediate state.
	State State
	// Err is the network-specific error code (err: or network_error_code), "" when none.
	Err string
	// Text is the start of the original message, if the SMSC echoed it.
	Text string
}

// Errors returned by Parse.
var (
	ErrNoID    = errors.New("receipt: no message id")
	ErrNoState = errors.New("receipt: no state")
)

var fieldRE = regexp.MustCompile(`(?i)(?:^|\s)(id|sub|dlvrd|submit date|submit_date|done date|done_date|stat|err|text):`)

// Parse reads the Appendix B text of a receipt. Keys are case-insensitive and may come in any
// order; text: takes the rest of the message. The id and stat fields are required.
func Parse(s string) (Receipt, error) {
	r := Receipt{Submitted: -1, Delivered: -1}
	locs := findFields(s)
	for i, loc := range locs {
		key := strings.ToLower(s[loc[2]:loc[3]])
		end := len(s)
		if key != "text" && i+1 < len(locs) {
			end = locs[i+1][0]
		}
		val := strings.TrimSpace(s[loc[1]:end])
		switch key {
		case "id":
			if f := strings.Fields(val); len(f) > 0 {
				r.ID = f[0]
			}
		case "sub":
			r.Submitted = atoi(val)
		case "dlvrd":
			r.Delivered = atoi(val)
		case "submit date", "submit_date":
			r.SubmitDate = parseDate(val)
		case "done date", "done_date":
			r.DoneDate = parseDate(val)
		case "stat":
			if st, ok := stateNames[strings.ToUpper(val)]; ok {
				r.State = st
			} else {
				r.State = StateUnknown
			}
		case "err":
			r.Err = val
		case "text":
			r.Text = s[loc[1]:]
		}
		if key == "text" {
			break
		}
	}
	if r.ID == "" {
		return r, ErrNoID
	}
	if r.State == StateUnset {
		return r, ErrNoState
	}
	return r, nil
}

// TLVs carries the receipt TLVs of a deliver_sm; zero values mean absent.
type TLVs struct {
	// ReceiptedMessageID is receipted_message_id (C-octet string, NUL stripped).
	ReceiptedMessageID string
	// MessageState is message_state.
	MessageState State
	// NetworkErrorCode is network_error_code: type octet then 2-octet code.
	NetworkErrorCode []byte
}

// FromDeliverSM builds a receipt from a deliver_sm's short message text and TLVs. TLV values
// win over the text (SMPP 3.4 §4.6.1: they are the authoritative form in v3.4); either alone
// is enough.
func FromDeliverSM(text string, t TLVs) (Receipt, error) {
	r, err := Parse(text)
	if t.ReceiptedMessageID != "" {
		r.ID = strings.TrimRight(t.ReceiptedMessageID, "\x00")
	}
	if t.MessageState != StateUnset {
		r.State = t.MessageState
	}
	if len(t.NetworkErrorCode) == 3 && (t.NetworkErrorCode[1] != 0 || t.NetworkErrorCode[2] != 0) {
		r.Err = strconv.Itoa(int(t.NetworkErrorCode[1])<<8 | int(t.NetworkErrorCode[2]))
	}
	if r.ID == "" {
		return r, ErrNoID
	}
	if r.State == StateUnset {
		if err != nil && !errors.Is(err, ErrNoState) && !errors.Is(err, ErrNoID) {
			return r, err
		}
		return r, ErrNoState
	}
	return r, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// fieldKeys are the field names fieldRE matches, in its order.
var fieldKeys = []string{"id", "sub", "dlvrd", "submit date", "submit_date", "done date", "done_date", "stat", "err", "text"}

// findFields is fieldRE.FindAllStringSubmatchIndex(s, -1), scanned by hand for ASCII text
// (the regexp was a tenth of telgw's CPU per receipt); text with other bytes, where (?i)
// folds some non-ASCII letters too (U+017F ſ is s), goes to the regexp.
func findFields(s string) [][]int {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return fieldRE.FindAllStringSubmatchIndex(s, -1)
		}
	}
	var out [][]int
	for i := 0; i < len(s); {
		// A field starts at the beginning (^) or after one white space character (\s).
		start, ks, k := -1, 0, 0
		if i == 0 {
			if k = keyAt(s, 0); k > 0 {
				start, ks = 0, 0
			}
		}
		if start < 0 && isSpace(s[i]) {
			if k = keyAt(s, i+1); k > 0 {
				start, ks = i, i+1
			}
		}
		if start < 0 {
			i++
			continue
		}
		out = append(out, []int{start, ks + k + 1, ks, ks + k})
		i = ks + k + 1
	}
	return out
}

// keyAt returns the length of the field name followed by ':' at s[i:], 0 when none is.
func keyAt(s string, i int) int {
	for _, k := range fieldKeys {
		if j := i + len(k); j < len(s) && s[j] == ':' && strings.EqualFold(s[i:j], k) {
			return len(k)
		}
	}
	return 0
}

// isSpace is RE2's \s: tab, newline, form feed, carriage return, space.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\f' || b == '\r'
}

// parseDate reads YYMMDDhhmm or YYMMDDhhmmss as UTC, as time.Parse with layouts
// "0601021504" and "060102150405" does (a two-digit year below 69 is 20YY), and the zero
// time for anything else.
func parseDate(s string) time.Time {
	if len(s) != 10 && len(s) != 12 {
		return time.Time{}
	}
	var f [6]int
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return time.Time{}
		}
		f[i/2] = f[i/2]*10 + int(c-'0')
	}
	year, month, day, hour, minute, sec := f[0]+1900, time.Month(f[1]), f[2], f[3], f[4], f[5]
	if f[0] < 69 {
		year += 100
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 ||
		day > time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}
	}
	return time.Date(year, month, day, hour, minute, sec, 0, time.UTC)
}

// Key normalises an SMSC message id for storage and comparison: lower case, leading zeros
// removed ("0" stays "0").
func Key(id string) string {
	k := strings.TrimLeft(strings.ToLower(strings.TrimSpace(id)), "0")
	if k == "" && id != "" {
		return "0"
	}
	return k
}

// Candidates returns the keys a receipt id may match a stored key under. SMSCs often answer
// submit_sm_resp with a hexadecimal id and put the same number in decimal in the receipt (or
// the reverse), so a decimal id also yields its hexadecimal form and a hexadecimal id its
// decimal form. Compare Key of the submit-time id against each candidate.
func Candidates(id string) []string {
	k := Key(id)
	if k == "" {
		return nil
	}
	out := []string{k}
	if len(k) <= 19 {
		if v, err := strconv.ParseUint(k, 10, 64); err == nil {
			if h := strconv.FormatUint(v, 16); h != k {
				out = append(out, h)
			}
		}
	}
	if len(k) <= 16 {
		if v, err := strconv.ParseUint(k, 16, 64); err == nil {
			if d := strconv.FormatUint(v, 10); d != k && !contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
