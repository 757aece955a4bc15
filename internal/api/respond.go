package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/problem"
)

// ErrorBody is the ACS CommunicationErrorResponse: {"error":{"code","message","target"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the ACS CommunicationError.
type ErrorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Target  string        `json:"target,omitempty"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// Status maps an error's kind to its HTTP status. This is the one place telgw makes that
// mapping; the table test in respond_test.go pins it.
func Status(err error) int {
	switch problem.KindOf(err) {
	case problem.KindInvalid:
		return http.StatusBadRequest
	case problem.KindNotFound:
		return http.StatusNotFound
	case problem.KindConflict:
		return http.StatusConflict
	case problem.KindForbidden:
		return http.StatusForbidden
	case problem.KindUnauthorized:
		return http.StatusUnauthorized
	case problem.KindUnavailable:
		return http.StatusServiceUnavailable
	case problem.KindTooMany:
		return http.StatusTooManyRequests
	case problem.KindUnsupported:
		return http.StatusNotImplemented
	case problem.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

// Detail renders err as an ACS error detail; internal errors get a generic message.
func Detail(err error) ErrorDetail {
	if pe, ok := problem.As(err); ok && pe.Kind != problem.KindInternal {
		return ErrorDetail{Code: pe.Code, Message: pe.Message, Target: pe.Target}
	}
	return ErrorDetail{Code: "InternalError", Message: "An internal error occurred; see the server log with the request id."}
}

// WriteError writes err as an ACS error body and logs internal errors.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := Status(err)
	if status >= 500 && log != nil {
		log.ErrorContext(r.Context(), "request failed", "request_id", RequestID(r.Context()), "err", err)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", HMACScheme)
	}
	WriteJSON(w, status, ErrorBody{Error: Detail(err)})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// DecodeJSON decodes the request body into v. An empty body decodes as {} when allowEmpty.
// Errors name the offending field (problem.KindInvalid).
func DecodeJSON(r *http.Request, v any, allowEmpty bool) error {
	b, err := requestBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(b, v, allowEmpty)
}

// requestBody is the whole body: the verified bytes authenticate kept, or read now.
func requestBody(r *http.Request) ([]byte, error) {
	if bb, ok := r.Body.(*bodyBytes); ok && bb.Len() == len(bb.b) {
		_, _ = bb.Seek(0, io.SeekEnd) // consumed, as reading it would leave it
		return bb.b, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(mbe.Limit)
		}
		return nil, problem.Invalid("body", "could not read request body: %v", err)
	}
	return b, nil
}

// decodeJSON is DecodeJSON of a body already read.
func decodeJSON(b []byte, v any, allowEmpty bool) error {
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return nil
		}
		return problem.Invalid("body", "request body is required").WithCode("InvalidRequestBody")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "body"
			}
			return problem.Invalid(field, "must be %s, not JSON %s", jsonKind(te.Type.Kind().String()), te.Value).WithCode("InvalidRequestBody")
		case errors.As(err, &se):
			return problem.Invalid("body", "malformed JSON at offset %d: %v", se.Offset, se).WithCode("InvalidRequestBody")
		default:
			return problem.Invalid("body", "malformed JSON: %v", err).WithCode("InvalidRequestBody")
		}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float64", "float32":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + goKind
}

func tooLarge(limit int64) error {
	return &problem.Error{Kind: problem.KindTooLarge, Code: "RequestEntityTooLarge",
		Message: fmt.Sprintf("request body exceeds %d bytes", limit), Target: "body"}
}

// PathParam returns a path parameter, percent-decoded (identity ids arrive as 8%3Aacs%3A…).
func PathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if d, err := url.PathUnescape(v); err == nil {
		return d
	}
	return v
}
