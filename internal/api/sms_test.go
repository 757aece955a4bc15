package api

import (
	"errors"
	"testing"

	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sms"
)

// TestSendResponseItem pins how a recipient's result maps to the ACS SmsSendResponseItem:
// httpStatusCode, successful and errorMessage (the message without its field prefix).
func TestSendResponseItem(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   sms.SendResult
		want smsSendResponseItem
	}{
		{"accepted", sms.SendResult{To: "+14255550100", MessageID: "m1"},
			smsSendResponseItem{To: "+14255550100", MessageID: "m1", HTTPStatusCode: 202, Successful: true}},
		{"repeatability accepted", sms.SendResult{To: "+1", MessageID: "m2", RepeatabilityResult: "accepted"},
			smsSendResponseItem{To: "+1", MessageID: "m2", HTTPStatusCode: 202, Successful: true, RepeatabilityResult: "accepted"}},
		{"repeat rejected", sms.SendResult{To: "+1", MessageID: "m2", RepeatabilityResult: "rejected"},
			smsSendResponseItem{To: "+1", MessageID: "m2", HTTPStatusCode: 202, Successful: true, RepeatabilityResult: "rejected"}},
		{"invalid number", sms.SendResult{To: "12345", Err: problem.Invalid("to", "Invalid To phone number %q: not E.164", "12345")},
			smsSendResponseItem{To: "12345", HTTPStatusCode: 400, ErrorMessage: `Invalid To phone number "12345": not E.164`}},
		{"invalid repeatability", sms.SendResult{To: "+1", Err: problem.Invalid("repeatabilityRequestId", "must be a UUID")},
			smsSendResponseItem{To: "+1", HTTPStatusCode: 400, ErrorMessage: "must be a UUID"}},
		{"unavailable", sms.SendResult{To: "+1", Err: &problem.Error{Kind: problem.KindUnavailable, Code: "Unavailable", Message: "no carrier"}},
			smsSendResponseItem{To: "+1", HTTPStatusCode: 503, ErrorMessage: "no carrier"}},
		{"internal", sms.SendResult{To: "+1", Err: errors.New("disk on fire")},
			smsSendResponseItem{To: "+1", HTTPStatusCode: 500, ErrorMessage: "An internal error occurred; see the server log with the request id."}},
	} {
		if got := sendResponseItem(tt.in); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
