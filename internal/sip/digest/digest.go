// Package digest is the server side of SIP digest authentication (RFC 3261 §22.4 with the
// RFC 7616 algorithms MD5 and SHA-256, qop=auth): it issues challenges and verifies the
// Authorization / Proxy-Authorization credentials of customers' SIP endpoints and trunks.
//
// Nonces are stateless: a timestamp and an HMAC of it under a per-process secret, so any
// number of outstanding challenges costs no memory and replays are bounded by MaxAge.
package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"time"

	icholy "github.com/icholy/digest"
)

// Errors Verify returns. ErrStale means the credentials were right for an expired nonce:
// challenge again with stale=true (RFC 7616 §3.3) so the client retries without asking its user.
var (
	ErrMissing   = errors.New("digest: no credentials")
	ErrMalformed = errors.New("digest: malformed credentials")
	ErrStale     = errors.New("digest: stale nonce")
	ErrMismatch  = errors.New("digest: wrong credentials")
)

// Server issues and checks challenges for one realm.
type Server struct {
	// Realm is the protection space (RFC 7616 §3.3).
	Realm string
	// MaxAge bounds a nonce's life. Default 5 minutes.
	MaxAge time.Duration
	secret [32]byte
	now    func() time.Time
}

// New returns a Server for realm with a fresh random secret.
func New(realm string) *Server {
	s := &Server{Realm: realm, MaxAge: 5 * time.Minute, now: time.Now}
	_, _ = rand.Read(s.secret[:])
	return s
}

func (s *Server) nonceAt(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// valid reports whether nonce is one of ours (ok) and whether it is still fresh.
func (s *Server) valid(nonce string) (ok, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	age := s.now().Sub(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))))
	return true, age >= 0 && age <= s.MaxAge
}

// Challenge returns a WWW-Authenticate / Proxy-Authenticate value (RFC 7616 §3.3) offering
// algorithm (MD5 when empty, or SHA-256) with qop=auth.
func (s *Server) Challenge(algorithm string, stale bool) string {
	if algorithm == "" {
		algorithm = "MD5"
	}
	c := icholy.Challenge{Realm: s.Realm, Nonce: s.nonceAt(s.now()), Algorithm: algorithm, QOP: []string{"auth"}, Stale: stale}
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
// with method, against password. The digest-uri is taken from the credentials (RFC 3261 §22.4
// lets proxies rewrite the Request-URI).
func (s *Server) Verify(header, method, password string) error {
	return s.verify(header, method, password, nil)
}

// VerifyHA1 is Verify against stored HA1s: ha1 returns the HA1 for "MD5" or "SHA-256" ("" if
// none is kept for that algorithm, which then fails).
func (s *Server) VerifyHA1(header, method string, ha1 func(algorithm string) string) error {
	return s.verify(header, method, "", ha1)
}

func (s *Server) verify(header, method, password string, ha1 func(string) string) error {
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
	ours, fresh := s.valid(c.Nonce)
	if !ours {
		return ErrStale // a nonce from before a restart: let the client retry transparently
	}
	alg := c.Algorithm
	if alg == "" {
		alg = "MD5"
	}
	if !strings.EqualFold(alg, "MD5") && !strings.EqualFold(alg, "SHA-256") {
		return ErrMalformed
	}
	chal := &icholy.Challenge{Realm: s.Realm, Nonce: c.Nonce, Algorithm: alg}
	opts := icholy.Options{Method: method, URI: c.URI, Username: c.Username, Password: password}
	if ha1 != nil {
		if opts.A1 = ha1(strings.ToUpper(alg)); opts.A1 == "" {
			return ErrMismatch
		}
	}
	if c.QOP != "" {
		if c.QOP != "auth" {
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
	if !fresh {
		return ErrStale
	}
	return nil
}
