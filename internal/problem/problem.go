// Package problem defines the small set of error kinds every telgw domain returns, so that each
// edge (HTTP, SIP, SMPP) maps them to its own status codes in exactly one place.
package problem

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds, from the caller's point of view.
const (
	// KindInternal is a failure of telgw or a dependency; the caller may retry later.
	KindInternal Kind = iota
	// KindInvalid means the request itself is wrong; Target names the offending field.
	KindInvalid
	// KindNotFound means the named resource does not exist (or is not the caller's).
	KindNotFound
	// KindConflict means the resource is in a state that forbids the operation.
	KindConflict
	// KindForbidden means the caller is authenticated but not allowed to do this.
	KindForbidden
	// KindUnauthorized means the caller could not be authenticated.
	KindUnauthorized
	// KindUnavailable means a needed resource is temporarily unavailable (capacity, no bind).
	KindUnavailable
	// KindTooMany means the caller exceeded a rate or quantity limit.
	KindTooMany
	// KindUnsupported means the operation exists in the contract but telgw does not offer it.
	KindUnsupported
	// KindTooLarge means the request (body, message) exceeds a size limit.
	KindTooLarge
)

// Error is a classified error with an ACS-style code, a message for humans and an optional
// target (the request field or parameter at fault).
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Target  string
	Err     error

	sentinel bool
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if e.Target != "" {
		msg = e.Target + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the wrapped cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) (and the other sentinels) match any Error of that kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.sentinel && t.Kind == e.Kind
}

// sentinelError builds a sentinel: it matches every Error of its kind under errors.Is.
func sentinelError(k Kind, code, msg string) *Error {
	return &Error{Kind: k, Code: code, Message: msg, sentinel: true}
}

// Sentinels for errors.Is. Stores return them (possibly wrapped); domains may return richer
// *Error values of the same kind, which still match.
var (
	ErrNotFound  = sentinelError(KindNotFound, "NotFound", "not found")
	ErrConflict  = sentinelError(KindConflict, "Conflict", "conflict")
	ErrForbidden = sentinelError(KindForbidden, "Forbidden", "forbidden")
	ErrInvalid   = sentinelError(KindInvalid, "BadRequest", "invalid request")
)

// Invalid reports a bad request field.
func Invalid(target, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Code: "BadRequest", Message: fmt.Sprintf(format, args...), Target: target}
}

// NotFound reports a missing resource.
func NotFound(target, format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Code: "NotFound", Message: fmt.Sprintf(format, args...), Target: target}
}

// Conflict reports a state conflict.
func Conflict(target, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Code: "Conflict", Message: fmt.Sprintf(format, args...), Target: target}
}

// Forbidden reports an operation the caller may not perform.
func Forbidden(target, format string, args ...any) *Error {
	return &Error{Kind: KindForbidden, Code: "Forbidden", Message: fmt.Sprintf(format, args...), Target: target}
}

// Unauthorized reports a failed authentication.
func Unauthorized(format string, args ...any) *Error {
	return &Error{Kind: KindUnauthorized, Code: "Denied", Message: fmt.Sprintf(format, args...)}
}

// Unsupported reports an operation telgw does not offer.
func Unsupported(format string, args ...any) *Error {
	return &Error{Kind: KindUnsupported, Code: "NotSupported", Message: fmt.Sprintf(format, args...)}
}

// WithCode returns a copy of e with an ACS-specific error code.
func (e *Error) WithCode(code string) *Error {
	c := *e
	c.Code = code
	return &c
}

// KindOf returns the kind of err, KindInternal when err carries none.
func KindOf(err error) Kind {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return KindInternal
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var pe *Error
	ok := errors.As(err, &pe)
	return pe, ok
}
