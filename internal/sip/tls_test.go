package sip_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/telgw/telgw/internal/sip"
)

// testPKI is a throw-away CA and a certificate it signs for the loopback parties' addresses,
// written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	cert                      tls.Certificate
}

func newTestPKI(t *testing.T, selfSigned bool) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "telgw test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "telgw"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	for _, ip := range []string{telgwIP, carrierIP, carrier2IP} {
		leaf.IPAddresses = append(leaf.IPAddresses, net.ParseIP(ip))
	}
	parent, signer := ca, any(caKey)
	if selfSigned {
		parent, signer = leaf, key
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	for f, b := range map[string]*pem.Block{p.caFile: {Type: "CERTIFICATE", Bytes: caDER}, p.certFile: {Type: "CERTIFICATE", Bytes: der}, p.keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if p.cert, err = tls.LoadX509KeyPair(p.certFile, p.keyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

func withTLS(p testPKI) func(*sip.Config) {
	return func(c *sip.Config) {
		c.TLS = sip.TLSConfig{Addr: net.JoinHostPort(telgwIP, "0"), CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile}
	}
}

// TestTLSInboundCall: a carrier calls over TLS (RFC 3261 §26.2) with a sipgo UAC that verifies
// telgw's certificate; telgw bridges the call to a PBX (SIPp) over UDP.
func TestTLSInboundCall(t *testing.T) {
	sippPath(t)
	pki := newTestPKI(t, false)
	pbxPort := freePort(t, pbxIP)
	// sipgo dials TLS from the default source address, 127.0.0.1: the trunk allows it.
	trunk := carrierTrunk("carrier1", carrierIP, 5061)
	trunk.Allow = []netip.Prefix{netip.MustParsePrefix(telgwIP + "/32")}
	e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{trunk}, tweak: withTLS(pki)})
	e.router.set(ourNumber, sip.SIPRoute{URI: fmt.Sprintf("sip:pbx@%s:%d", pbxIP, pbxPort)})
	pbx := e.start("pbx", pbxIP, pbxPort, e.scenario("uas.xml"), "-m", "1", "-rtp_echo", "-mp", strconv.Itoa(freePort(t, pbxIP)))

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"), sipgo.WithUserAgentHostname(carrierIP),
		sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(carrierIP))
	if err != nil {
		t.Fatal(err)
	}
	contact := sipmsg.Uri{User: "carrier", Host: carrierIP, Port: 5061, UriParams: sipmsg.NewParams()}
	contact.UriParams.Add("transport", "tls")
	dua := sipgo.DialogUA{Client: client, ContactHDR: sipmsg.ContactHeader{Address: contact}}
	tlsAddr := e.svc.TLSAddr()
	if !tlsAddr.IsValid() {
		t.Fatal("no TLS listener")
	}
	to := sipmsg.Uri{Scheme: "sip", User: "4155550100", Host: telgwIP, Port: int(tlsAddr.Port()), UriParams: sipmsg.NewParams()}
	to.UriParams.Add("transport", "tls")
	offer := "v=0\r\no=carrier 1 1 IN IP4 " + carrierIP + "\r\ns=-\r\nc=IN IP4 " + carrierIP + "\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	from := &sipmsg.FromHeader{Address: sipmsg.Uri{Scheme: "sip", User: "+12125550199", Host: carrierIP}, Params: sipmsg.NewParams()}
	from.Params.Add("tag", sipmsg.GenerateTagN(8))
	sess, err := dua.Invite(ctx, to, []byte(offer), from, sipmsg.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sess.Close() }()
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("answer: %v", err)
	}
	if v := sess.InviteRequest.Via(); v == nil || !strings.EqualFold(v.Transport, "TLS") {
		t.Fatalf("INVITE Via %v, want TLS", v)
	}
	// ACK and BYE go to telgw's TLS listener over the INVITE's connection. (telgw's Contact for
	// a dialog that came in over TLS is its UDP one until call.go maps "tls" to the tls dialog
	// UA; RFC 3261 §12.2.1.1 would send them there.)
	t.Logf("200 OK Contact: %s", sess.InviteResponse.Contact().Value())
	if err := sess.WriteAck(ctx, sipmsg.NewRequest(sipmsg.ACK, to)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := sess.WriteBye(ctx, sipmsg.NewRequest(sipmsg.BYE, to)); err != nil {
		t.Fatalf("bye: %v", err)
	}
	pbx.wait(t, 20*time.Second)
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.Trunk != "carrier1" || cdr.To != ourNumber || cdr.EndedBy != "caller" {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "no active calls", func() bool { return e.svc.ActiveCalls() == 0 })
}

// tlsCarrier is a sipgo UAS on carrierIP that answers OPTIONS over TLS and records them.
type tlsCarrier struct {
	addr string
	mu   sync.Mutex
	reqs []*sipmsg.Request
}

func startTLSCarrier(t *testing.T, cert tls.Certificate) *tlsCarrier {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"), sipgo.WithUserAgentHostname(carrierIP))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	c := &tlsCarrier{}
	srv.OnOptions(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		c.mu.Lock()
		c.reqs = append(c.reqs, req)
		c.mu.Unlock()
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	})
	l, err := tls.Listen("tcp", net.JoinHostPort(carrierIP, "0"), &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	c.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(l) }()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		_ = srv.Close()
		_ = ua.Close()
	})
	return c
}

func (c *tlsCarrier) received() []*sipmsg.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*sipmsg.Request(nil), c.reqs...)
}

// TestTLSTrunkOptions: a trunk with transport tls sends its OPTIONS keepalives over TLS,
// verifying the carrier's certificate against caFile, with Via on telgw's TLS port; a carrier
// whose certificate the CA did not sign is never reached and the trunk goes down.
func TestTLSTrunkOptions(t *testing.T) {
	pki := newTestPKI(t, false)
	good := startTLSCarrier(t, pki.cert)
	bad := startTLSCarrier(t, newTestPKI(t, true).cert)
	trunk := func(name, addr string) sip.TrunkConfig {
		tr := carrierTrunk(name, carrierIP, 0)
		tr.Address, tr.Transport, tr.OptionsInterval = addr, "tls", 300*time.Millisecond
		return tr
	}
	e := newEnv(t, envOpts{trunks: []sip.TrunkConfig{trunk("good", good.addr), trunk("bad", bad.addr)}, tweak: withTLS(pki)})
	eventually(t, "OPTIONS over TLS", func() bool { return len(good.received()) >= 2 })
	eventually(t, "untrusted trunk down", func() bool { return !e.svc.Admin().TrunkUp("bad") })
	if !e.svc.Admin().TrunkUp("good") {
		t.Fatal("trusted trunk down")
	}
	if n := len(bad.received()); n != 0 {
		t.Fatalf("untrusted carrier got %d requests", n)
	}
	v := good.received()[0].Via()
	if !strings.EqualFold(v.Transport, "TLS") || v.Port != int(e.svc.TLSAddr().Port()) {
		t.Fatalf("Via %s, want TLS on port %d", v.Value(), e.svc.TLSAddr().Port())
	}
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t, false)
	for _, tc := range []struct {
		name  string
		tweak func(*sip.Config)
		want  string
	}{
		{"tls trunk without TLS", func(c *sip.Config) {
			c.Trunks = []sip.TrunkConfig{{Name: "c", Address: "127.0.0.2:5061", Transport: "tls"}}
		}, "transport tls needs TLS"},
		{"no key", func(c *sip.Config) { c.TLS = sip.TLSConfig{Addr: "127.0.0.1:0", CertFile: pki.certFile} }, "certFile and keyFile"},
		{"bad version", func(c *sip.Config) {
			c.TLS = sip.TLSConfig{Addr: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, MinVersion: tls.VersionTLS10}
		}, "minVersion"},
		{"missing cert file", func(c *sip.Config) {
			c.TLS = sip.TLSConfig{Addr: "127.0.0.1:0", CertFile: pki.certFile + ".nope", KeyFile: pki.keyFile}
		}, "load certificate"},
		{"CA file without PEM", func(c *sip.Config) {
			c.TLS = sip.TLSConfig{Addr: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, CAFile: pki.keyFile}
		}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := sip.Config{Addr: "127.0.0.1:0"}
			tc.tweak(&cfg)
			svc, err := sip.New(cfg, sip.Deps{Router: &fakeRouter{}})
			if err == nil {
				svc.Close()
				t.Fatal("want error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestTLSOutboundCall: a customer's call leaves by a trunk with transport tls; the carrier (a
// sipgo UAS behind TLS) sees the INVITE and BYE over TLS, with a Contact of transport=tls on
// telgw's TLS port.
func TestTLSOutboundCall(t *testing.T) {
	// Passes once call.go maps tls like tcp: trunkTargets adds ;transport=tls for tls trunks and
	// transportOf returns "tls" for requests that came in over TLS. Remove this line then.
	sippPath(t)
	pki := newTestPKI(t, false)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"), sipgo.WithUserAgentHostname(carrierIP))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", net.JoinHostPort(carrierIP, "0"), &tls.Config{Certificates: []tls.Certificate{pki.cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	var got []*sipmsg.Request
	record := func(req *sipmsg.Request) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
	}
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{User: "carrier", Host: carrierIP, Port: port, UriParams: sipmsg.NewParams()}}
	contact.Address.UriParams.Add("transport", "tls")
	srv.OnInvite(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		record(req)
		answer := "v=0\r\no=carrier 1 1 IN IP4 " + carrierIP + "\r\ns=-\r\nc=IN IP4 " + carrierIP + "\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		res := sipmsg.NewResponseFromRequest(req, 200, "OK", []byte(answer))
		res.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(&contact)
		_ = tx.Respond(res)
	})
	srv.OnAck(func(req *sipmsg.Request, _ sipmsg.ServerTransaction) { record(req) })
	srv.OnBye(func(req *sipmsg.Request, tx sipmsg.ServerTransaction) {
		record(req)
		_ = tx.Respond(sipmsg.NewResponseFromRequest(req, 200, "OK", nil))
	})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.ServeTLS(l) }()
	t.Cleanup(func() { _ = l.Close(); <-done; _ = srv.Close(); _ = ua.Close() })

	tr := carrierTrunk("carrier1", carrierIP, port)
	tr.Transport = "tls"
	e := newEnv(t, envOpts{
		trunks: []sip.TrunkConfig{tr},
		routes: []sip.OutboundRoute{{Name: "us", NumberPattern: `\+1[2-9]\d{9}`, Trunks: []string{"carrier1"}}},
		creds:  fakeCreds{"acme": sip.NewCredential("telgw", "acme", "s3cret", []string{ourNumber})},
		tweak:  withTLS(pki),
	})
	e.router.set(ourNumber, sip.SIPRoute{URI: "sip:pbx@" + pbxIP})
	e.call(customerIP, e.scenario("uac_auth.xml"), otherNumber, ourNumber, "-au", "acme", "-ap", "s3cret")
	cdr := e.cdrs.wait(t, 1)[0]
	if cdr.Disposition != "answered" || cdr.Trunk != "carrier1" {
		t.Fatalf("cdr %+v", cdr)
	}
	eventually(t, "BYE at the carrier", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Method == sipmsg.BYE
	})
	mu.Lock()
	defer mu.Unlock()
	tlsPort := int(e.svc.TLSAddr().Port())
	for _, req := range got {
		if v := req.Via(); !strings.EqualFold(req.Transport(), "TLS") || v.Port != tlsPort {
			t.Errorf("%s over %s, Via %s; want TLS on port %d", req.Method, req.Transport(), v.Value(), tlsPort)
		}
	}
	inv := got[0]
	if c := inv.Contact(); c == nil || c.Address.Port != tlsPort || c.Address.UriParams == nil || !strings.EqualFold(paramOr(c.Address.UriParams, "transport"), "tls") {
		t.Errorf("INVITE Contact %v, want transport=tls on port %d", c, tlsPort)
	}
}

func paramOr(p sipmsg.HeaderParams, k string) string {
	v, _ := p.Get(k)
	return v
}
