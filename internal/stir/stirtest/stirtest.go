// Package stirtest makes the certificates STIR/SHAKEN tests need: a trust anchor (an STI-CA of
// the test) and an operator's EC P-256 certificate it issued, served over loopback HTTP.
package stirtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a test trust anchor and an operator certificate it issued.
type PKI struct {
	// RootPEM is the anchor; RootFile holds it on disk.
	RootPEM  []byte
	RootFile string
	Roots    *x509.CertPool
	// KeyPEM and CertPEM are the operator's key and certificate.
	KeyPEM, CertPEM []byte
	// URL serves CertPEM (http on loopback); Fetches counts its GETs.
	URL     string
	Fetches atomic.Int64
}

// New makes a PKI and serves its certificate until the test ends.
func New(t testing.TB) *PKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "telgw test STI-CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "SHAKEN 1234"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := &PKI{
		RootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		Roots:   x509.NewCertPool(),
	}
	p.Roots.AddCert(caCert)
	p.RootFile = filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(p.RootFile, p.RootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.Fetches.Add(1)
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		_, _ = w.Write(p.CertPEM)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL + "/shaken.pem"
	return p
}
