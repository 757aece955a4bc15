package digest

import (
	"errors"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	icholy "github.com/icholy/digest"
)

func answer(t *testing.T, chal, method, uri, user, pass string, nc int) string {
	t.Helper()
	c, err := icholy.ParseChallenge(chal)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := icholy.Digest(c, icholy.Options{Method: method, URI: uri, Username: user, Password: pass, Count: nc, Cnonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func uri(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

const target = "sip:+14155550123@telgw.example"

func TestVerify(t *testing.T) {
	t.Parallel()
	s := New("telgw", 0)
	for i, alg := range []string{"MD5", "SHA-256"} {
		chal := s.Challenge(alg, false)
		h := answer(t, chal, "INVITE", target, "alice", "secret", 1)
		if err := s.Verify(h, "BYE", uri(t, target), "secret"); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong method: %v", alg, err)
		}
		if err := s.Verify(h, "INVITE", uri(t, target), "wrong"); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong password: %v", alg, err)
		}
		if err := s.Verify(h, "INVITE", uri(t, target), "secret"); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if Username(h) != "alice" {
			t.Fatalf("username %q", Username(h))
		}
		// The same credentials again are a replay (RFC 7616 §3.4.5): stale, challenge again.
		if err := s.Verify(h, "INVITE", uri(t, target), "secret"); !errors.Is(err, ErrStale) {
			t.Fatalf("%s replay: %v", alg, err)
		}
		// The client's next request on the same nonce, nc 2: accepted (no new challenge).
		h2 := answer(t, chal, "INVITE", target, "alice", "secret", 2)
		ha1 := func(a string) string { return HA1(a, "alice", "telgw", "secret") }
		if err := s.VerifyHA1(h2, "INVITE", uri(t, target), ha1); err != nil {
			t.Fatalf("%s ha1, nc 2: %v", alg, err)
		}
		h3 := answer(t, chal, "INVITE", target, "alice", "secret", 3)
		if err := s.VerifyHA1(h3, "INVITE", uri(t, target), func(string) string { return HA1(alg, "alice", "telgw", "x") }); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong ha1: %v", alg, err)
		}
		// Another Request-URI than the credentials name: refused, whatever the response.
		other := "sip:+14155550199@telgw.example"
		if err := s.Verify(h3, "INVITE", uri(t, other), "secret"); !errors.Is(err, ErrURI) {
			t.Fatalf("%s other uri: %v", alg, err)
		}
		if n := s.nonces.Len(); n != i+1 {
			t.Fatalf("%d nonces remembered, want %d", n, i+1)
		}
	}
	if err := s.Verify("", "INVITE", uri(t, target), "x"); !errors.Is(err, ErrMissing) {
		t.Fatal(err)
	}
	if err := s.Verify("Digest garbage", "INVITE", uri(t, target), "x"); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// Another server's nonce (another node, or before a restart) and an expired one are stale.
	other := New("telgw", 0)
	h := answer(t, other.Challenge("", false), "INVITE", target, "alice", "secret", 1)
	if err := s.Verify(h, "INVITE", uri(t, target), "secret"); !errors.Is(err, ErrStale) {
		t.Fatalf("foreign nonce: %v", err)
	}
	h = answer(t, s.Challenge("", false), "INVITE", target, "alice", "secret", 1)
	s.nonces.now = func() time.Time { return time.Now().Add(DefaultNonceTTL + time.Second) }
	if err := s.Verify(h, "INVITE", uri(t, target), "secret"); !errors.Is(err, ErrStale) {
		t.Fatalf("old nonce: %v", err)
	}
}

// TestVerifyWithoutQOP: an RFC 2069 answer (no qop, no nc) is good once.
func TestVerifyWithoutQOP(t *testing.T) {
	t.Parallel()
	s := New("telgw", 0)
	c, err := icholy.ParseChallenge(s.Challenge("", false))
	if err != nil {
		t.Fatal(err)
	}
	c.QOP = nil
	cred, err := icholy.Digest(c, icholy.Options{Method: "INVITE", URI: target, Username: "alice", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(cred.String(), "INVITE", uri(t, target), "secret"); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(cred.String(), "INVITE", uri(t, target), "secret"); !errors.Is(err, ErrStale) {
		t.Fatalf("replay without qop: %v", err)
	}
}

func TestNonceForgedOrTampered(t *testing.T) {
	t.Parallel()
	n := NewNonces([]byte("k"), time.Minute)
	good := n.New()
	if n.Check(good) != NonceOK {
		t.Fatal("own nonce rejected")
	}
	b := []byte(good)
	b[3] ^= 1 // another issue time
	for _, bad := range []string{string(b), "", "x", good + "A", NewNonces([]byte("k"), time.Minute).New()} {
		if n.Check(bad) != NonceForeign {
			t.Fatalf("%q accepted", bad)
		}
	}
	if !n.Use(good, 1) || n.Use(good, 1) || !n.Use(good, 2) {
		t.Fatal("nonce-counts not tracked")
	}
	for i := uint64(3); i < maxCountsPerNonce+10; i++ {
		n.Use(good, i)
	}
	if n.Use(good, maxCountsPerNonce+20) {
		t.Fatal("a nonce is good for unbounded counts")
	}
	// Past the TTL the record is swept.
	n.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	n.Use(n.New(), 1)
	if l := n.Len(); l != 1 {
		t.Fatalf("%d nonces remembered after their TTL, want 1", l)
	}
}

func TestSameURI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"sip:+14155550123@telgw", "sip:+14155550123@telgw", true},
		{"sip:+14155550123@TELGW", "SIP:+14155550123@telgw", true},
		{"sip:%2B14155550123@telgw", "sip:+14155550123@telgw", true},
		{"sip:+14155550123@telgw;transport=tcp", "sip:+14155550123@telgw;transport=TCP", true},
		{"sip:+14155550123@telgw;foo=1", "sip:+14155550123@telgw", true},
		{"sip:+14155550123@telgw", "sip:+14155550124@telgw", false},
		{"sip:+14155550123@telgw", "sip:+14155550123@telgw:5060", false},
		{"sip:+14155550123@telgw", "sips:+14155550123@telgw", false},
		{"sip:+14155550123@telgw", "sip:+14155550123@other", false},
		{"sip:+14155550123@telgw;transport=tcp", "sip:+14155550123@telgw", false},
		{"sip:+14155550123@telgw;user=phone", "sip:+14155550123@telgw", false},
		{"sip:+14155550123@telgw;foo=1", "sip:+14155550123@telgw;foo=2", false},
		{"sip:+14155550123@telgw?subject=x", "sip:+14155550123@telgw", false},
		{"tel:+1-415-555-0123", "tel:+14155550123", true},
		{"tel:+14155550123", "tel:+14155550124", false},
		{"tel:+14155550123", "sip:+14155550123@telgw", false},
		{"", "sip:a@b", false},
		{"garbage", "sip:a@b", false},
	} {
		if got := SameURI(tc.a, uri(t, tc.b)); got != tc.same {
			t.Errorf("SameURI(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// FuzzVerify: no credentials header crashes Verify, and none is accepted for a URI it was
// not computed for.
func FuzzVerify(f *testing.F) {
	s := New("telgw", 0)
	f.Add(`Digest username="alice", realm="telgw", nonce="` + s.nonces.New() + `", uri="sip:a@b", response="00", qop=auth, nc=00000001, cnonce="x"`)
	f.Add("Digest garbage")
	f.Add(`Digest uri="tel:+1;x=%zz"`)
	f.Fuzz(func(t *testing.T, h string) {
		if err := s.Verify(h, "INVITE", sip.Uri{Scheme: "sip", User: "x", Host: "y"}, "secret"); err == nil {
			t.Fatalf("accepted %q", h)
		}
		_ = s.nonces.Check(h)
	})
}

// FuzzSameURI: any digest-uri is compared without panicking, and a SIP URI is the same as itself.
func FuzzSameURI(f *testing.F) {
	for _, s := range []string{"sip:+14155550123@telgw;transport=tcp", "tel:+1-415-555-0123", "sips:a:b@[::1]:5061;maddr=x?h=v", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil {
			_ = SameURI(s, sip.Uri{Scheme: "sip", Host: "x"})
			return
		}
		_ = SameURI(s, u)
	})
}
