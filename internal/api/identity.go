package api

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
)

// IdentityAPIVersions are the Identity api-versions telgw accepts (the npm SDK 1.3.1 sends
// 2023-10-01; the older ones share the same wire shapes).
var IdentityAPIVersions = []string{"2021-03-07", "2022-06-01", "2022-10-01", "2023-08-01", "2023-10-01"}

type identityHandlers struct {
	s   *Server
	svc *identity.Service
}

// MountIdentity serves the ACS Identity API (CommunicationIdentity 2023-10-01).
func (s *Server) MountIdentity(svc *identity.Service) {
	h := &identityHandlers{s: s, svc: svc}
	s.authed.Group(func(r chi.Router) {
		r.Use(APIVersions(IdentityAPIVersions...))
		r.Post("/identities", h.create)
		r.Delete("/identities/{id}", h.delete)
		r.Post("/identities/{id}/:issueAccessToken", h.issue)
		r.Post("/identities/{id}/:revokeAccessTokens", h.revoke)
		r.Post("/teamsUser/:exchangeAccessToken", h.exchange)
	})
}

type identityJSON struct {
	ID string `json:"id"`
}

type accessTokenJSON struct {
	Token     string    `json:"token"`
	ExpiresOn time.Time `json:"expiresOn"`
}

type createIdentityRequest struct {
	CreateTokenWithScopes []string `json:"createTokenWithScopes"`
	ExpiresInMinutes      *int     `json:"expiresInMinutes"`
}

type createIdentityResponse struct {
	Identity    identityJSON     `json:"identity"`
	AccessToken *accessTokenJSON `json:"accessToken,omitempty"`
}

func (h *identityHandlers) create(w http.ResponseWriter, r *http.Request) {
	var req createIdentityRequest
	if err := DecodeJSON(r, &req, true); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	scopes, err := identity.ParseScopes("createTokenWithScopes", req.CreateTokenWithScopes)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	expiry, err := identity.ParseExpiry(req.ExpiresInMinutes)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	id, tok, err := h.svc.Create(r.Context(), scopes, expiry)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	resp := createIdentityResponse{Identity: identityJSON{ID: id.ID}}
	if tok != nil {
		resp.AccessToken = &accessTokenJSON{Token: tok.Token, ExpiresOn: tok.ExpiresOn}
	}
	WriteJSON(w, http.StatusCreated, resp)
}

func (h *identityHandlers) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.Delete(r.Context(), PathParam(r, "id")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type issueTokenRequest struct {
	Scopes           []string `json:"scopes"`
	ExpiresInMinutes *int     `json:"expiresInMinutes"`
}

func (h *identityHandlers) issue(w http.ResponseWriter, r *http.Request) {
	var req issueTokenRequest
	if err := DecodeJSON(r, &req, false); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	if req.Scopes == nil {
		WriteError(w, r, h.s.log, problem.Invalid("scopes", "scopes is required").WithCode("ValidationError"))
		return
	}
	scopes, err := identity.ParseScopes("scopes", req.Scopes)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	expiry, err := identity.ParseExpiry(req.ExpiresInMinutes)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	tok, err := h.svc.IssueToken(r.Context(), PathParam(r, "id"), scopes, expiry)
	if err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	WriteJSON(w, http.StatusOK, accessTokenJSON{Token: tok.Token, ExpiresOn: tok.ExpiresOn})
}

func (h *identityHandlers) revoke(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.RevokeTokens(r.Context(), PathParam(r, "id")); err != nil {
		WriteError(w, r, h.s.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *identityHandlers) exchange(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, h.s.log, problem.Unsupported("exchanging Teams user tokens is not supported by telgw: it has no Microsoft Entra ID tenant").
		WithCode("NotSupported"))
}
