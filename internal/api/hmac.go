package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"hash"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/telgw/telgw/internal/problem"
)

// HMACScheme is the Authorization scheme of ACS access-key authentication.
const HMACScheme = "HMAC-SHA256"

// Authorization is a parsed ACS HMAC Authorization header:
// "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=BASE64".
type Authorization struct {
	SignedHeaders []string
	Signature     []byte
}

// ParseAuthorization parses an ACS HMAC Authorization header value.
func ParseAuthorization(v string) (Authorization, error) {
	var a Authorization
	scheme, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, HMACScheme) {
		return a, problem.Unauthorized("Authorization header must use the HMAC-SHA256 scheme")
	}
	var sig string
	for _, part := range strings.Split(strings.TrimSpace(rest), "&") {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, problem.Unauthorized("Authorization header: malformed parameter %q", part)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "signedheaders":
			for _, h := range strings.Split(val, ";") {
				h = strings.ToLower(strings.TrimSpace(h))
				if h == "" {
					return a, problem.Unauthorized("Authorization header: empty signed header name")
				}
				a.SignedHeaders = append(a.SignedHeaders, h)
			}
		case "signature":
			sig = val
		default:
			return a, problem.Unauthorized("Authorization header: unknown parameter %q", k)
		}
	}
	if len(a.SignedHeaders) == 0 {
		return a, problem.Unauthorized("Authorization header: SignedHeaders missing")
	}
	if sig == "" {
		return a, problem.Unauthorized("Authorization header: Signature missing")
	}
	b, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(b) != sha256.Size {
		return a, problem.Unauthorized("Authorization header: Signature is not a base64 HMAC-SHA256")
	}
	a.Signature = b
	return a, nil
}

// DefaultClockSkew is how far x-ms-date may be from now by default (docs/CONFIG.md
// http.clockSkew), as ACS accepts.
const DefaultClockSkew = 15 * time.Minute

// Verifier checks ACS HMAC-SHA256 signed requests against the current access keys.
type Verifier struct {
	// Keys returns the accepted access keys (primary, secondary).
	Keys func() [][]byte
	// Skew is the accepted distance between x-ms-date and now (ACS: 15 minutes,
	// DefaultClockSkew).
	Skew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	macs sync.Map // string(key) → *sync.Pool of hash.Hash, so verification allocates little
}

// mac returns a reset HMAC-SHA256 for key from the pool and a function to return it.
func (v *Verifier) mac(key []byte) (hash.Hash, func()) {
	p, ok := v.macs.Load(string(key))
	if !ok {
		k := append([]byte(nil), key...)
		p, _ = v.macs.LoadOrStore(string(k), &sync.Pool{New: func() any { return hmac.New(sha256.New, k) }})
	}
	pool := p.(*sync.Pool)
	m := pool.Get().(hash.Hash)
	m.Reset()
	return m, func() { pool.Put(m) }
}

// header reads a header by its canonical name without re-canonicalising it.
func header(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requiredSigned are the headers every signature must cover.
var requiredSigned = []string{"x-ms-date", "host", "x-ms-content-sha256"}

// Verify checks one request. pathAndQuery is the request target exactly as sent; host is the
// Host header; body is the full request body. The string to sign is
// "VERB\nPATH_AND_QUERY\n" + the signed header values joined by ";", in SignedHeaders order.
// The host may be signed with or without its port.
func (v *Verifier) Verify(method, pathAndQuery, host string, h http.Header, body []byte) error {
	p, err := v.Precheck(h)
	if err != nil {
		return err
	}
	return v.verifyBody(p, method, pathAndQuery, host, h, body)
}

// Prechecked is what Precheck learnt from the headers, for the body check that follows.
type Prechecked struct {
	auth              Authorization
	date, contentHash string
}

// Precheck checks what needs no body: the Authorization header, the signed header list, the
// date and the presence of x-ms-content-sha256. The edge runs it before reading a body, so an
// unauthenticated client cannot hold a connection by sending its body slowly.
func (v *Verifier) Precheck(h http.Header) (Prechecked, error) {
	var p Prechecked
	raw := header(h, "Authorization")
	if raw == "" {
		return p, problem.Unauthorized("Authorization header missing")
	}
	auth, err := ParseAuthorization(raw)
	if err != nil {
		return p, err
	}
	for _, req := range requiredSigned {
		found := false
		for _, s := range auth.SignedHeaders {
			if s == req {
				found = true
				break
			}
		}
		if !found {
			return p, problem.Unauthorized("SignedHeaders must include %s", req)
		}
	}
	date := header(h, "X-Ms-Date")
	if date == "" {
		date = header(h, "Date")
	}
	if date == "" {
		return p, problem.Unauthorized("x-ms-date header missing")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return p, problem.Unauthorized("x-ms-date %q is not an RFC 1123 date", date)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(t); d > v.Skew || d < -v.Skew {
		return p, problem.Unauthorized("x-ms-date %q is more than %s away from the server clock", date, v.Skew)
	}
	contentHash := header(h, "X-Ms-Content-Sha256")
	if contentHash == "" {
		return p, problem.Unauthorized("x-ms-content-sha256 header missing")
	}
	return Prechecked{auth: auth, date: date, contentHash: contentHash}, nil
}

// verifyBody finishes Verify once the body is read.
func (v *Verifier) verifyBody(p Prechecked, method, pathAndQuery, host string, h http.Header, body []byte) error {
	auth, date, contentHash := p.auth, p.date, p.contentHash
	sum := sha256.Sum256(body)
	var enc [44]byte
	base64.StdEncoding.Encode(enc[:], sum[:])
	if subtle.ConstantTimeCompare(enc[:], []byte(contentHash)) != 1 {
		return problem.Unauthorized("x-ms-content-sha256 does not match the request body")
	}
	hosts := []string{host}
	if hn, _, err := net.SplitHostPort(host); err == nil {
		hosts = append(hosts, hn)
	}
	keys := v.Keys()
	var mac [sha256.Size]byte
	for _, hv := range hosts {
		msg := make([]byte, 0, len(method)+len(pathAndQuery)+160)
		msg = append(append(append(append(msg, method...), '\n'), pathAndQuery...), '\n')
		for i, name := range auth.SignedHeaders {
			if i > 0 {
				msg = append(msg, ';')
			}
			switch name {
			case "host":
				msg = append(msg, hv...)
			case "x-ms-date":
				msg = append(msg, date...)
			case "x-ms-content-sha256":
				msg = append(msg, contentHash...)
			default:
				msg = append(msg, h.Get(name)...)
			}
		}
		for _, k := range keys {
			m, done := v.mac(k)
			m.Write(msg)
			ok := hmac.Equal(m.Sum(mac[:0]), auth.Signature)
			done()
			if ok {
				return nil
			}
		}
	}
	return problem.Unauthorized("signature does not match; check the access key")
}

// Sign computes the ACS HMAC headers for a request (used by telgw's own CLI and tests).
// It sets x-ms-date, x-ms-content-sha256 and Authorization on h.
func Sign(key []byte, method, pathAndQuery, host string, body []byte, now time.Time, h http.Header) {
	sum := sha256.Sum256(body)
	hash := base64.StdEncoding.EncodeToString(sum[:])
	date := now.UTC().Format(http.TimeFormat)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(method + "\n" + pathAndQuery + "\n" + date + ";" + host + ";" + hash))
	h.Set("x-ms-date", date)
	h.Set("x-ms-content-sha256", hash)
	h.Set("Authorization", HMACScheme+" SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="+
		base64.StdEncoding.EncodeToString(m.Sum(nil)))
}
