// Package digest is the server side of SIP digest authentication (RFC 3261 §22.4 with the
// RFC 7616 algorithms MD5 and SHA-256, qop=auth): it issues challenges and verifies the
// Authorization / Proxy-Authorization credentials of customers' SIP endpoints and trunks.
//
// Credentials are good for one request: the digest-uri must name the Request-URI (RFC 7616
// §3.4.6) and each (nonce, nonce-count) is accepted once (RFC 7616 §3.4.5), from a short-lived
// nonce bound to this node (see Nonces).
package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"
)

// Errors Verify returns. ErrStale means the credentials were right for a nonce that is no longer
// good (expired, another node's, or already used with that nonce-count): challenge again with
// stale=true (RFC 7616 §3.3) so the client retries without asking its user. ErrURI means the
// digest-uri is not the Request-URI: refuse (403), a client that did not capture the
// credentials never sends that.
var (
	ErrMissing   = errors.New("digest: no credentials")
	ErrMalformed = errors.New("digest: malformed credentials")
	ErrStale     = errors.New("digest: stale nonce")
	ErrMismatch  = errors.New("digest: wrong credentials")
	ErrURI       = errors.New("digest: digest-uri is not the Request-URI")
)

// Server issues and checks challenges for one realm.
type Server struct {
	// Realm is the protection space (RFC 7616 §3.3).
	Realm  string
	nonces *Nonces
}

// New returns a Server for realm whose nonces live ttl (DefaultNonceTTL when ≤ 0), signed with a
// fresh random secret.
func New(realm string, ttl time.Duration) *Server {
	return &Server{Realm: realm, nonces: NewNonces(nil, ttl)}
}

// Challenge returns a WWW-Authenticate / Proxy-Authenticate value (RFC 7616 §3.3) offering
// algorithm (MD5 when empty, or SHA-256) with qop=auth.
func (s *Server) Challenge(algorithm string, stale bool) string {
	if algorithm == "" {
		algorithm = "MD5"
	}
	c := icholy.Challenge{Realm: s.Realm, Nonce: s.nonces.New(), Algorithm: algorithm, QOP: []string{"auth"}, Stale: stale}
	return c.String()
}

// Username returns the username in a credentials header value, "" if it has none.
func Username(header string) string {
	c, err := icholy.ParseCredentials(header)
	if err != nil {
		return ""
	}
	return c.Username
}

// HA1 is the RFC 7616 §3.4.2 A1 hash H(username:realm:password) for algorithm MD5 or SHA-256,
// what a store keeps instead of the password.
func HA1(algorithm, username, realm, password string) string {
	var h hash.Hash = md5.New()
	if strings.EqualFold(algorithm, "SHA-256") {
		h = sha256.New()
	}
	h.Write([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}

// Verify checks a credentials header value (without or with the "Digest " prefix) for a request
// with method and Request-URI reqURI, against password.
func (s *Server) Verify(header, method string, reqURI sip.Uri, password string) error {
	return s.verify(header, method, reqURI, password, nil)
}

// VerifyHA1 is Verify against stored HA1s: ha1 returns the HA1 for "MD5" or "SHA-256" ("" if
// none is kept for that algorithm, which then fails).
func (s *Server) VerifyHA1(header, method string, reqURI sip.Uri, ha1 func(algorithm string) string) error {
	return s.verify(header, method, reqURI, "", ha1)
}

func (s *Server) verify(header, method string, reqURI sip.Uri, password string, ha1 func(string) string) error {
	if strings.TrimSpace(header) == "" {
		return ErrMissing
	}
	c, err := icholy.ParseCredentials(header)
	if err != nil || c.Nonce == "" || c.Response == "" || c.Username == "" {
		return ErrMalformed
	}
	if c.Realm != s.Realm {
		return ErrMismatch
	}
	check := s.nonces.Check(c.Nonce)
	if check == NonceForeign {
		return ErrStale // another node's, or from before a restart: let the client retry transparently
	}
	alg := c.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	if !strings.EqualFold(alg, "MD5") && !strings.EqualFold(alg, "SHA-256") {
		return ErrMalformed
	}
	// RFC 3261 §22.4, RFC 7616 §3.4.6: the credentials are for the Request-URI only.
	if !SameURI(c.URI, reqURI) {
		return ErrURI
	}
	chal := &icholy.Challenge{Realm: s.Realm, Nonce: c.Nonce, Algorithm: alg}
	opts := icholy.Options{Method: method, URI: c.URI, Username: c.Username, Password: password}
	if ha1 != nil {
		if opts.A1 = ha1(strings.ToUpper(alg)); opts.A1 == "" {
			return ErrMismatch
		}
	}
	if c.QOP != "" {
		if c.QOP != "auth" || c.Nc <= 0 || c.Cnonce == "" {
			return ErrMalformed
		}
		chal.QOP = []string{"auth"}
		opts.Cnonce, opts.Count = c.Cnonce, c.Nc
	}
	want, err := icholy.Digest(chal, opts)
	if err != nil {
		return ErrMalformed
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(c.Response))) != 1 {
		return ErrMismatch
	}
	if check != NonceOK {
		return ErrStale
	}
	// RFC 7616 §3.4.5: the same nc seen twice for a nonce is a replay (without qop, nc is 0:
	// the nonce is good once).
	nc := uint64(0)
	if c.QOP != "" {
		nc = uint64(c.Nc)
	}
	if !s.nonces.Use(c.Nonce, nc) {
		return ErrStale
	}
	return nil
}
