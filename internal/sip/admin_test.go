package sip

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/telgw/telgw/internal/problem"
)

// memStore is a hand-written in-memory Store.
type memStore struct {
	mu      sync.Mutex
	routing *Routing
	creds   map[string]Credential
	cdrs    []CDR
}

func (m *memStore) CDRInsert(_ context.Context, c CDR) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cdrs = append(m.cdrs, c)
	return nil
}

func (m *memStore) CDRList(context.Context, CDRListParams) ([]CDR, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CDR(nil), m.cdrs...), nil
}

func (m *memStore) SIPRoutingGet(context.Context) (Routing, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.routing == nil {
		return Routing{}, false, nil
	}
	return *m.routing, true, nil
}

func (m *memStore) SIPRoutingPut(_ context.Context, r Routing) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routing = &r
	return nil
}

func (m *memStore) SIPCredential(_ context.Context, u string) (Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.creds[u]
	if !ok {
		return c, ErrUnknownCredential
	}
	return c, nil
}

func (m *memStore) SIPCredentialPut(_ context.Context, c Credential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds[c.Username] = c
	return nil
}

func (m *memStore) SIPCredentialDelete(_ context.Context, u string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.creds[u]; !ok {
		return problem.ErrNotFound
	}
	delete(m.creds, u)
	return nil
}

func (m *memStore) SIPCredentialList(context.Context) ([]Credential, error) { return nil, nil }

type ownNumbers map[string]bool

func (o ownNumbers) CallRoute(_ context.Context, e string) (Route, error) {
	if !o[e] {
		return nil, ErrUnknownNumber
	}
	return nil, nil
}

func TestRoutingAdmin(t *testing.T) {
	st := &memStore{creds: map[string]Credential{}}
	cfg := Config{Addr: "127.0.0.1:0", Trunks: []TrunkConfig{{Name: "carrier1", Address: "192.0.2.1:5060", Username: "u", Password: "p",
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}}
	s, err := New(cfg, Deps{Router: ownNumbers{"+14155550100": true}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	// First start: the configured trunks are stored.
	if err := s.Admin().LoadRouting(ctx); err != nil {
		t.Fatal(err)
	}
	if st.routing == nil || len(st.routing.Trunks) != 1 || st.routing.Trunks[0] != (ACSTrunk{FQDN: "carrier1", Port: 5060}) {
		t.Fatalf("stored %+v", st.routing)
	}
	port := 5080
	routes := []OutboundRoute{{Name: "us", NumberPattern: `\+1\d{10}`, Trunks: []string{"carrier1", "sbc.example.com"}}}
	r, err := s.Admin().PatchRouting(ctx, RoutingPatch{Trunks: map[string]*int{"sbc.example.com": &port, "carrier1": &port}, Routes: &routes})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trunks) != 2 || r.Trunks[0].Port != 5080 || len(r.Routes) != 1 {
		t.Fatalf("routing %+v", r)
	}
	// The configured trunk keeps its details (credentials, allow-list) with the new port.
	for _, ts := range s.Admin().Trunks() {
		if ts.Name == "carrier1" && (ts.Address != "192.0.2.1:5080" || ts.Password != "p" || len(ts.Allow) != 1) {
			t.Fatalf("carrier1 %+v", ts)
		}
	}
	if got := s.trunks.outbound("+14155550123"); len(got) != 2 || got[0].Name != "carrier1" {
		t.Fatalf("outbound trunks %v", got)
	}
	for name, p := range map[string]RoutingPatch{
		"unknown trunk": {Routes: &[]OutboundRoute{{Name: "x", NumberPattern: ".*", Trunks: []string{"nope"}}}},
		"bad pattern":   {Routes: &[]OutboundRoute{{Name: "x", NumberPattern: "("}}},
		"no name":       {Routes: &[]OutboundRoute{{NumberPattern: ".*"}}},
		"bad port":      {Trunks: map[string]*int{"a.example": new(int)}},
		"bad fqdn":      {Trunks: map[string]*int{"a b": &port}},
	} {
		if _, err := s.Admin().PatchRouting(ctx, p); problem.KindOf(err) != problem.KindInvalid {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	// Deleting a trunk a route uses is refused; deleting both works.
	if _, err := s.Admin().PatchRouting(ctx, RoutingPatch{Trunks: map[string]*int{"sbc.example.com": nil}}); err == nil {
		t.Fatal("deleted a trunk still routed")
	}
	empty := []OutboundRoute{}
	if r, err := s.Admin().PatchRouting(ctx, RoutingPatch{Trunks: map[string]*int{"sbc.example.com": nil}, Routes: &empty}); err != nil || len(r.Trunks) != 1 {
		t.Fatalf("%+v %v", r, err)
	}
	// A restart applies the stored routing.
	s2, err := New(Config{Addr: "127.0.0.1:0", Trunks: cfg.Trunks}, Deps{Router: ownNumbers{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Admin().LoadRouting(ctx); err != nil || s2.Admin().Routing().Trunks[0].Port != 5080 {
		t.Fatalf("%+v %v", s2.Admin().Routing(), err)
	}
}

func TestCredentialAdmin(t *testing.T) {
	st := &memStore{creds: map[string]Credential{}}
	s, err := New(Config{Addr: "127.0.0.1:0"}, Deps{Router: ownNumbers{"+14155550100": true}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c, err := s.Admin().CreateCredential(ctx, "acme", "long-enough", []string{"4155550100"})
	if err != nil || c.Numbers[0] != "+14155550100" || c.Password != "" || c.HA1MD5 == "" {
		t.Fatalf("%+v %v", c, err)
	}
	for name, args := range map[string][3]string{
		"short password": {"acme", "short", "+14155550100"},
		"not ours":       {"acme", "long-enough", "+14155550199"},
		"bad user":       {"a b", "long-enough", "+14155550100"},
	} {
		if _, err := s.Admin().CreateCredential(ctx, args[0], args[1], []string{args[2]}); problem.KindOf(err) != problem.KindInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := s.Admin().DeleteCredential(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.Admin().DeleteCredential(ctx, "acme"); !errors.Is(err, problem.ErrNotFound) {
		t.Fatal(err)
	}
}
