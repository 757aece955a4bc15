package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadReportsEveryProblem: a file with several mistakes and bad environment values are
// reported together, each naming its key in words an operator reads, with Validate's
// problems and the files'.
func TestLoadReportsEveryProblem(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "telgw.yaml")
	yml := "http:\n  clockSkew: 15\n  adress: 0.0.0.0:8080\n  maxBodyBytes: lots\nsip:\n  ringTimeout: abc\n  ringTimout: 5s\n  rejectUnknownSource: maybe\n  trunks:\n    - name: c1\n      adress: 10.0.0.1:5060\nturn: 7\nbogus: {a: 1}\n"
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, []string{"TELGW_HTTP_IDLE_TIMEOUT=forever", "TELGW_CONSOLE_SESSION_TTL=1s", "TELGW_SIP_TRUNKS=[{nme: x}]", "TELGW_NUMBERS_QUARANTINE_DAYS=-3",
		"TELGW_HTTP_TLS_CERT=" + filepath.Join(dir, "missing.pem"), "TELGW_HTTP_TLS_KEY=" + filepath.Join(dir, "missing.key")})
	all := Check(&cfg, err)
	if all == nil {
		t.Fatal("no problems reported")
	}
	got := all.Error()
	for _, want := range []string{
		"http.clockSkew: want a duration like 15m or 30s, got 15",
		"http.adress: unknown key",
		"sip.ringTimout: unknown key (did you mean sip.ringTimeout?)",
		`http.maxBodyBytes: want a whole number, got "lots"`,
		`sip.ringTimeout: want a duration like 15m or 30s, got "abc"`,
		`sip.rejectUnknownSource: want true or false, got "maybe"`,
		"sip.trunks: ",
		"turn: want a mapping of keys, got 7",
		"bogus: unknown key",
		`http.idleTimeout (TELGW_HTTP_IDLE_TIMEOUT): want a duration like 15m or 30s, got "forever"`,
		`sip.trunks (TELGW_SIP_TRUNKS): want YAML or JSON text: [1:3] unknown field "nme"`,
		"numbers.quarantineDays",
		"http.tlsCert: ",
		"console.sessionTTL: 1s is not between 1m and 168h",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestEnvWarnings(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{"TELGW_HTTP_ADDR=127.0.0.1:0", "TELGW_HTTP_ADR=x", "TELGW_CONFIG=", "TELGW_TEST_PG=postgres://x",
		"TELGW_BENCH_SIP=1", "TELGW_SIP_WEBRTC_REGISTER_TIMEOUT=5s", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "TELGW_HTTP_ADR is not a configuration variable") ||
		!strings.Contains(cfg.Warnings[0], "did you mean TELGW_HTTP_ADDR?") {
		t.Fatalf("warnings %q", cfg.Warnings)
	}
}

// TestCheckFiles: TLS files that are missing, not PEM or not a pair are reported naming the key.
func TestCheckFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	cert2, _ := writePair(t, dir, "b")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"good", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = cert, key }, ""},
		{"missing cert", func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = filepath.Join(dir, "nope"), key }, "http.tlsCert: "},
		{"missing key", func(c *Config) { c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile = cert, filepath.Join(dir, "nope") }, "sip.tls.keyFile: "},
		{"not a pair", func(c *Config) { c.SIP.TLS.CertFile, c.SIP.TLS.KeyFile = cert2, key }, "sip.tls.certFile/sip.tls.keyFile: not a matching"},
		{"bad CA", func(c *Config) { c.SIP.TLS.CAFile = junk }, "sip.tls.caFile: "},
		{"good CA", func(c *Config) { c.SIP.TLS.CAFile = cert }, ""},
	} {
		c := Default()
		tc.mod(&c)
		err := c.CheckFiles()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func writePair(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
