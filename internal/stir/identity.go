// Package stir is telgw's STIR/SHAKEN: it signs outbound calls with a PASSporT of the "shaken"
// extension (RFC 8225, RFC 8588) in an Identity header (RFC 8224) and verifies the Identity
// header of inbound calls, fetching the signer's certificate from x5u through an SSRF-guarded
// client and caching it. Verification results use the verstat values of ATIS-1000074 §5.3.1.
package stir

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Attestation levels (RFC 8588 §4, ATIS-1000074 §5.2.3).
const (
	// AttestFull (A): the signer serves the caller and the caller may use the number.
	AttestFull = "A"
	// AttestPartial (B): the signer serves the caller but cannot vouch for the number.
	AttestPartial = "B"
	// AttestGateway (C): the signer only knows where the call entered its network.
	AttestGateway = "C"
)

// Verification statuses (ATIS-1000074 §5.3.1 verstat).
const (
	// Passed: the PASSporT verified and names the From and To numbers.
	Passed = "TN-Validation-Passed"
	// Failed: an Identity header was present and did not verify.
	Failed = "TN-Validation-Failed"
	// NoValidation: no Identity header, or verification is off.
	NoValidation = "No-TN-Validation"
)

// MaxHeaderLen bounds an Identity header value telgw reads (a shaken PASSporT is ~400 bytes).
const MaxHeaderLen = 4096

// Identity is a parsed Identity header (RFC 8224 §4.1):
//
//	Identity = signed-identity-digest SEMI ident-info *( SEMI ident-info-params )
//	ident-info = "info" EQUAL ident-info-uri   ; "<" absoluteURI ">"
//
// signed-identity-digest is a compact-form JWS (RFC 7515 §7.1) of the PASSporT.
type Identity struct {
	// JWS is the compact PASSporT: header.payload.signature, base64url without padding.
	JWS string
	// Info is the info parameter's URI (without the angle brackets).
	Info string
	// Alg and PPT are the alg and ppt parameters (RFC 8224 §4.1: alg defaults to ES256).
	Alg, PPT string
}

// Header is the PASSporT JOSE header (RFC 8225 §4).
type Header struct {
	Alg string `json:"alg"`
	PPT string `json:"ppt,omitempty"`
	Typ string `json:"typ"`
	X5U string `json:"x5u"`
}

// TN is a telephone number claim (RFC 8225 §5.2.1).
type TN struct {
	TN string `json:"tn"`
}

// TNs is the dest claim (RFC 8225 §5.2.1: an array of numbers).
type TNs struct {
	TN []string `json:"tn"`
}

// Claims are the shaken PASSporT claims (RFC 8225 §5, RFC 8588 §4).
type Claims struct {
	Attest string `json:"attest"`
	Dest   TNs    `json:"dest"`
	IAT    int64  `json:"iat"`
	Orig   TN     `json:"orig"`
	OrigID string `json:"origid"`
}

// String writes the header value: the JWS, then info, alg and ppt (RFC 8224 §4.1, the order of
// its examples).
func (id Identity) String() string {
	return id.JWS + ";info=<" + id.Info + ">;alg=" + id.Alg + ";ppt=" + id.PPT
}

var errIdentity = errors.New("malformed Identity header")

// ParseIdentity parses an Identity header value. It checks the form only: three base64url
// JWS parts and an info URI in angle brackets; the signature is Verifier's business.
func ParseIdentity(v string) (Identity, error) {
	if len(v) > MaxHeaderLen {
		return Identity{}, fmt.Errorf("%w: %d bytes", errIdentity, len(v))
	}
	v = strings.TrimSpace(v)
	jws, params, _ := strings.Cut(v, ";")
	id := Identity{JWS: strings.TrimSpace(jws), Alg: "ES256"}
	parts := strings.Split(id.JWS, ".")
	if len(parts) != 3 {
		return Identity{}, fmt.Errorf("%w: the JWS has %d parts, want 3", errIdentity, len(parts))
	}
	for _, p := range parts {
		if p == "" || !base64url(p) {
			return Identity{}, fmt.Errorf("%w: a JWS part is not base64url", errIdentity)
		}
	}
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		name, val = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(val)
		switch name {
		case "info":
			if len(val) < 2 || val[0] != '<' || val[len(val)-1] != '>' {
				return Identity{}, fmt.Errorf("%w: info is not <URI>", errIdentity)
			}
			id.Info = val[1 : len(val)-1]
		case "alg":
			id.Alg = val
		case "ppt":
			id.PPT = strings.Trim(val, `"`)
		}
	}
	if id.Info == "" {
		return Identity{}, fmt.Errorf("%w: no info parameter", errIdentity)
	}
	return id, nil
}

func base64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Decode returns the PASSporT's header and claims, unverified.
func (id Identity) Decode() (Header, Claims, error) {
	var h Header
	var c Claims
	parts := strings.Split(id.JWS, ".")
	if len(parts) != 3 {
		return h, c, errIdentity
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, c, fmt.Errorf("%w: header: %v", errIdentity, err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return h, c, fmt.Errorf("%w: payload: %v", errIdentity, err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, c, fmt.Errorf("%w: header: %v", errIdentity, err)
	}
	if err := json.Unmarshal(pb, &c); err != nil {
		return h, c, fmt.Errorf("%w: payload: %v", errIdentity, err)
	}
	return h, c, nil
}

// CanonicalTN is a number in the form RFC 8224 §8.3 compares and RFC 8225 §5.2.1 signs: the
// digits only, without "+" or visual separators ("+1 (415) 555-0100" → "14155550100").
func CanonicalTN(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
