package stir_test

import (
	"context"
	"encoding/base64"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/telgw/telgw/internal/events"
	"github.com/telgw/telgw/internal/stir"
	"github.com/telgw/telgw/internal/stir/stirtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

const orig, dest = "+14155550100", "+12125550199"

func signer(t *testing.T, p *stirtest.PKI) *stir.Signer {
	t.Helper()
	s, err := stir.NewSigner(stir.SignerConfig{Key: p.KeyPEM, Cert: p.CertPEM, CertURL: p.URL, OrigID: "0f4c2a6e-4f0e-4b6b-9a57-3b8d2c6b1e11"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifier fetches through the webhook guard with loopback allowed, as internal/app wires it.
func verifier(t *testing.T, p *stirtest.PKI, allowLoopback bool) *stir.Verifier {
	t.Helper()
	g := &events.Guard{}
	if allowLoopback {
		g.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	v, err := stir.NewVerifier(stir.VerifierConfig{Roots: p.Roots, Client: g.Client(2 * time.Second), AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSignVerify(t *testing.T) {
	p := stirtest.New(t)
	id, err := signer(t, p).Sign(orig, dest, stir.AttestFull)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, ";info=<"+p.URL+">;alg=ES256;ppt=shaken") {
		t.Fatalf("identity %s", id)
	}
	v := verifier(t, p, true)
	ctx := context.Background()
	if r := v.Verify(ctx, id, orig, dest); r.Verstat != stir.Passed || r.Attest != "A" {
		t.Fatalf("verify: %+v", r)
	}
	// Cached: a second call does not fetch again.
	v.Verify(ctx, id, orig, dest)
	if n := p.Fetches.Load(); n != 1 {
		t.Fatalf("fetched %d times", n)
	}
	if r := v.Verify(ctx, "", orig, dest); r.Verstat != stir.NoValidation {
		t.Fatalf("no header: %+v", r)
	}
	for name, c := range map[string]struct{ id, orig, dest string }{
		"other caller":  {id, "+14155550101", dest},
		"other callee":  {id, orig, "+12125550198"},
		"tampered":      {tamper(t, id, `"A"`, `"B"`), orig, dest},
		"bad signature": {flipSig(id), orig, dest},
		"garbage":       {"abc", orig, dest},
	} {
		if r := v.Verify(ctx, c.id, c.orig, c.dest); r.Verstat != stir.Failed {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// An old PASSporT (replay) fails.
	v.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if r := v.Verify(ctx, id, orig, dest); r.Verstat != stir.Failed || !strings.Contains(r.Reason, "iat") {
		t.Fatalf("stale: %+v", r)
	}
}

// TestGuardRefusesLoopbackX5U: without an allowance, an x5u on telgw's own network is not
// fetched (SSRF), and https is required unless AllowHTTP.
func TestGuardRefusesLoopbackX5U(t *testing.T) {
	p := stirtest.New(t)
	id, _ := signer(t, p).Sign(orig, dest, stir.AttestFull)
	r := verifier(t, p, false).Verify(context.Background(), id, orig, dest)
	if r.Verstat != stir.Failed || !strings.Contains(r.Reason, "not allowed") || p.Fetches.Load() != 0 {
		t.Fatalf("%+v fetches %d", r, p.Fetches.Load())
	}
	strict, _ := stir.NewVerifier(stir.VerifierConfig{Roots: p.Roots, Client: (&events.Guard{AllowPrivate: true}).Client(time.Second)})
	if r := strict.Verify(context.Background(), id, orig, dest); r.Verstat != stir.Failed || !strings.Contains(r.Reason, "https") {
		t.Fatalf("http x5u: %+v", r)
	}
}

// TestNodeVerifies checks telgw's PASSporT with an independent implementation (node:crypto):
// claims, x5u certificate issued by the anchor, ES256 signature; a tampered one fails.
func TestNodeVerifies(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node not installed")
		}
		t.Skip("node not installed")
	}
	p := stirtest.New(t)
	id, err := signer(t, p).Sign(orig, dest, stir.AttestPartial)
	if err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("testdata/verify.mjs")
	run := func(id string) (string, error) {
		out, err := exec.Command(node, script, id, orig, dest, p.RootFile).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := run(id); err != nil || out != "ok B" {
		t.Fatalf("node: %v %s", err, out)
	}
	if out, err := run(tamper(t, id, orig[1:], "14155550199")); err == nil {
		t.Fatalf("tampered passport verified: %s", out)
	}
	if out, err := run(flipSig(id)); err == nil {
		t.Fatalf("bad signature verified: %s", out)
	}
}

// tamper replaces old with new in the PASSporT's payload, keeping the signature.
func tamper(t *testing.T, id, old, new string) string {
	t.Helper()
	jws, rest, _ := strings.Cut(id, ";")
	parts := strings.Split(jws, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s not in %s", old, b)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(b), old, new, 1)))
	return strings.Join(parts, ".") + ";" + rest
}

func flipSig(id string) string {
	jws, rest, _ := strings.Cut(id, ";")
	i := strings.LastIndexByte(jws, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(jws[i+1:])
	sig[5] ^= 1
	return jws[:i+1] + base64.RawURLEncoding.EncodeToString(sig) + ";" + rest
}

func TestParseIdentity(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"a.b.c;info=<https://cert.example/x.pem>;alg=ES256;ppt=shaken", true},
		{"a.b.c ; info=<https://x/y> ; ppt=\"shaken\"", true},
		{"a.b.c", false},
		{"a.b;info=<https://x/y>", false},
		{"a.b.c;info=https://x/y", false},
		{"a.b+.c;info=<https://x/y>", false},
		{strings.Repeat("a", stir.MaxHeaderLen) + ".b.c;info=<x>", false},
	} {
		_, err := stir.ParseIdentity(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v", c.in, err)
		}
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJFUzI1NiJ9.eyJhdHRlc3QiOiJBIn0.c2ln;info=<https://cert.example.org/passport.pem>;alg=ES256;ppt=shaken",
		"a.b.c;info=<>", "a.b.c;;;", ";info=<x>", "a..c;info=<x>", "a.b.c;info=<x;alg=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := stir.ParseIdentity(s)
		if err != nil {
			return
		}
		if id.Info == "" || strings.Count(id.JWS, ".") != 2 {
			t.Fatalf("accepted %q as %+v", s, id)
		}
		_, _, _ = id.Decode()
		// What telgw writes, it reads back.
		back, err := stir.ParseIdentity(id.String())
		if err != nil || back.JWS != id.JWS {
			t.Fatalf("round trip of %q: %+v %v", s, back, err)
		}
	})
}
