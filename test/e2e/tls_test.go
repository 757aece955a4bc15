package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestTLS serves HTTPS from configured cert/key files and answers signed requests over it.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := writeSelfSigned(t, dir)
	tg := StartTelgw(t, Options{Env: []string{"TELGW_HTTP_TLS_CERT=" + certPath, "TELGW_HTTP_TLS_KEY=" + keyPath}})
	if !strings.HasPrefix(tg.ConnString, "endpoint=https://") {
		t.Fatalf("connection string not https: %s", tg.ConnString)
	}
	c := NewClient(t, tg.ConnString)
	c.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test cert
	if r := c.Do(t, "POST", "/identities?api-version=2023-10-01", nil); r.Status != 201 {
		t.Fatalf("over TLS: %d %s", r.Status, r.Body)
	}
}

func writeSelfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	cp, kp := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return cp, kp
}

// TestSIPOverSecureWebSocket: with HTTPS configured, /sip/ws is served as WSS (RFC 7118 §3): a
// REGISTER without credentials gets the 401 with the Bearer and Digest challenges, and one with
// a voip token gets 200.
func TestSIPOverSecureWebSocket(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := writeSelfSigned(t, dir)
	tg := StartTelgw(t, Options{Env: []string{"TELGW_HTTP_TLS_CERT=" + certPath, "TELGW_HTTP_TLS_KEY=" + keyPath}})
	c := NewClient(t, tg.ConnString)
	c.HTTP.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test cert
	r := c.Do(t, "POST", "/identities?api-version=2023-10-01", map[string]any{"createTokenWithScopes": []string{"voip"}})
	var id struct {
		Identity    struct{ ID string }    `json:"identity"`
		AccessToken struct{ Token string } `json:"accessToken"`
	}
	r.JSON(t, &id)
	u := "wss://" + c.Base.Host + "/sip/ws"
	d := ws.Dialer{Protocols: []string{"sip"}, TLSConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test cert
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, _, err := d.Dial(ctx, u)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	defer conn.Close()
	register := func(cseq int, auth string) string {
		t.Helper()
		msg := "REGISTER sip:127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK" + strconv.Itoa(cseq) + "x\r\n" +
			"Max-Forwards: 70\r\nTo: <sip:alice@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n" +
			"Call-ID: wss-test\r\nCSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n" +
			"Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;expires=300\r\n" + auth + "Content-Length: 0\r\n\r\n"
		if err := wsutil.WriteClientText(conn, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			b, err := wsutil.ReadServerText(conn)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !strings.HasPrefix(string(b), "SIP/2.0 100") {
				return string(b)
			}
		}
	}
	if res := register(1, ""); !strings.HasPrefix(res, "SIP/2.0 401") || !strings.Contains(res, "Bearer") || !strings.Contains(res, "Digest") {
		t.Fatalf("no credentials:\n%s", res)
	}
	if res := register(2, "Authorization: Bearer "+id.AccessToken.Token+"\r\n"); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("with token:\n%s", res)
	}
}
