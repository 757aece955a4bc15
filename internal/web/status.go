package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
)

// Status is what telgw knows about a softphone user's ability to call, so the page can say
// why a call will fail instead of showing only a SIP cause:
//
//	{"identity":"8:acs:…","number":"+14252000100","problems":[{"code":"NoOutboundRoute","message":"…"}]}
type Status struct {
	// Identity is the user the token is for.
	Identity string `json:"identity"`
	// Number is the phone number assigned to the user (its caller ID, where its calls ring).
	Number string `json:"number,omitempty"`
	// Problems are what stands in the way, empty when none is known.
	Problems []StatusProblem `json:"problems"`
}

// StatusProblem is one known cause of failure, with a message for the user and the operator.
type StatusProblem struct {
	// Code is stable: NoNumberAssigned, NoOutboundRoute, NoTrunkUp.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// StatusSource reports the status of user (a communicationUser id).
type StatusSource func(ctx context.Context, user string) (Status, error)

// StatusHandler answers GET with the Status of the user whose voip token is in
// `Authorization: Bearer` (401/403 as ICEHandler): the status concerns only that user, and
// what it reveals about the node (no trunk) is what the user would learn from a failed call.
func StatusHandler(v TokenVerifier, src StatusSource, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, ok := voipGet(w, r, v, log)
		if !ok {
			return
		}
		st, err := src(r.Context(), claims.Identity)
		if err != nil {
			log.Error("phone status", "err", err)
			jsonError(w, http.StatusServiceUnavailable, "Unavailable", "status unavailable")
			return
		}
		st.Identity = claims.Identity
		if st.Problems == nil {
			st.Problems = []StatusProblem{}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	})
}
