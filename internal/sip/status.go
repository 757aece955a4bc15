package sip

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/sip/sdp"
)

// Status maps an error from routing, auth or media setup (the call domain's error kinds,
// calls.Err*) to the SIP final response the caller gets. It is the one place where telgw errors
// become SIP codes (RFC 3261 §21).
func Status(err error) (int, string) {
	switch {
	case err == nil:
		return 200, "OK"
	case errors.Is(err, calls.ErrUnknownNumber), errors.Is(err, problem.ErrNotFound), errors.Is(err, e164.ErrInvalid):
		return 404, "Not Found" // §21.4.5
	case errors.Is(err, calls.ErrNoRoute), errors.Is(err, calls.ErrNoAnswer):
		return 480, "Temporarily Unavailable" // §21.4.18
	case errors.Is(err, calls.ErrBusy):
		return 486, "Busy Here" // §21.4.24
	case errors.Is(err, calls.ErrRejected):
		return 603, "Decline" // §21.6.2
	case errors.Is(err, calls.ErrForbidden), errors.Is(err, problem.ErrForbidden):
		return 403, "Forbidden" // §21.4.4
	case errors.Is(err, calls.ErrUnauthorized):
		// A final answer: the challenge (407) is the authenticator's own, sent before.
		return 403, "Forbidden"
	case errors.Is(err, calls.ErrUnavailable):
		return 503, "Service Unavailable" // §21.5.4
	case errors.Is(err, sdp.ErrNotAcceptable):
		return 488, "Not Acceptable Here"
	case errors.Is(err, errLoop):
		return 483, "Too Many Hops"
	case errors.Is(err, context.DeadlineExceeded):
		return 408, "Request Timeout"
	}
	return 500, "Server Internal Error"
}

// errLoop is a request whose Max-Forwards ran out (RFC 3261 §16.3 step 3), a SIP matter.
var errLoop = errors.New("sip: max-forwards exhausted")

// failover reports whether an outbound attempt that ended with code (0: no response) should go
// on to the next trunk: timeouts, 408 and 5xx do (RFC 3261 §21.5 server failures say nothing
// about other servers); 4xx and 6xx are the callee's answer and do not.
func failover(code int) bool { return code == 0 || code == 408 || (code >= 500 && code < 600) }

// q850 returns the ISDN cause for a final response: from a Reason header (RFC 3326,
// "Q.850;cause=17") when present, else by the RFC 3398 §8.2.6.1 mapping.
func q850(res *sip.Response, code int) int {
	if res != nil {
		for _, h := range res.GetHeaders("Reason") {
			v := h.Value()
			if !strings.HasPrefix(strings.ToUpper(v), "Q.850") {
				continue
			}
			if _, c, ok := strings.Cut(v, "cause="); ok {
				c, _, _ = strings.Cut(c, ";")
				if n, err := strconv.Atoi(strings.TrimSpace(c)); err == nil {
					return n
				}
			}
		}
	}
	switch {
	case code >= 200 && code < 300:
		return 16 // normal call clearing
	case code == 404, code == 604:
		return 1 // unallocated number
	case code == 486, code == 600:
		return 17 // user busy
	case code == 480, code == 408:
		return 18 // no user responding / no answer
	case code == 487:
		return 16 // cancelled by the caller: normal clearing
	case code == 403, code == 603:
		return 21 // call rejected
	case code == 484:
		return 28 // invalid number format
	case code == 488:
		return 65 // bearer capability not implemented
	case code == 503:
		return 34 // no circuit available
	case code >= 500:
		return 38 // network out of order
	}
	return 31 // normal, unspecified
}

// disposition names a call's outcome for CDRs and metrics.
func disposition(code int) calls.Disposition {
	switch {
	case code >= 200 && code < 300:
		return calls.DispositionAnswered
	case code == 486 || code == 600:
		return calls.DispositionBusy
	case code == 487:
		return calls.DispositionCancelled
	case code == 408 || code == 480:
		return calls.DispositionNoAnswer
	case code == 401 || code == 403 || code == 407:
		return calls.DispositionUnauthorized
	case code == 603 || code == 404 || code == 484 || code == 488:
		return calls.DispositionRejected
	}
	return calls.DispositionFailed
}
