package calls

import (
	"context"
	"crypto/md5" //nolint:gosec // RFC 7616 §3.4.2 digest HA1 for MD5 clients
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"github.com/telgw/telgw/internal/e164"
	"github.com/telgw/telgw/internal/problem"
)

// Credential lets a customer's SIP endpoint place calls: a digest username with its secret
// (RFC 7616 §3.4) and the numbers it may present as caller ID.
type Credential struct {
	// Username is the digest username, unique across telgw.
	Username string
	// Password is the digest secret; stores keep only the HA1s and leave it empty.
	Password string
	// HA1MD5 and HA1SHA256 are H(username:realm:password) for the service's realm (HA1),
	// used when Password is empty.
	HA1MD5, HA1SHA256 string
	// Numbers are the E.164 numbers the endpoint may call from (its purchased numbers).
	Numbers []string
	// CreatedAt is when the credential was made.
	CreatedAt time.Time
}

// HA1 is H(username ":" realm ":" password) for the digest algorithm "MD5" or "SHA-256"
// (RFC 7616 §3.4.2), lowercase hex.
func HA1(algorithm, username, realm, password string) string {
	var h hash.Hash = md5.New() //nolint:gosec // see import
	if strings.EqualFold(algorithm, "SHA-256") {
		h = sha256.New()
	}
	h.Write([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}

// NewCredential returns a Credential for realm keeping only the HA1s of password.
func NewCredential(realm, username, password string, numbers []string) Credential {
	return Credential{Username: username, HA1MD5: HA1("MD5", username, realm, password),
		HA1SHA256: HA1("SHA-256", username, realm, password), Numbers: numbers, CreatedAt: time.Now().UTC()}
}

// Credentials looks endpoint credentials up by digest username; unknown users return an error
// matching ErrUnknownCredential.
type Credentials interface {
	SIPCredential(ctx context.Context, username string) (Credential, error)
}

// ErrUnknownCredential is returned by Credentials for an unknown username.
var ErrUnknownCredential = errors.New("calls: unknown credential")

// CredentialStore persists endpoint credentials.
type CredentialStore interface {
	Credentials
	// SIPCredentialPut creates or replaces a credential (by Username).
	SIPCredentialPut(ctx context.Context, c Credential) error
	// SIPCredentialDelete removes a credential; problem.ErrNotFound when there is none.
	SIPCredentialDelete(ctx context.Context, username string) error
	// SIPCredentialList lists credentials by username.
	SIPCredentialList(ctx context.Context) ([]Credential, error)
}

// CredentialService manages customers' SIP endpoint credentials. The REST edge
// (/telgw/sip/credentials) and the CLI (`telgw sip credentials`) both go through it, so a
// credential made either way authenticates against the same realm.
type CredentialService struct {
	// Store persists credentials; nil makes every operation Unsupported.
	Store CredentialStore
	// Router checks that each number is one of telgw's (purchased, with calling).
	Router Router
	// Realm is the digest realm the SIP edge challenges with (sip.realm).
	Realm string
}

// Create validates and stores a credential for username that may call from numbers.
func (s CredentialService) Create(ctx context.Context, username, password string, numbers []string) (Credential, error) {
	if s.Store == nil {
		return Credential{}, problem.Unsupported("no store for SIP credentials")
	}
	if username == "" || strings.ContainsAny(username, " \t\r\n\",:@") || len(username) > 128 {
		return Credential{}, problem.Invalid("username", "%q is not a valid digest username", username)
	}
	if len(password) < 8 {
		return Credential{}, problem.Invalid("password", "must have at least 8 characters")
	}
	if len(numbers) == 0 {
		return Credential{}, problem.Invalid("numbers", "at least one of your numbers is required")
	}
	if s.Realm == "" {
		return Credential{}, errors.New("calls: credential service without a realm")
	}
	norm := make([]string, 0, len(numbers))
	for i, n := range numbers {
		e, err := e164.Normalize(n)
		if err != nil {
			return Credential{}, problem.Invalid(fmt.Sprintf("numbers[%d]", i), "%q is not an E.164 number", n)
		}
		if s.Router == nil {
			return Credential{}, problem.Invalid(fmt.Sprintf("numbers[%d]", i), "%s is not a purchased number", e)
		}
		if _, err := s.Router.CallRoute(ctx, e); err != nil {
			return Credential{}, problem.Invalid(fmt.Sprintf("numbers[%d]", i), "%s is not a purchased number", e)
		}
		norm = append(norm, e)
	}
	c := NewCredential(s.Realm, username, password, norm)
	if err := s.Store.SIPCredentialPut(ctx, c); err != nil {
		return Credential{}, err
	}
	return c, nil
}

// Delete removes a credential (problem.ErrNotFound when absent).
func (s CredentialService) Delete(ctx context.Context, username string) error {
	if s.Store == nil {
		return problem.ErrNotFound
	}
	return s.Store.SIPCredentialDelete(ctx, username)
}

// List lists credentials (without secrets beyond the HA1s).
func (s CredentialService) List(ctx context.Context) ([]Credential, error) {
	if s.Store == nil {
		return nil, nil
	}
	return s.Store.SIPCredentialList(ctx)
}
