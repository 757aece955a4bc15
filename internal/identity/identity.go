// Package identity manages ACS communication identities and their user access tokens: JWTs
// signed with the deployment's ECDSA key, scoped (voip, chat, …), 60–1440 minutes long, and
// revocable. Verify is what the SIP-over-WebSocket stack uses to authenticate WebRTC users.
package identity

import (
	"context"
	"crypto/md5" //nolint:gosec // RFC 2617 digest needs MD5
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/problem"
)

// Scope is a token scope.
type Scope string

// The scopes of ACS 2023-10-01.
const (
	ScopeChat            Scope = "chat"
	ScopeVoIP            Scope = "voip"
	ScopeChatJoin        Scope = "chat.join"
	ScopeChatJoinLimited Scope = "chat.join.limited"
	ScopeVoIPJoin        Scope = "voip.join"
)

// Scopes lists every valid scope.
var Scopes = []Scope{ScopeChat, ScopeVoIP, ScopeChatJoin, ScopeChatJoinLimited, ScopeVoIPJoin}

// Token lifetimes (ACS: 60–1440 minutes, default 1440).
const (
	MinExpiry     = 60 * time.Minute
	MaxExpiry     = 1440 * time.Minute
	DefaultExpiry = MaxExpiry
)

// Identity is a communication user.
type Identity struct {
	// ID is the ACS raw id, "8:acs:<resourceId>_<uuid>".
	ID        string
	CreatedAt time.Time
	// TokenGeneration moves on at each revocation; tokens of earlier generations are invalid.
	TokenGeneration int64
}

// Store persists identities.
type Store interface {
	IdentityCreate(ctx context.Context, id Identity) error
	IdentityGet(ctx context.Context, id string) (Identity, error)
	IdentityDelete(ctx context.Context, id string) error
	// IdentityRevokeTokens bumps the token generation and returns the new one.
	IdentityRevokeTokens(ctx context.Context, id string) (int64, error)
	// IdentityDigestAdd records the digest HA1s of newly issued voip tokens, all or none (and
	// may drop their identities' expired ones); problem.ErrNotFound when an identity is gone.
	IdentityDigestAdd(ctx context.Context, cs ...DigestCredential) error
	// IdentityDigests returns the identity's unexpired digest credentials of its current token
	// generation.
	IdentityDigests(ctx context.Context, identity string, now time.Time) ([]DigestCredential, error)
}

// DigestCredential is what a SIP digest check needs of one token: HA1 = H(identity:realm:token)
// for MD5 and SHA-256 (RFC 7616 §3.4.2, RFC 8760). The token itself is not kept.
type DigestCredential struct {
	Identity   string
	TokenID    string
	Generation int64
	HA1MD5     string
	HA1SHA256  string
	ExpiresAt  time.Time
}

// DigestRealm is the realm of digest credentials derived from tokens.
const DigestRealm = "telgw"

// Token is an issued user access token.
type Token struct {
	Token     string
	ExpiresOn time.Time
}

// Claims is what Verify learns from a valid token.
type Claims struct {
	Identity  string
	Scopes    []Scope
	ExpiresAt time.Time
}

// HasScope reports whether the token carries s.
func (c Claims) HasScope(s Scope) bool { return slices.Contains(c.Scopes, s) }

// Service issues and verifies tokens.
type Service struct {
	store Store
	keys  *keys.Ring
	now   func() time.Time

	digests digestBatch

	hookMu   sync.Mutex
	onRevoke []func(id string)
}

// OnRevoke registers f to run after an identity's tokens are revoked or the identity is
// deleted, e.g. to drop its devices' SIP registrations at once. Other nodes learn of it from
// the store when they next check the tokens.
func (s *Service) OnRevoke(f func(id string)) {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.onRevoke = append(s.onRevoke, f)
}

func (s *Service) revoked(id string) {
	s.hookMu.Lock()
	hooks := append([]func(string){}, s.onRevoke...)
	s.hookMu.Unlock()
	for _, f := range hooks {
		f(id)
	}
}

// digestBatch group-commits digest credentials: concurrent IssueToken calls share one store
// transaction. The first caller to find no write in progress writes everything pending and
// repeats while more arrived; the others wait for their batch's result.
type digestBatch struct {
	mu      sync.Mutex
	pending []pendingDigest
	busy    bool
}

type pendingDigest struct {
	c    DigestCredential
	done chan error
}

// addDigest records c, batched with concurrent calls.
func (s *Service) addDigest(ctx context.Context, c DigestCredential) error {
	p := pendingDigest{c: c, done: make(chan error, 1)}
	b := &s.digests
	b.mu.Lock()
	b.pending = append(b.pending, p)
	if b.busy {
		b.mu.Unlock()
		select {
		case err := <-p.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.busy = true
	for {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		s.writeDigests(context.WithoutCancel(ctx), batch)
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.busy = false
			b.mu.Unlock()
			break
		}
	}
	return <-p.done
}

// writeDigests stores a batch; when it fails as a whole (an identity deleted meanwhile), each
// credential is retried alone so every caller gets its own result.
func (s *Service) writeDigests(ctx context.Context, batch []pendingDigest) {
	cs := make([]DigestCredential, len(batch))
	for i, p := range batch {
		cs[i] = p.c
	}
	err := s.store.IdentityDigestAdd(ctx, cs...)
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	for _, p := range batch {
		p.done <- s.store.IdentityDigestAdd(ctx, p.c)
	}
}

// New returns a Service.
func New(s Store, k *keys.Ring) *Service {
	return &Service{store: s, keys: k, now: time.Now}
}

// ParseScopes validates scope names; target names the request field.
func ParseScopes(target string, in []string) ([]Scope, error) {
	out := make([]Scope, 0, len(in))
	for i, s := range in {
		if !slices.Contains(Scopes, Scope(s)) {
			return nil, problem.Invalid(fmt.Sprintf("%s[%d]", target, i),
				"%q is not a valid scope; valid scopes are chat, voip, chat.join, chat.join.limited, voip.join", s).
				WithCode("InvalidScope")
		}
		if !slices.Contains(out, Scope(s)) {
			out = append(out, Scope(s))
		}
	}
	return out, nil
}

// ParseExpiry validates expiresInMinutes; nil means the default.
func ParseExpiry(minutes *int) (time.Duration, error) {
	if minutes == nil {
		return DefaultExpiry, nil
	}
	d := time.Duration(*minutes) * time.Minute
	if d < MinExpiry || d > MaxExpiry {
		return 0, problem.Invalid("expiresInMinutes",
			"%d is outside the allowed range of 60 to 1440 minutes", *minutes).WithCode("ValidationError")
	}
	return d, nil
}

// Create makes a new identity and, when scopes is non-empty, a token for it.
func (s *Service) Create(ctx context.Context, scopes []Scope, expiry time.Duration) (Identity, *Token, error) {
	k := s.keys.Current()
	id := Identity{ID: "8:acs:" + k.ResourceID + "_" + uuid.NewString(), CreatedAt: s.now().UTC()}
	if err := s.store.IdentityCreate(ctx, id); err != nil {
		return Identity{}, nil, fmt.Errorf("create identity: %w", err)
	}
	if len(scopes) == 0 {
		return id, nil, nil
	}
	tok, err := s.sign(ctx, k, id, scopes, expiry)
	if err != nil {
		return Identity{}, nil, err
	}
	return id, &tok, nil
}

// Delete removes an identity; its tokens stop verifying.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.store.IdentityDelete(ctx, id); err != nil {
		return fmt.Errorf("delete identity: %w", identityErr(err, id))
	}
	s.revoked(id)
	return nil
}

// IssueToken signs a new token for an existing identity.
func (s *Service) IssueToken(ctx context.Context, id string, scopes []Scope, expiry time.Duration) (Token, error) {
	ident, err := s.store.IdentityGet(ctx, id)
	if err != nil {
		return Token{}, identityErr(err, id)
	}
	return s.sign(ctx, s.keys.Current(), ident, scopes, expiry)
}

// RevokeTokens invalidates every token issued so far for the identity.
func (s *Service) RevokeTokens(ctx context.Context, id string) error {
	if _, err := s.store.IdentityRevokeTokens(ctx, id); err != nil {
		return identityErr(err, id)
	}
	s.revoked(id)
	return nil
}

func identityErr(err error, id string) error {
	if errors.Is(err, problem.ErrNotFound) {
		return problem.NotFound("id", "identity %q does not exist", id).WithCode("IdentityNotFound")
	}
	return err
}

// tokenClaims mirrors what ACS puts in its tokens (and what the SDKs read: exp), plus the
// revocation generation.
type tokenClaims struct {
	SkypeID          string `json:"skypeid"`
	Scp              int    `json:"scp"`
	Csi              string `json:"csi"`
	AcsScope         string `json:"acsScope"`
	ResourceID       string `json:"resourceId"`
	ResourceLocation string `json:"resourceLocation"`
	Generation       int64  `json:"gen"`
	jwt.RegisteredClaims
}

func (s *Service) sign(ctx context.Context, k *keys.Keys, id Identity, scopes []Scope, expiry time.Duration) (Token, error) {
	now := s.now().UTC().Truncate(time.Second)
	exp := now.Add(expiry)
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	c := tokenClaims{
		SkypeID:          strings.TrimPrefix(id.ID, "8:"),
		Scp:              1792,
		Csi:              strconv.FormatInt(now.Unix(), 10),
		AcsScope:         strings.Join(names, ","),
		ResourceID:       k.ResourceID,
		ResourceLocation: "telgw",
		Generation:       id.TokenGeneration,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   id.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = k.KeyID
	signed, err := t.SignedString(k.SigningKey)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	if slices.Contains(scopes, ScopeVoIP) {
		// SIP clients without Bearer support use the token as digest password: keep its HA1s.
		err := s.addDigest(ctx, DigestCredential{
			Identity: id.ID, TokenID: c.ID, Generation: id.TokenGeneration, ExpiresAt: exp,
			HA1MD5:    hexHash(md5.New(), id.ID+":"+DigestRealm+":"+signed),
			HA1SHA256: hexHash(sha256.New(), id.ID+":"+DigestRealm+":"+signed),
		})
		if err != nil {
			return Token{}, fmt.Errorf("record token digest: %w", err)
		}
	}
	return Token{Token: signed, ExpiresOn: exp}, nil
}

func hexHash(h hash.Hash, s string) string {
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// DigestHA1s returns the HA1 values (hex, for algorithm "MD5" or "SHA-256") of the identity's
// live voip tokens, for verifying a SIP digest response whose password is a token. An unknown
// or deleted identity has none.
func (s *Service) DigestHA1s(ctx context.Context, identity, algorithm string) ([]string, error) {
	creds, err := s.store.IdentityDigests(ctx, identity, s.now())
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(creds))
	for _, c := range creds {
		if strings.EqualFold(algorithm, "SHA-256") {
			out = append(out, c.HA1SHA256)
		} else {
			out = append(out, c.HA1MD5)
		}
	}
	return out, nil
}

// Verify checks a user access token: signature, expiry, that the identity still exists and that
// the token was not revoked. Failures are problem.KindUnauthorized.
func (s *Service) Verify(ctx context.Context, token string) (Claims, error) {
	k := s.keys.Current()
	var c tokenClaims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != k.KeyID {
			return nil, errors.New("unknown signing key")
		}
		return &k.SigningKey.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithTimeFunc(s.now), jwt.WithExpirationRequired())
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, problem.Unauthorized("token expired")
		}
		return Claims{}, problem.Unauthorized("invalid token: %v", err)
	}
	ident, err := s.store.IdentityGet(ctx, c.Subject)
	if errors.Is(err, problem.ErrNotFound) {
		return Claims{}, problem.Unauthorized("identity deleted")
	} else if err != nil {
		return Claims{}, err
	}
	if c.Generation != ident.TokenGeneration {
		return Claims{}, problem.Unauthorized("token revoked")
	}
	var scopes []Scope
	for _, sc := range strings.Split(c.AcsScope, ",") {
		if sc != "" {
			scopes = append(scopes, Scope(sc))
		}
	}
	return Claims{Identity: c.Subject, Scopes: scopes, ExpiresAt: c.ExpiresAt.Time}, nil
}

// Get returns an identity; problem.ErrNotFound (as IdentityNotFound) when it does not exist.
func (s *Service) Get(ctx context.Context, id string) (Identity, error) {
	ident, err := s.store.IdentityGet(ctx, id)
	if err != nil {
		return Identity{}, identityErr(err, id)
	}
	return ident, nil
}
