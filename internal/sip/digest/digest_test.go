package digest

import (
	"errors"
	"testing"
	"time"

	icholy "github.com/icholy/digest"
)

func answer(t *testing.T, chal, method, uri, user, pass string) string {
	t.Helper()
	c, err := icholy.ParseChallenge(chal)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := icholy.Digest(c, icholy.Options{Method: method, URI: uri, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestVerify(t *testing.T) {
	t.Parallel()
	s := New("telgw")
	for _, alg := range []string{"MD5", "SHA-256"} {
		h := answer(t, s.Challenge(alg, false), "INVITE", "sip:+14155550123@telgw", "alice", "secret")
		if err := s.Verify(h, "INVITE", "secret"); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if Username(h) != "alice" {
			t.Fatalf("username %q", Username(h))
		}
		if err := s.Verify(h, "INVITE", "wrong"); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong password: %v", alg, err)
		}
		ha1 := func(a string) string { return HA1(a, "alice", "telgw", "secret") }
		if err := s.VerifyHA1(h, "INVITE", ha1); err != nil {
			t.Fatalf("%s ha1: %v", alg, err)
		}
		if err := s.VerifyHA1(h, "INVITE", func(string) string { return HA1(alg, "alice", "telgw", "x") }); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong ha1: %v", alg, err)
		}
		if err := s.Verify(h, "BYE", "secret"); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s wrong method: %v", alg, err)
		}
	}
	if err := s.Verify("", "INVITE", "x"); !errors.Is(err, ErrMissing) {
		t.Fatal(err)
	}
	if err := s.Verify("Digest garbage", "INVITE", "x"); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// Another server's nonce (e.g. before a restart) and an expired one are stale.
	other := New("telgw")
	h := answer(t, other.Challenge("", false), "INVITE", "sip:x@y", "alice", "secret")
	if err := s.Verify(h, "INVITE", "secret"); !errors.Is(err, ErrStale) {
		t.Fatalf("foreign nonce: %v", err)
	}
	h = answer(t, s.Challenge("", false), "INVITE", "sip:x@y", "alice", "secret")
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := s.Verify(h, "INVITE", "secret"); !errors.Is(err, ErrStale) {
		t.Fatalf("old nonce: %v", err)
	}
}
