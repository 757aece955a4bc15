package stir

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// SignerConfig configures outbound signing.
type SignerConfig struct {
	// Key is the PEM private key of the operator's SHAKEN certificate (EC P-256, "EC PRIVATE
	// KEY" or PKCS#8 "PRIVATE KEY").
	Key []byte
	// Cert is the PEM certificate (chain) of Key; Signer checks they match.
	Cert []byte
	// CertURL is where verifiers fetch Cert (the x5u claim and the info parameter); https in
	// production (ATIS-1000080 §5.3.1).
	CertURL string
	// OrigID is the origination identifier UUID (RFC 8588 §4, ATIS-1000074 §5.2.4) naming
	// where calls enter the operator's network. Default: a random UUID per Signer.
	OrigID string
}

// Signer signs shaken PASSporTs with the operator's key.
type Signer struct {
	key    *ecdsa.PrivateKey
	url    string
	origID string
	// Now is the clock of iat. Default time.Now.
	Now func() time.Time
}

// NewSigner parses the key and certificate and checks that they match and the key is P-256
// (ES256, RFC 8588 §3: the only algorithm SHAKEN allows).
func NewSigner(c SignerConfig) (*Signer, error) {
	key, err := ParseECKey(c.Key)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCerts(c.Cert)
	if err != nil {
		return nil, err
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the certificate is not the key's")
	}
	u, err := url.Parse(c.CertURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("certURL %q is not an http(s) URL", c.CertURL)
	}
	id := c.OrigID
	if id == "" {
		id = uuid.NewString()
	} else if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("origID %q is not a UUID", id)
	}
	return &Signer{key: key, url: c.CertURL, origID: id, Now: time.Now}, nil
}

// ParseECKey reads a PEM EC P-256 private key (SEC 1 or PKCS#8).
func ParseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("key: no PEM block")
	}
	var key *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		key, _ = k.(*ecdsa.PrivateKey)
	}
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("key: not an EC P-256 private key (ES256)")
	}
	return key, nil
}

// ParseCerts reads PEM certificates, the signer's first.
func ParseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("certificate: no PEM CERTIFICATE block")
	}
	return out, nil
}

// Sign returns the Identity header value of a call from orig to dest (E.164 or digits) with
// attestation attest (RFC 8224 §4.1, RFC 8588 §4).
func (s *Signer) Sign(orig, dest, attest string) (string, error) {
	switch attest {
	case AttestFull, AttestPartial, AttestGateway:
	default:
		return "", fmt.Errorf("attestation %q is not A, B or C", attest)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"attest": attest,
		"dest":   map[string][]string{"tn": {CanonicalTN(dest)}},
		"iat":    s.Now().Unix(),
		"orig":   map[string]string{"tn": CanonicalTN(orig)},
		"origid": s.origID,
	})
	// RFC 8225 §4: typ "passport"; RFC 8588 §3: ppt "shaken"; x5u the certificate's URL.
	t.Header = map[string]any{"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": s.url}
	jws, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign passport: %w", err)
	}
	return Identity{JWS: jws, Info: s.url, Alg: "ES256", PPT: "shaken"}.String(), nil
}
