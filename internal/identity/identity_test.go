package identity

import (
	"context"
	"crypto/md5" //nolint:gosec // test of RFC 2617 HA1
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/keys"
	"github.com/telgw/telgw/internal/problem"
)

// memStore is a hand-written fake of Store and keys.Store.
type memStore struct {
	mu       sync.Mutex
	ids      map[string]Identity
	settings map[string]string
	digests  []DigestCredential
}

func newMem() *memStore { return &memStore{ids: map[string]Identity{}, settings: map[string]string{}} }

func (m *memStore) IdentityCreate(_ context.Context, id Identity) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ids[id.ID] = id
	return nil
}

func (m *memStore) IdentityGet(_ context.Context, id string) (Identity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.ids[id]
	if !ok {
		return Identity{}, problem.ErrNotFound
	}
	return v, nil
}

func (m *memStore) IdentityDelete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ids[id]; !ok {
		return problem.ErrNotFound
	}
	delete(m.ids, id)
	return nil
}

func (m *memStore) IdentityRevokeTokens(_ context.Context, id string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.ids[id]
	if !ok {
		return 0, problem.ErrNotFound
	}
	v.TokenGeneration++
	m.ids[id] = v
	return v.TokenGeneration, nil
}

func (m *memStore) SettingGet(_ context.Context, k string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.settings[k]
	if !ok {
		return "", problem.ErrNotFound
	}
	return v, nil
}

func (m *memStore) SettingPut(_ context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings[k] = v
	return nil
}

func (m *memStore) SettingPutIfAbsent(ctx context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.settings[k]; !ok {
		m.settings[k] = v
	}
	return nil
}

func newService(t *testing.T) (*Service, *memStore) {
	t.Helper()
	m := newMem()
	ring, err := keys.NewRing(context.Background(), m, "", "res-1")
	if err != nil {
		t.Fatal(err)
	}
	return New(m, ring), m
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	id, tok, err := svc.Create(ctx, []Scope{ScopeVoIP, ScopeChat}, 60*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.ID, "8:acs:res-1_") || tok == nil {
		t.Fatalf("unexpected identity %q / token %v", id.ID, tok)
	}
	if d := time.Until(tok.ExpiresOn); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("expiry %v, want ~60m", d)
	}
	c, err := svc.Verify(ctx, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != id.ID || !c.HasScope(ScopeVoIP) || !c.HasScope(ScopeChat) || c.HasScope(ScopeVoIPJoin) {
		t.Fatalf("claims %+v", c)
	}

	// Revocation invalidates earlier tokens, not later ones.
	if err := svc.RevokeTokens(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, tok.Token); problem.KindOf(err) != problem.KindUnauthorized {
		t.Fatalf("revoked token verified: %v", err)
	}
	tok2, err := svc.IssueToken(ctx, id.ID, []Scope{ScopeVoIP}, DefaultExpiry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, tok2.Token); err != nil {
		t.Fatalf("fresh token after revoke: %v", err)
	}

	// Deletion invalidates everything and the identity is gone.
	if err := svc.Delete(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Verify(ctx, tok2.Token); problem.KindOf(err) != problem.KindUnauthorized {
		t.Fatalf("token of deleted identity verified: %v", err)
	}
	if _, err := svc.IssueToken(ctx, id.ID, []Scope{ScopeVoIP}, DefaultExpiry); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("issue for deleted identity: %v", err)
	}
	if err := svc.Delete(ctx, id.ID); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	other, _ := newService(t) // a different signing key
	_, tok, err := svc.Create(ctx, []Scope{ScopeVoIP}, MinExpiry)
	if err != nil {
		t.Fatal(err)
	}
	_, foreign, err := other.Create(ctx, []Scope{ScopeVoIP}, MinExpiry)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok.Token, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	for name, s := range map[string]string{"garbage": "abc", "empty": "", "foreign key": foreign.Token, "tampered": tampered} {
		if _, err := svc.Verify(ctx, s); problem.KindOf(err) != problem.KindUnauthorized {
			t.Errorf("%s: verified or wrong kind: %v", name, err)
		}
	}
	// Expired: move the clock past expiry.
	svc.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := svc.Verify(ctx, tok.Token); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}

func TestParseScopesAndExpiry(t *testing.T) {
	t.Parallel()
	if _, err := ParseScopes("scopes", []string{"voip", "teleport"}); problem.KindOf(err) != problem.KindInvalid {
		t.Errorf("bad scope accepted: %v", err)
	} else if pe, _ := problem.As(err); pe.Target != "scopes[1]" {
		t.Errorf("target %q", pe.Target)
	}
	got, err := ParseScopes("scopes", []string{"voip", "chat", "voip"})
	if err != nil || len(got) != 2 {
		t.Errorf("dedupe: %v %v", got, err)
	}
	for _, m := range []int{59, 1441, 0, -1} {
		if _, err := ParseExpiry(&m); problem.KindOf(err) != problem.KindInvalid {
			t.Errorf("expiry %d accepted", m)
		}
	}
	for _, m := range []int{60, 1440, 720} {
		if d, err := ParseExpiry(&m); err != nil || d != time.Duration(m)*time.Minute {
			t.Errorf("expiry %d: %v %v", m, d, err)
		}
	}
	if d, _ := ParseExpiry(nil); d != DefaultExpiry {
		t.Errorf("default %v", d)
	}
}

func (m *memStore) IdentityDigestAdd(_ context.Context, cs ...DigestCredential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.digests = append(m.digests, cs...)
	return nil
}

func (m *memStore) IdentityDigests(_ context.Context, id string, now time.Time) ([]DigestCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DigestCredential
	for _, c := range m.digests {
		if c.Identity == id && c.ExpiresAt.After(now) && c.Generation == m.ids[id].TokenGeneration {
			out = append(out, c)
		}
	}
	return out, nil
}

func TestDigestHA1s(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc, _ := newService(t)
	id, tok, err := svc.Create(ctx, []Scope{ScopeVoIP}, MinExpiry)
	if err != nil {
		t.Fatal(err)
	}
	want := hexHash(md5.New(), id.ID+":"+DigestRealm+":"+tok.Token)
	got, err := svc.DigestHA1s(ctx, id.ID, "MD5")
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("HA1s %v %v, want [%s]", got, err, want)
	}
	if got, _ := svc.DigestHA1s(ctx, id.ID, "SHA-256"); len(got) != 1 || len(got[0]) != 64 {
		t.Fatalf("SHA-256 HA1s %v", got)
	}
	_ = svc.RevokeTokens(ctx, id.ID)
	if got, _ := svc.DigestHA1s(ctx, id.ID, "MD5"); len(got) != 0 {
		t.Fatalf("revoked token still has digest credentials: %v", got)
	}
	// Tokens without voip do not become SIP passwords.
	chat, _, _ := svc.Create(ctx, []Scope{ScopeChat}, MinExpiry)
	if got, _ := svc.DigestHA1s(ctx, chat.ID, "MD5"); len(got) != 0 {
		t.Fatalf("chat token has digest credentials: %v", got)
	}
}
