// Package keys owns the secrets every node of a deployment shares: the ACS access keys
// (primary and secondary, HMAC-SHA256), the ECDSA key that signs user access tokens, the RSA
// key that signs Call Automation callbacks, plus the resource id embedded in identities. They live in the store so several nodes on one
// PostgreSQL agree on them; TELGW_ACCESS_KEY may pin the primary key.
package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/telgw/telgw/internal/problem"
)

// Setting names in the store.
const (
	settingPrimary     = "access_key.primary"
	settingSecondary   = "access_key.secondary"
	settingSigningKey  = "token_signing_key"
	settingResourceID  = "resource_id"
	settingTURNSecret  = "turn_secret"
	settingCallbackKey = "callback_signing_key"
)

// Store persists named settings. SettingPutIfAbsent must not overwrite: the first node to
// generate a key wins and the others read it back.
type Store interface {
	SettingGet(ctx context.Context, key string) (string, error)
	SettingPut(ctx context.Context, key, value string) error
	SettingPutIfAbsent(ctx context.Context, key, value string) error
}

// Keys is one consistent view of the shared secrets.
type Keys struct {
	// Primary and Secondary are the decoded HMAC access keys.
	Primary, Secondary []byte
	// SigningKey signs user access tokens (ES256).
	SigningKey *ecdsa.PrivateKey
	// KeyID is the JWT kid of SigningKey: base64url of the first 12 bytes of the SHA-256 of
	// its public key in PKIX form.
	KeyID string
	// ResourceID is the ACS resource id of this deployment.
	ResourceID string
	// TURNSecret is the TURN REST shared secret.
	TURNSecret string
	// CallbackKey signs the Authorization JWTs of Call Automation callbacks (RS256, as ACS
	// does); apps verify them with the JWKS telgw serves.
	CallbackKey *rsa.PrivateKey
	// CallbackKeyID is the JWT kid of CallbackKey (same derivation as KeyID).
	CallbackKeyID string
}

// Ring holds the current Keys and reloads them from the store, so a rotation on one node
// reaches the others.
type Ring struct {
	store    Store
	override []byte
	cur      atomic.Pointer[Keys]
	// generated is set when NewRing stored the primary access key it generated.
	generated bool
}

// Which names an access key.
type Which string

// The two access keys.
const (
	PrimaryKey   Which = "primary"
	SecondaryKey Which = "secondary"
)

// NewRing loads (generating what is missing) the keys. overrideB64, when non-empty, is the
// primary access key in base64 and takes precedence over the stored one.
func NewRing(ctx context.Context, s Store, overrideB64, resourceID string) (*Ring, error) {
	r := &Ring{store: s}
	if overrideB64 != "" {
		k, err := base64.StdEncoding.DecodeString(overrideB64)
		if err != nil || len(k) < 16 {
			return nil, problem.Invalid("accessKey", "TELGW_ACCESS_KEY must be base64 of at least 16 bytes")
		}
		r.override = k
	}
	gen := map[string]func() (string, error){
		settingPrimary:     newAccessKey,
		settingSecondary:   newAccessKey,
		settingSigningKey:  newSigningKeyPEM,
		settingResourceID:  func() (string, error) { return uuid.NewString(), nil },
		settingTURNSecret:  newAccessKey,
		settingCallbackKey: newCallbackKeyPEM,
	}
	if resourceID != "" {
		gen[settingResourceID] = func() (string, error) { return resourceID, nil }
	}
	var primary string // generated here, "" when the store had one
	for name, g := range gen {
		if _, err := s.SettingGet(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, problem.ErrNotFound) {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		v, err := g()
		if err != nil {
			return nil, err
		}
		if err := s.SettingPutIfAbsent(ctx, name, v); err != nil {
			return nil, fmt.Errorf("store %s: %w", name, err)
		}
		if name == settingPrimary {
			primary = v
		}
	}
	if err := r.Reload(ctx); err != nil {
		return nil, err
	}
	// Another node starting at the same time may have stored its key first.
	r.generated = primary != "" && r.override == nil && r.Current().AccessKey(PrimaryKey) == primary
	return r, nil
}

// Generated reports whether NewRing generated the primary access key, that is whether this is
// the first start of the deployment (and TELGW_ACCESS_KEY does not pin the key). Only then is
// the connection string worth printing: on later starts it would only leak the key into logs.
func (r *Ring) Generated() bool { return r.generated }

// Current returns the keys in force.
func (r *Ring) Current() *Keys { return r.cur.Load() }

// Reload reads the keys from the store.
func (r *Ring) Reload(ctx context.Context) error {
	var k Keys
	get := func(name string) (string, error) {
		v, err := r.store.SettingGet(ctx, name)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		return v, nil
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{settingPrimary, &k.Primary}, {settingSecondary, &k.Secondary}} {
		v, err := get(f.name)
		if err != nil {
			return err
		}
		if *f.dst, err = base64.StdEncoding.DecodeString(v); err != nil {
			return fmt.Errorf("decode %s: %w", f.name, err)
		}
	}
	if r.override != nil {
		k.Primary = r.override
	}
	pemText, err := get(settingSigningKey)
	if err != nil {
		return err
	}
	if k.SigningKey, err = parseSigningKey(pemText); err != nil {
		return err
	}
	k.KeyID = keyID(&k.SigningKey.PublicKey)
	if k.ResourceID, err = get(settingResourceID); err != nil {
		return err
	}
	if k.TURNSecret, err = get(settingTURNSecret); err != nil {
		return err
	}
	if pemText, err = get(settingCallbackKey); err != nil {
		return err
	}
	if k.CallbackKey, err = parseCallbackKey(pemText); err != nil {
		return err
	}
	k.CallbackKeyID = keyID(&k.CallbackKey.PublicKey)
	r.cur.Store(&k)
	return nil
}

// DefaultRefresh is how often a node re-reads the shared keys by default (docs/CONFIG.md
// keyRefresh).
const DefaultRefresh = 30 * time.Second

// Refresh reloads the keys every interval until ctx ends, so rotations made on another node
// take effect here.
func (r *Ring) Refresh(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = r.Reload(ctx)
		}
	}
}

// Rotate replaces one access key with a fresh random one and returns it (base64).
func (r *Ring) Rotate(ctx context.Context, which Which) (string, error) {
	name := settingPrimary
	switch which {
	case PrimaryKey:
	case SecondaryKey:
		name = settingSecondary
	default:
		return "", problem.Invalid("key", "%q is not primary or secondary", which)
	}
	v, err := newAccessKey()
	if err != nil {
		return "", err
	}
	if err := r.store.SettingPut(ctx, name, v); err != nil {
		return "", fmt.Errorf("rotate %s: %w", which, err)
	}
	return v, r.Reload(ctx)
}

// AccessKey returns the named key in base64.
func (k *Keys) AccessKey(which Which) string {
	if which == SecondaryKey {
		return base64.StdEncoding.EncodeToString(k.Secondary)
	}
	return base64.StdEncoding.EncodeToString(k.Primary)
}

// ConnectionString renders the ACS connection string for endpoint with the named key.
func (k *Keys) ConnectionString(endpoint string, which Which) string {
	return "endpoint=" + endpoint + ";accesskey=" + k.AccessKey(which)
}

func newAccessKey() (string, error) {
	b := make([]byte, 64) // ACS access keys are 512-bit
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func newSigningKeyPEM() (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	return pkcs8PEM(k)
}

func parseSigningKey(text string) (*ecdsa.PrivateKey, error) {
	return parsePKCS8[*ecdsa.PrivateKey]("token signing key", "ECDSA", text)
}

// newCallbackKeyPEM generates the callback signing key: RSA 2048, PKCS#8 PEM.
func newCallbackKeyPEM() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	return pkcs8PEM(k)
}

func parseCallbackKey(text string) (*rsa.PrivateKey, error) {
	return parsePKCS8[*rsa.PrivateKey]("callback signing key", "RSA", text)
}

// pkcs8PEM is a private key as the store keeps it: PKCS#8 in a "PRIVATE KEY" PEM block.
func pkcs8PEM(k any) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// parsePKCS8 reads a pkcs8PEM key that must be of type T (alg names it in errors).
func parsePKCS8[T any](what, alg, text string) (T, error) {
	var zero T
	blk, _ := pem.Decode([]byte(text))
	if blk == nil {
		return zero, errors.New(what + ": not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	tk, ok := k.(T)
	if !ok {
		return zero, errors.New(what + ": not " + alg)
	}
	return tk, nil
}

func keyID(pub any) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
