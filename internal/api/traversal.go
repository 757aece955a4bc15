package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	"github.com/telgw/telgw/internal/turn"
)

// TraversalAPIVersions are the NetworkTraversal api-versions telgw accepts (the npm SDK
// 1.1.0-beta.1 sends 2022-03-01-preview).
var TraversalAPIVersions = []string{"2022-02-01", "2022-03-01-preview", "2026-09-24-preview"}

// RelayIssuer issues TURN credentials and knows the server URLs.
type RelayIssuer interface {
	// Issue issues a credential for user valid for ttl, capped at the configured
	// turn.credentialTTL (0: that lifetime).
	Issue(user string, ttl time.Duration, now time.Time) turn.Credential
	URLs() []string
}

// MaxRelayTTL is the largest `ttl` ACS accepts (172800 s, 48 hours); telgw issues at most
// turn.credentialTTL (default 1 hour) whatever a request asks, as ACS "uses the default value if
// the given value exceeds it".
const MaxRelayTTL = 48 * time.Hour

type traversalHandlers struct {
	s     *Server
	ids   *identity.Service
	relay RelayIssuer
}

// MountTraversal serves POST /networkTraversal/:issueRelayConfiguration.
func (s *Server) MountTraversal(ids *identity.Service, relay RelayIssuer) {
	h := &traversalHandlers{s: s, ids: ids, relay: relay}
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(TraversalAPIVersions...))
		r.Post("/networkTraversal/:issueRelayConfiguration", h.issue)
	})
}

type relayRequest struct {
	ID        string `json:"id"`
	RouteType string `json:"routeType"`
	TTL       *int   `json:"ttl"`
}

type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	RouteType  string   `json:"routeType"`
}

type relayConfigJSON struct {
	ExpiresOn  time.Time       `json:"expiresOn"`
	IceServers []iceServerJSON `json:"iceServers"`
}

func (h *traversalHandlers) issue(w http.ResponseWriter, r *http.Request) {
	var req relayRequest
	if err := DecodeJSON(r, &req, true); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	routes := []string{"any", "nearest"}
	switch req.RouteType {
	case "":
	case "any", "nearest":
		routes = []string{req.RouteType}
	default:
		WriteError(w, r, h.s.log, problem.Invalid("routeType", "%q is not any or nearest", req.RouteType))
		return
	}
	var ttl time.Duration // the configured lifetime
	if req.TTL != nil {
		switch {
		case *req.TTL < 0:
			WriteError(w, r, h.s.log, problem.Invalid("ttl", "must be between 0 and 172800 seconds"))
			return
		case *req.TTL > 0 && time.Duration(*req.TTL)*time.Second < MaxRelayTTL:
			ttl = time.Duration(*req.TTL) * time.Second
		}
	}
	if req.ID != "" {
		if _, err := h.ids.Get(r.Context(), req.ID); err != nil {
			WriteError(w, r, h.s.log, err)
			return
		}
	}
	// USER in the TURN REST username is the identity (absent without id), so the credential stops
	// working when the identity is deleted.
	cred := h.relay.Issue(req.ID, ttl, time.Now())
	out := relayConfigJSON{ExpiresOn: cred.ExpiresOn}
	for _, rt := range routes {
		out.IceServers = append(out.IceServers, iceServerJSON{URLs: h.relay.URLs(), Username: cred.Username,
			Credential: cred.Password, RouteType: rt})
	}
	WriteJSON(w, http.StatusOK, out)
}
