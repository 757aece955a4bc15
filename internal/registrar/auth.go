// Package registrar authenticates WebRTC users' SIP requests with their ACS user access tokens
// and keeps the location service their REGISTERs fill (RFC 3261 §10). A token travels either as
// `Authorization: Bearer` (RFC 8898 §2.2) or as the digest password with the identity as
// username (RFC 7616, for clients without Bearer support).
package registrar

import (
	"context"
	"crypto/md5" //nolint:gosec // RFC 2617/7616 MD5 digest
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/telgw/telgw/internal/identity"
	"github.com/telgw/telgw/internal/problem"
	sipdigest "github.com/telgw/telgw/internal/sip/digest"
)

// TokenVerifier is what the registrar needs of the identity service.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (identity.Claims, error)
	DigestHA1s(ctx context.Context, identity, algorithm string) ([]string, error)
}

// Authenticator checks SIP requests from WebRTC users.
type Authenticator struct {
	ids    TokenVerifier
	secret []byte
	nonces *sipdigest.Nonces
}

// NewAuthenticator returns an Authenticator; secret signs the digest nonces, which are good on
// this instance only and for sipdigest.DefaultNonceTTL (SetNonceTTL), each nonce-count once.
func NewAuthenticator(ids TokenVerifier, secret []byte) *Authenticator {
	return &Authenticator{ids: ids, secret: secret, nonces: sipdigest.NewNonces(secret, 0)}
}

// SetNonceTTL sets how long a digest nonce is accepted (≤ 0: the default). Call it before the
// Authenticator is used: nonces issued earlier become stale.
func (a *Authenticator) SetNonceTTL(ttl time.Duration) {
	a.nonces = sipdigest.NewNonces(a.secret, ttl)
}

// ErrChallenge means the request carried no credentials: answer with Challenge.
var ErrChallenge = errors.New("authentication required")

// Authenticate returns the caller's identity. Errors: ErrChallenge (no credentials: send a
// 401 with Challenge), problem.KindUnauthorized (bad, expired, revoked token or digest: 401 with
// a fresh challenge), problem.KindForbidden (token without the voip scope: 403).
func (a *Authenticator) Authenticate(ctx context.Context, req *sip.Request) (identity.Claims, error) {
	c, _, err := a.authenticate(ctx, req)
	return c, err
}

// proof is what a request authenticated with, kept with the bindings it created so that they
// can be checked again later on any node (Live): the Bearer token, or the HA1 of the token
// that answered the digest.
type proof struct {
	token string
	alg   string
	ha1   string
}

func (a *Authenticator) authenticate(ctx context.Context, req *sip.Request) (identity.Claims, proof, error) {
	h := req.GetHeader("Authorization")
	if h == nil {
		return identity.Claims{}, proof{}, ErrChallenge
	}
	v := strings.TrimSpace(h.Value())
	scheme, rest, _ := strings.Cut(v, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		tok := strings.TrimSpace(rest)
		c, err := a.ids.Verify(ctx, tok)
		if err != nil {
			return identity.Claims{}, proof{}, err
		}
		if !c.HasScope(identity.ScopeVoIP) {
			return identity.Claims{}, proof{}, problem.Forbidden("scope", "the token lacks the voip scope")
		}
		return c, proof{token: tok}, nil
	case "digest":
		return a.digest(ctx, req, v)
	}
	return identity.Claims{}, proof{}, problem.Unauthorized("unsupported authorization scheme %q", scheme)
}

// live reports whether the credentials p still authenticate identity: the token not revoked,
// expired or its identity deleted (the store says so, whichever node revoked it).
func (a *Authenticator) live(ctx context.Context, identity string, p proof) (bool, error) {
	switch {
	case p.token != "":
		c, err := a.ids.Verify(ctx, p.token)
		if problem.KindOf(err) == problem.KindUnauthorized {
			return false, nil
		}
		return err == nil && c.Identity == identity, err
	case p.ha1 != "":
		ha1s, err := a.ids.DigestHA1s(ctx, identity, p.alg)
		if err != nil {
			return false, err
		}
		for _, h := range ha1s {
			if subtle.ConstantTimeCompare([]byte(h), []byte(p.ha1)) == 1 {
				return true, nil
			}
		}
		return false, nil
	}
	return true, nil // bindings made without proof (tests, tools) are not re-checked
}

func (a *Authenticator) digest(ctx context.Context, req *sip.Request, header string) (identity.Claims, proof, error) {
	cr, err := digest.ParseCredentials(header)
	if err != nil {
		return identity.Claims{}, proof{}, problem.Unauthorized("malformed digest credentials")
	}
	if cr.Realm != identity.DigestRealm {
		return identity.Claims{}, proof{}, problem.Unauthorized("digest realm must be %q", identity.DigestRealm)
	}
	check := a.nonces.Check(cr.Nonce)
	if check == sipdigest.NonceForeign {
		return identity.Claims{}, proof{}, problem.Unauthorized("stale nonce (not issued by this node)")
	}
	// RFC 3261 §22.4, RFC 7616 §3.4.6: the credentials are for this Request-URI only.
	if !sipdigest.SameURI(cr.URI, req.Recipient) {
		return identity.Claims{}, proof{}, problem.Forbidden("uri", "the digest-uri is not the Request-URI")
	}
	if cr.QOP != "" && (cr.QOP != "auth" || cr.Nc <= 0 || cr.Cnonce == "") {
		return identity.Claims{}, proof{}, problem.Unauthorized("digest qop must be auth, with nc and cnonce")
	}
	alg := cr.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	var newHash func() hash.Hash
	switch strings.ToUpper(alg) {
	case "MD5":
		newHash = md5.New
	case "SHA-256":
		newHash = sha256.New
	default:
		return identity.Claims{}, proof{}, problem.Unauthorized("unsupported digest algorithm %q", alg)
	}
	ha1s, err := a.ids.DigestHA1s(ctx, cr.Username, alg)
	if err != nil {
		return identity.Claims{}, proof{}, err
	}
	// RFC 7616 §3.4.1: response = KD(HA1, nonce:nc:cnonce:qop:HA2), or RFC 2069 form without qop.
	ha2 := hexOf(newHash, req.Method.String()+":"+cr.URI)
	for _, ha1 := range ha1s {
		var want string
		if cr.QOP != "" {
			want = hexOf(newHash, ha1+":"+cr.Nonce+":"+fmt.Sprintf("%08x", cr.Nc)+":"+cr.Cnonce+":"+cr.QOP+":"+ha2)
		} else {
			want = hexOf(newHash, ha1+":"+cr.Nonce+":"+ha2)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cr.Response))) != 1 {
			continue
		}
		if check != sipdigest.NonceOK {
			return identity.Claims{}, proof{}, problem.Unauthorized("stale nonce (expired)")
		}
		// RFC 7616 §3.4.5: a (nonce, nc) seen before is a replay; without qop a nonce is good once.
		nc := uint64(0)
		if cr.QOP != "" {
			nc = uint64(cr.Nc)
		}
		if !a.nonces.Use(cr.Nonce, nc) {
			return identity.Claims{}, proof{}, problem.Unauthorized("stale nonce (nonce-count replayed)")
		}
		return identity.Claims{Identity: cr.Username, Scopes: []identity.Scope{identity.ScopeVoIP}}, proof{alg: alg, ha1: ha1}, nil
	}
	return identity.Claims{}, proof{}, problem.Unauthorized("digest response does not match a live token")
}

func hexOf(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// Challenge builds the 401 for req: a Bearer challenge (RFC 8898 §2.3) and Digest challenges
// for SHA-256 and MD5 (RFC 8760 §2.4: preferred algorithm first). errText, when set, goes into
// the Bearer error description.
func (a *Authenticator) Challenge(req *sip.Request, stale bool) *sip.Response {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Bearer realm="`+identity.DigestRealm+`"`))
	n := a.nonces.New()
	st := ""
	if stale {
		st = ", stale=true"
	}
	for _, alg := range []string{"SHA-256", "MD5"} {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"%s`,
			identity.DigestRealm, n, alg, st)))
	}
	return res
}

// Reject answers a failed Authenticate: 403 for a scope problem, else a fresh 401 challenge.
func (a *Authenticator) Reject(req *sip.Request, err error) *sip.Response {
	if problem.KindOf(err) == problem.KindForbidden {
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	}
	if problem.KindOf(err) != problem.KindUnauthorized && !errors.Is(err, ErrChallenge) {
		return sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
	}
	return a.Challenge(req, err != nil && strings.Contains(err.Error(), "stale"))
}
