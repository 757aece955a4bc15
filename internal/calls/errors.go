package calls

import "errors"

// Error kinds of call outcomes. The call domain and the transports return them (wrapped, matched
// with errors.Is) for a call that cannot go on; each transport maps them to its own status in one
// place (the SIP edge: sip.Status). ErrUnknownNumber (route.go) is one of them.
var (
	// ErrNoRoute: the number is telgw's but has nowhere to send the call.
	ErrNoRoute = errors.New("calls: number has no route")
	// ErrBusy: the callee is busy.
	ErrBusy = errors.New("calls: busy")
	// ErrNoAnswer: nobody answered in time.
	ErrNoAnswer = errors.New("calls: no answer")
	// ErrRejected: the callee declined the call.
	ErrRejected = errors.New("calls: rejected")
	// ErrUnauthorized: the caller did not prove who it is.
	ErrUnauthorized = errors.New("calls: unauthorized")
	// ErrForbidden: the caller is known but may not place this call (e.g. a caller id that is
	// not its own).
	ErrForbidden = errors.New("calls: forbidden")
	// ErrUnavailable: telgw cannot take the call now (a trunk at capacity, no media ports,
	// shutting down); the caller may retry.
	ErrUnavailable = errors.New("calls: unavailable")
)
