package api

import (
	"net/http"

	"github.com/telgw/telgw/internal/events"
)

// MountCallingOpenID serves, without authentication as ACS does, what an app needs to verify
// the Authorization JWTs of Call Automation callbacks:
//
//	GET /calling/.well-known/acsopenidconfiguration   OpenID configuration (issuer, jwks_uri)
//	GET /calling/keys                                 the JWKS it names
//
// Both are public keys and names only; caches may keep them an hour.
func (s *Server) MountCallingOpenID(cb *events.Callbacks) {
	s.router.Get("/calling/.well-known/acsopenidconfiguration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		WriteJSON(w, http.StatusOK, cb.OpenIDConfiguration())
	})
	s.router.Get("/calling/keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		WriteJSON(w, http.StatusOK, cb.JWKS())
	})
}
