package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
)

// ICEServer is one entry of RTCConfiguration.iceServers (W3C WebRTC §4.2.1 RTCIceServer): the
// page passes the list unchanged to its RTCPeerConnection.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEResponse is the body ICEHandler answers:
//
//	{"iceServers":[{"urls":["stun:h:3478","turn:h:3478?transport=udp"],"username":"…","credential":"…"}],
//	 "expiresOn":"2026-11-28T08:00:00Z"}
type ICEResponse struct {
	ICEServers []ICEServer `json:"iceServers"`
	// ExpiresOn is when the TURN credentials expire (RFC 3339); omitted without TURN.
	ExpiresOn *time.Time `json:"expiresOn,omitempty"`
}

// TokenVerifier checks a user access token; identity.Service implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (identity.Claims, error)
}

// ICESource returns the ICE servers for user (a communicationUser id), e.g. the embedded TURN
// server's URLs with a credential from turn.Server.Issue, and when they expire.
type ICESource func(ctx context.Context, user string) ([]ICEServer, time.Time, error)

// ICEHandler answers GET with the ICE servers for the user whose token is in
// `Authorization: Bearer` (RFC 6750 §2.1). A missing, bad, expired or revoked token gets 401;
// a token without the voip scope 403: TURN credentials are only for users allowed to call.
func ICEHandler(v TokenVerifier, src ICESource, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, ok := voipGet(w, r, v, log)
		if !ok {
			return
		}
		resp := ICEResponse{ICEServers: []ICEServer{}}
		if src != nil {
			servers, exp, err := src(r.Context(), claims.Identity)
			if err != nil {
				log.Error("ice: servers", "err", err)
				jsonError(w, http.StatusServiceUnavailable, "Unavailable", "no ICE servers available")
				return
			}
			if servers != nil {
				resp.ICEServers = servers
			}
			if !exp.IsZero() {
				e := exp.UTC()
				resp.ExpiresOn = &e
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// voipUser authenticates the request's `Authorization: Bearer` user access token (RFC 6750
// §2.1) and requires the voip scope, answering 401 or 403 itself when it reports false.
func voipUser(w http.ResponseWriter, r *http.Request, v TokenVerifier, log *slog.Logger) (identity.Claims, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="telgw"`)
		jsonError(w, http.StatusUnauthorized, "Unauthorized", "send the user access token as Authorization: Bearer")
		return identity.Claims{}, false
	}
	claims, err := v.Verify(r.Context(), strings.TrimSpace(token))
	if err != nil {
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Kind != problem.KindUnauthorized {
			log.Error("verify token", "err", err)
			jsonError(w, http.StatusInternalServerError, "InternalError", "cannot verify the token")
			return identity.Claims{}, false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="telgw", error="invalid_token"`)
		jsonError(w, http.StatusUnauthorized, "InvalidToken", "the token is invalid, expired or revoked")
		return identity.Claims{}, false
	}
	if !claims.HasScope(identity.ScopeVoIP) {
		jsonError(w, http.StatusForbidden, "Forbidden", "the token lacks the voip scope")
		return identity.Claims{}, false
	}
	return claims, true
}

// jsonError writes an ACS-style error body {"error":{"code","message"}}.
func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// voipGet starts a user's GET endpoint: no caching, GET only (405 otherwise), and the voip
// user of the request's Bearer token (voipUser answers 401/403 itself).
func voipGet(w http.ResponseWriter, r *http.Request, v TokenVerifier, log *slog.Logger) (identity.Claims, bool) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		jsonError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
		return identity.Claims{}, false
	}
	return voipUser(w, r, v, log)
}
