package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/telgw/telgw/internal/problem"
)

// Accepted describes the 202 answer of an ACS long-running operation (LRO). ACS clients poll
// OperationLocation until the operation's status is succeeded or failed, then (for
// final-state-via "location" operations) read the result at Location.
type Accepted struct {
	// OperationLocation is the operation's status URL path, e.g. /phoneNumbers/operations/search_ID.
	OperationLocation string
	// Location is the path of the final result ("" when the operation has none).
	Location string
	// OperationID is sent as the operation-id header.
	OperationID string
	// Headers are extra id headers of the operation (search-id, purchase-id, release-id …).
	Headers map[string]string
	// Body is the 202 body (nil for none).
	Body any
}

// WriteAccepted writes a 202 Accepted for an LRO. Paths are written as given, relative to the
// endpoint, as ACS does (the SDKs resolve them against the endpoint they called).
func WriteAccepted(w http.ResponseWriter, a Accepted) {
	h := w.Header()
	h.Set("Operation-Location", a.OperationLocation)
	if a.Location != "" {
		h.Set("Location", a.Location)
	}
	if a.OperationID != "" {
		h.Set("operation-id", a.OperationID)
	}
	for k, v := range a.Headers {
		h.Set(k, v)
	}
	if a.Body == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	WriteJSON(w, http.StatusAccepted, a.Body)
}

// Page is an offset page request: Skip items, then at most Top.
type Page struct {
	Skip, Top int
	// topName is the query parameter that carries Top (top or maxPageSize).
	topName string
}

// PageParams reads skip and the page-size parameter topName (ACS uses "top" or
// "maxPageSize") with default def and cap max; bad values are 400s naming the parameter.
func PageParams(r *http.Request, topName string, def, max int) (Page, error) {
	p := Page{Top: def, topName: topName}
	q := r.URL.Query()
	if v := q.Get("skip"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, problem.Invalid("skip", "must be a non-negative integer, not %q", v)
		}
		p.Skip = n
	}
	if v := q.Get(topName); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max {
			return p, problem.Invalid(topName, "must be an integer from 1 to %d, not %q", max, v)
		}
		p.Top = n
	}
	return p, nil
}

// NextLink returns the relative link to the page after p when more items follow, "" otherwise
// (handlers ask their store for Top+1 items to know). The link repeats the request's query
// (api-version, filters) with skip advanced; ACS SDKs resolve relative nextLinks against
// their endpoint.
func NextLink(r *http.Request, p Page, more bool) string {
	if !more {
		return ""
	}
	q := r.URL.Query()
	q.Set("skip", strconv.Itoa(p.Skip+p.Top))
	q.Set(p.topName, strconv.Itoa(p.Top))
	return (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String()
}
