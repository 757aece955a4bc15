// Package registrar authenticates WebRTC users' SIP requests with their ACS user access tokens
// and keeps the location service their REGISTERs fill (RFC 3261 §10). A token travels either as
// `Authorization: Bearer` (RFC 8898 §2.2) or as the digest password with the identity as
// username (RFC 7616, for clients without Bearer support).
package registrar

import (
	"context"
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // RFC 2617/7616 MD5 digest
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
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
)

// TokenVerifier is what the registrar needs of the identity service.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (identity.Claims, error)
	DigestHA1s(ctx context.Context, identity, algorithm string) ([]string, error)
}

// Authenticator checks SIP requests from WebRTC users.
type Authenticator struct {
	ids      TokenVerifier
	secret   []byte
	nonceTTL time.Duration
	now      func() time.Time
}

// NewAuthenticator returns an Authenticator; secret signs the stateless digest nonces (any
// node with the same secret accepts them).
func NewAuthenticator(ids TokenVerifier, secret []byte) *Authenticator {
	return &Authenticator{ids: ids, secret: secret, nonceTTL: 5 * time.Minute, now: time.Now}
}

// ErrChallenge means the request carried no credentials: answer with Challenge.
var ErrChallenge = errors.New("authentication required")

// Authenticate returns the caller's identity. Errors: ErrChallenge (no credentials: send a
// 401 with Challenge), problem.KindUnauthorized (bad, expired, revoked token or digest: 401 with
// a fresh challenge), problem.KindForbidden (token without the voip scope: 403).
func (a *Authenticator) Authenticate(ctx context.Context, req *sip.Request) (identity.Claims, error) {
	h := req.GetHeader("Authorization")
	if h == nil {
		return identity.Claims{}, ErrChallenge
	}
	v := strings.TrimSpace(h.Value())
	scheme, rest, _ := strings.Cut(v, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		c, err := a.ids.Verify(ctx, strings.TrimSpace(rest))
		if err != nil {
			return identity.Claims{}, err
		}
		if !c.HasScope(identity.ScopeVoIP) {
			return identity.Claims{}, problem.Forbidden("scope", "the token lacks the voip scope")
		}
		return c, nil
	case "digest":
		return a.digest(ctx, req, v)
	}
	return identity.Claims{}, problem.Unauthorized("unsupported authorization scheme %q", scheme)
}

func (a *Authenticator) digest(ctx context.Context, req *sip.Request, header string) (identity.Claims, error) {
	cr, err := digest.ParseCredentials(header)
	if err != nil {
		return identity.Claims{}, problem.Unauthorized("malformed digest credentials")
	}
	if cr.Realm != identity.DigestRealm {
		return identity.Claims{}, problem.Unauthorized("digest realm must be %q", identity.DigestRealm)
	}
	if !a.validNonce(cr.Nonce) {
		return identity.Claims{}, problem.Unauthorized("stale nonce")
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
		return identity.Claims{}, problem.Unauthorized("unsupported digest algorithm %q", alg)
	}
	ha1s, err := a.ids.DigestHA1s(ctx, cr.Username, alg)
	if err != nil {
		return identity.Claims{}, err
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
		if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(cr.Response))) == 1 {
			return identity.Claims{Identity: cr.Username, Scopes: []identity.Scope{identity.ScopeVoIP}}, nil
		}
	}
	return identity.Claims{}, problem.Unauthorized("digest response does not match a live token")
}

func hexOf(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// nonce is base64url(unix-seconds(8) ‖ HMAC-SHA256(secret, those 8 bytes)[:16]): stateless, so
// any node verifies it and a replay outside nonceTTL is stale.
func (a *Authenticator) nonce() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().Unix()))
	m := hmac.New(sha256.New, a.secret)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil)[:16])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) validNonce(n string) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return false
	}
	m := hmac.New(sha256.New, a.secret)
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false
	}
	age := a.now().Sub(time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0))
	return age >= -time.Minute && age <= a.nonceTTL
}

// Challenge builds the 401 for req: a Bearer challenge (RFC 8898 §2.3) and Digest challenges
// for SHA-256 and MD5 (RFC 8760 §2.4: preferred algorithm first). errText, when set, goes into
// the Bearer error description.
func (a *Authenticator) Challenge(req *sip.Request, stale bool) *sip.Response {
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Bearer realm="`+identity.DigestRealm+`"`))
	n := a.nonce()
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
