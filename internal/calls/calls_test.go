package calls

import (
	"context"
	"errors"
	"testing"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/problem"
)

// fakeNumbers is the number inventory the routing decision reads.
type fakeNumbers map[string]numbers.Routing

func (f fakeNumbers) NumberRoute(_ context.Context, e164 string) (numbers.Routing, error) {
	if e164 == "+19995550000" {
		return numbers.Routing{}, errors.New("store down")
	}
	r, ok := f[e164]
	if !ok {
		return numbers.Routing{}, problem.ErrNotFound
	}
	return r, nil
}

func route(t *testing.T, s string) numbers.Route {
	t.Helper()
	r, err := numbers.ParseRoute(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestNumberRouter(t *testing.T) {
	t.Parallel()
	both := numbers.Capabilities{Calling: numbers.CapBoth}
	inv := fakeNumbers{
		"+14255550101": {Caps: both, Route: route(t, "sip:pbx@203.0.113.5")},
		"+14255550102": {Caps: both, Route: route(t, "user:8:acs:r_1")},
		"+14255550103": {Caps: both, Route: route(t, "bot:https://app.example/calls")},
		"+14255550104": {Caps: both},
		"+14255550105": {Caps: numbers.Capabilities{Calling: numbers.CapNone, SMS: numbers.CapBoth}, Route: route(t, "sip:pbx@203.0.113.5")},
		"+14255550106": {Caps: numbers.Capabilities{Calling: numbers.CapOutbound}},
	}
	r := NumberRouter{Numbers: inv}
	for _, tc := range []struct {
		e164    string
		want    Route
		wantErr error
	}{
		{"+14255550101", SIPRoute{URI: "sip:pbx@203.0.113.5"}, nil},
		{"+14255550102", UserRoute{User: "8:acs:r_1"}, nil},
		{"+14255550103", BotRoute{URL: "https://app.example/calls"}, nil},
		{"+14255550104", nil, nil},
		{"+14255550105", nil, ErrUnknownNumber},
		{"+14255550106", nil, nil},
		{"+14255550199", nil, ErrUnknownNumber},
	} {
		got, err := r.CallRoute(context.Background(), tc.e164)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("CallRoute(%s) = %#v, %v; want %#v, %v", tc.e164, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := r.CallRoute(context.Background(), "+19995550000"); err == nil || errors.Is(err, ErrUnknownNumber) {
		t.Errorf("a store error must pass through, got %v", err)
	}
	if _, err := (NumberRouter{}).CallRoute(context.Background(), "+14255550101"); !errors.Is(err, ErrUnknownNumber) {
		t.Errorf("no inventory: %v", err)
	}
}

// memCreds is a CredentialStore in memory.
type memCreds map[string]Credential

func (m memCreds) SIPCredential(_ context.Context, u string) (Credential, error) {
	c, ok := m[u]
	if !ok {
		return Credential{}, ErrUnknownCredential
	}
	return c, nil
}
func (m memCreds) SIPCredentialPut(_ context.Context, c Credential) error {
	m[c.Username] = c
	return nil
}
func (m memCreds) SIPCredentialDelete(_ context.Context, u string) error {
	if _, ok := m[u]; !ok {
		return problem.ErrNotFound
	}
	delete(m, u)
	return nil
}
func (m memCreds) SIPCredentialList(context.Context) ([]Credential, error) {
	var out []Credential
	for _, c := range m {
		out = append(out, c)
	}
	return out, nil
}

func TestCredentialService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := memCreds{}
	s := CredentialService{Store: store, Realm: "pbx.example.com",
		Router: NumberRouter{Numbers: fakeNumbers{"+14255550101": {Caps: numbers.Capabilities{Calling: numbers.CapBoth}}}}}
	c, err := s.Create(ctx, "alice", "correct-horse", []string{"1 (425) 555-0101"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != "" || c.HA1MD5 != HA1("MD5", "alice", "pbx.example.com", "correct-horse") ||
		c.HA1SHA256 != HA1("SHA-256", "alice", "pbx.example.com", "correct-horse") || len(c.Numbers) != 1 || c.Numbers[0] != "+14255550101" {
		t.Fatalf("created %+v", c)
	}
	if _, err := store.SIPCredential(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pass string
		nums             []string
		field            string
	}{
		{"empty username", "", "correct-horse", []string{"+14255550101"}, "username"},
		{"username with @", "a@b", "correct-horse", []string{"+14255550101"}, "username"},
		{"short password", "bob", "short", []string{"+14255550101"}, "password"},
		{"no numbers", "bob", "correct-horse", nil, "numbers"},
		{"not a number", "bob", "correct-horse", []string{"pizza"}, "numbers[0]"},
		{"not ours", "bob", "correct-horse", []string{"+14255550101", "+14255550199"}, "numbers[1]"},
	} {
		_, err := s.Create(ctx, tc.user, tc.pass, tc.nums)
		if problem.KindOf(err) != problem.KindInvalid || !containsField(err, tc.field) {
			t.Errorf("%s: %v, want invalid %s", tc.name, err, tc.field)
		}
	}
	if err := s.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "alice"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := (CredentialService{Realm: "x"}).Create(ctx, "a", "correct-horse", []string{"+14255550101"}); problem.KindOf(err) != problem.KindUnsupported {
		t.Fatalf("no store: %v", err)
	}
}

func containsField(err error, field string) bool {
	var p *problem.Error
	return errors.As(err, &p) && p.Target == field
}
