package stir

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// VerifierConfig configures inbound verification.
type VerifierConfig struct {
	// Roots are the STI-CA trust anchors (ATIS-1000080 §5.3.2); a certificate must chain to one.
	Roots *x509.CertPool
	// Client fetches x5u certificates. It must refuse internal addresses (SSRF): internal/app
	// passes the webhook guard's client (internal/events.Guard.Client). Required.
	Client *http.Client
	// AllowHTTP lets x5u be http: (tests, labs); default https only (ATIS-1000080 §5.3.1).
	AllowHTTP bool
	// FetchTimeout bounds one certificate fetch. Default 2s.
	FetchTimeout time.Duration
	// MaxCertBytes bounds a fetched certificate file. Default 32 KiB.
	MaxCertBytes int64
	// CacheTTL is how long a fetched certificate is reused. Default 1h.
	CacheTTL time.Duration
	// CacheSize bounds the cached URLs. Default 1000.
	CacheSize int
	// MaxAge is how old iat may be (RFC 8224 §6.2.2 recommends 60s). Default 60s.
	MaxAge time.Duration
}

// Verifier verifies Identity headers.
type Verifier struct {
	cfg VerifierConfig
	// Now is the clock. Default time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]*certEntry
}

type certEntry struct {
	ready   chan struct{}
	certs   []*x509.Certificate
	err     error
	expires time.Time
}

// NewVerifier returns a Verifier; Roots and Client are required.
func NewVerifier(c VerifierConfig) (*Verifier, error) {
	if c.Roots == nil || c.Client == nil {
		return nil, errors.New("stir: a verifier needs trust roots and a guarded HTTP client")
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 2 * time.Second
	}
	if c.MaxCertBytes <= 0 {
		c.MaxCertBytes = 32 << 10
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = time.Hour
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 1000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 60 * time.Second
	}
	return &Verifier{cfg: c, Now: time.Now, cache: map[string]*certEntry{}}, nil
}

// Result is a verification's outcome.
type Result struct {
	// Verstat is Passed, Failed or NoValidation.
	Verstat string
	// Attest is the verified attestation (A, B, C), empty unless Passed.
	Attest string
	// Reason says why it failed.
	Reason string
}

// Verify checks header (an Identity header value; "" gives NoValidation) for a call from orig
// to dest, following RFC 8224 §6.2: the PASSporT's form (ES256, ppt shaken), x5u fetched
// (equal to info), the certificate chaining to a root and valid now, the signature, iat fresh,
// and orig/dest naming the call's numbers (§8.3 canonical form).
func (v *Verifier) Verify(ctx context.Context, header, orig, dest string) Result {
	if header == "" {
		return Result{Verstat: NoValidation}
	}
	fail := func(format string, args ...any) Result {
		return Result{Verstat: Failed, Reason: fmt.Sprintf(format, args...)}
	}
	id, err := ParseIdentity(header)
	if err != nil {
		return fail("%v", err)
	}
	h, c, err := id.Decode()
	if err != nil {
		return fail("%v", err)
	}
	if h.Alg != "ES256" || !strings.EqualFold(id.Alg, "ES256") {
		return fail("alg %q is not ES256", h.Alg)
	}
	if h.PPT != "shaken" || (id.PPT != "" && id.PPT != "shaken") {
		return fail("ppt %q is not shaken", h.PPT)
	}
	if h.Typ != "" && h.Typ != "passport" {
		return fail("typ %q is not passport", h.Typ)
	}
	if h.X5U != id.Info {
		return fail("x5u %q is not the info parameter %q", h.X5U, id.Info)
	}
	switch c.Attest {
	case AttestFull, AttestPartial, AttestGateway:
	default:
		return fail("attest %q is not A, B or C", c.Attest)
	}
	now := v.Now()
	iat := time.Unix(c.IAT, 0)
	if now.Sub(iat) > v.cfg.MaxAge || iat.Sub(now) > v.cfg.MaxAge {
		return fail("iat %s is more than %s from now", iat.UTC().Format(time.RFC3339), v.cfg.MaxAge)
	}
	if CanonicalTN(c.Orig.TN) != CanonicalTN(orig) || CanonicalTN(orig) == "" {
		return fail("orig %q is not the caller %q", c.Orig.TN, orig)
	}
	found := false
	for _, d := range c.Dest.TN {
		found = found || CanonicalTN(d) == CanonicalTN(dest) && d != ""
	}
	if !found {
		return fail("dest %v does not name the called number %q", c.Dest.TN, dest)
	}
	certs, err := v.certs(ctx, h.X5U)
	if err != nil {
		return fail("certificate: %v", err)
	}
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: v.cfg.Roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fail("certificate: %v", err)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fail("certificate key is not ECDSA")
	}
	if err := verifyES256(pub, id.JWS); err != nil {
		return fail("%v", err)
	}
	return Result{Verstat: Passed, Attest: c.Attest}
}

// verifyES256 checks a compact JWS signature (RFC 7518 §3.4: R || S, 32 bytes each, over
// SHA-256 of "header.payload"). Written on crypto/ecdsa, apart from the signer's JWT library.
func verifyES256(pub *ecdsa.PublicKey, jws string) error {
	i := strings.LastIndexByte(jws, '.')
	sig, err := base64.RawURLEncoding.DecodeString(jws[i+1:])
	if err != nil || len(sig) != 64 {
		return errors.New("signature is not 64 bytes of base64url")
	}
	sum := sha256.Sum256([]byte(jws[:i]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, sum[:], r, s) {
		return errors.New("signature does not verify")
	}
	return nil
}

// certs returns the certificates at raw, from the cache or fetched once for all concurrent
// callers. Failures are cached for a minute so that a bad x5u in a flood of calls is fetched
// once, not once per call.
func (v *Verifier) certs(ctx context.Context, raw string) ([]*x509.Certificate, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || !(u.Scheme == "https" || u.Scheme == "http" && v.cfg.AllowHTTP) {
		return nil, fmt.Errorf("x5u %q is not an https URL", raw)
	}
	now := v.Now()
	v.mu.Lock()
	e := v.cache[raw]
	if e != nil {
		select {
		case <-e.ready:
			if now.After(e.expires) {
				e = nil
			}
		default:
		}
	}
	if e == nil {
		if len(v.cache) >= v.cfg.CacheSize {
			v.evict(now)
		}
		e = &certEntry{ready: make(chan struct{})}
		v.cache[raw] = e
		go v.fetch(raw, e)
	}
	v.mu.Unlock()
	select {
	case <-e.ready:
		return e.certs, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// evict drops expired entries, and an arbitrary one when none has expired (mu held).
func (v *Verifier) evict(now time.Time) {
	for k, e := range v.cache {
		select {
		case <-e.ready:
			if now.After(e.expires) {
				delete(v.cache, k)
			}
		default:
		}
	}
	for k := range v.cache {
		if len(v.cache) < v.cfg.CacheSize {
			break
		}
		delete(v.cache, k)
	}
}

func (v *Verifier) fetch(raw string, e *certEntry) {
	defer close(e.ready)
	ctx, cancel := context.WithTimeout(context.Background(), v.cfg.FetchTimeout)
	defer cancel()
	e.certs, e.err = v.get(ctx, raw)
	ttl := v.cfg.CacheTTL
	if e.err != nil {
		ttl = time.Minute
	}
	e.expires = v.Now().Add(ttl)
}

func (v *Verifier) get(ctx context.Context, raw string) ([]*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/pem-certificate-chain")
	res, err := v.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", raw, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, v.cfg.MaxCertBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > v.cfg.MaxCertBytes {
		return nil, fmt.Errorf("GET %s: more than %d bytes", raw, v.cfg.MaxCertBytes)
	}
	return ParseCerts(b)
}
