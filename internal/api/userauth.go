package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
)

const claimsKey ctxKey = 1

// UserClaims returns the verified user access token claims of a request authenticated by
// UserAuth.
func UserClaims(ctx context.Context) (identity.Claims, bool) {
	c, ok := ctx.Value(claimsKey).(identity.Claims)
	return c, ok
}

// UserAuth authenticates end users (apps, browsers) by their ACS user access token in
// `Authorization: Bearer` (RFC 6750 §2.1) and requires one of scopes.
func UserAuth(ids *identity.Service, scopes ...identity.Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				closeUnread(w, r)
				w.Header().Set("WWW-Authenticate", `Bearer realm="telgw"`)
				WriteJSON(w, http.StatusUnauthorized, ErrorBody{Error: ErrorDetail{Code: "Denied",
					Message: "a user access token is required in Authorization: Bearer"}})
				return
			}
			c, err := ids.Verify(r.Context(), strings.TrimSpace(tok))
			if err != nil {
				closeUnread(w, r)
				w.Header().Set("WWW-Authenticate", `Bearer realm="telgw", error="invalid_token"`)
				WriteError(w, r, nil, err)
				return
			}
			allowed := len(scopes) == 0
			for _, s := range scopes {
				allowed = allowed || c.HasScope(s)
			}
			if !allowed {
				closeUnread(w, r)
				WriteError(w, r, nil, problem.Forbidden("scope", "the token lacks the required scope"))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey, c)))
		})
	}
}
