package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// Token kinds in the store.
const (
	// KindSession is a signed-in browser session (the cookie's value, hashed).
	KindSession = "session"
	// KindLink is a single-use sign-in link from `telgw console link`.
	KindLink = "link"
)

// DefaultLinkTTL is how long a sign-in link stays usable.
const DefaultLinkTTL = 10 * time.Minute

// Token is a session or sign-in link as the store keeps it: never the secret itself, only its
// SHA-256 (Hash), so a copy of the database signs no one in.
type Token struct {
	// Hash is HashSecret of the secret the browser holds.
	Hash string
	// Kind is KindSession or KindLink.
	Kind string
	// CSRF is the session's anti-forgery token (sessions only), echoed in every form.
	CSRF string
	// KeyFP is KeyFingerprint of the access key the session was opened with (or the primary
	// key a link was issued under); a session whose key is no longer current is ended.
	KeyFP     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Store keeps console tokens; the SQLite and PostgreSQL stores implement it (shared by every
// node, so a session or link opened on one node works on all and survives restarts).
type Store interface {
	// ConsoleTokenPut inserts a token (problem.ErrConflict if the hash exists).
	ConsoleTokenPut(ctx context.Context, t Token) error
	// ConsoleTokenGet reads a live token of the kind; problem.ErrNotFound when absent or
	// expired at now.
	ConsoleTokenGet(ctx context.Context, hash, kind string, now time.Time) (Token, error)
	// ConsoleTokenTake deletes and returns a live token of the kind in one statement: of
	// concurrent takers exactly one gets it (single use); problem.ErrNotFound otherwise.
	ConsoleTokenTake(ctx context.Context, hash, kind string, now time.Time) (Token, error)
	// ConsoleTokenDelete removes a token (no error when absent).
	ConsoleTokenDelete(ctx context.Context, hash string) error
	// ConsoleTokenSweep deletes tokens expired at now and reports how many.
	ConsoleTokenSweep(ctx context.Context, now time.Time) (int, error)
}

// NewSecret returns 32 random bytes, base64url without padding.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is the store key of a secret: hex SHA-256.
func HashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// KeyFingerprint names an access key without revealing it: the first 16 bytes of
// SHA-256("telgw console key" || key), hex.
func KeyFingerprint(key []byte) string {
	h := sha256.New()
	h.Write([]byte("telgw console key\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// IssueLink stores a single-use sign-in link valid for ttl (DefaultLinkTTL when 0) under the
// key with fingerprint keyFP and returns its secret; the link is BASE/console/link#SECRET (a
// URL fragment, so the secret reaches no access log).
func IssueLink(ctx context.Context, s Store, keyFP string, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	secret := NewSecret()
	now = now.UTC().Truncate(time.Millisecond)
	err := s.ConsoleTokenPut(ctx, Token{Hash: HashSecret(secret), Kind: KindLink, KeyFP: keyFP, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		return "", fmt.Errorf("issue console link: %w", err)
	}
	return secret, nil
}
