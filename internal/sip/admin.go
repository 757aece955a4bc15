package sip

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/telgw/telgw/internal/calls"
	"github.com/telgw/telgw/internal/problem"
)

// Admin is the operator and ACS-facing management of the SIP side: routing (ACS SipRouting),
// endpoint credentials, the call log and trunk status. Each persists through Deps.Store when
// one is configured. Service.Admin returns it.
type Admin struct {
	cfg       *Config
	deps      Deps
	trunks    *trunkTable
	routingMu sync.Mutex // serializes PatchRouting
}

// RoutingPatch is an ACS SipConfigurationUpdate (JSON merge patch, RFC 7396): a nil trunk
// deletes it, a non-nil one adds or changes it; Routes, when non-nil, replace all routes.
type RoutingPatch struct {
	Trunks map[string]*int // FQDN -> sipSignalingPort (nil: delete)
	Routes *[]OutboundRoute
}

// LoadRouting applies the stored ACS routing; with none stored it stores the configured one,
// so the ACS API shows the operator's config trunks from the first start.
func (s *Admin) LoadRouting(ctx context.Context) error {
	if s.deps.Store == nil {
		return nil
	}
	r, ok, err := s.deps.Store.SIPRoutingGet(ctx)
	if err != nil {
		return fmt.Errorf("load sip routing: %w", err)
	}
	if !ok {
		return s.deps.Store.SIPRoutingPut(ctx, s.Routing())
	}
	return s.apply(r)
}

// Routing returns the current configuration as the ACS API shows it.
func (s *Admin) Routing() Routing {
	trunks, routes := s.trunks.routing()
	r := Routing{Routes: routes}
	for _, t := range trunks {
		r.Trunks = append(r.Trunks, ACSTrunk{FQDN: t.Name, Port: portOf(t.Address)})
	}
	return r
}

// PatchRouting merges p into the routing, validates it (ports, patterns, routes naming only
// known trunks), stores it and applies it to new calls.
func (s *Admin) PatchRouting(ctx context.Context, p RoutingPatch) (Routing, error) {
	s.routingMu.Lock()
	defer s.routingMu.Unlock()
	cur := s.Routing()
	trunks := map[string]int{}
	for _, t := range cur.Trunks {
		trunks[t.FQDN] = t.Port
	}
	for fqdn, port := range p.Trunks {
		if port == nil {
			delete(trunks, fqdn)
			continue
		}
		if fqdn == "" || len(fqdn) > 249 || strings.ContainsAny(fqdn, " /:@;") {
			return Routing{}, problem.Invalid("trunks", "%q is not a trunk FQDN", fqdn).WithCode("InvalidTrunk")
		}
		if *port < 1 || *port > 65535 {
			return Routing{}, problem.Invalid("trunks."+fqdn+".sipSignalingPort", "%d is not a port", *port).WithCode("InvalidTrunk")
		}
		trunks[fqdn] = *port
	}
	next := Routing{Routes: cur.Routes}
	if p.Routes != nil {
		next.Routes = *p.Routes
	}
	for fqdn, port := range trunks {
		next.Trunks = append(next.Trunks, ACSTrunk{FQDN: fqdn, Port: port})
	}
	slices.SortFunc(next.Trunks, func(a, b ACSTrunk) int { return strings.Compare(a.FQDN, b.FQDN) })
	for i := range next.Routes {
		rt := &next.Routes[i]
		if rt.Name == "" || len(rt.Name) > 256 {
			return Routing{}, problem.Invalid(fmt.Sprintf("routes[%d].name", i), "is required (at most 256 characters)").WithCode("InvalidRoute")
		}
		if err := rt.Compile(); err != nil || rt.NumberPattern == "" {
			return Routing{}, problem.Invalid(fmt.Sprintf("routes[%d].numberPattern", i), "%q is not a regular expression", rt.NumberPattern).WithCode("InvalidRoute")
		}
		for _, tn := range rt.Trunks {
			if _, ok := trunks[tn]; !ok {
				return Routing{}, problem.Invalid(fmt.Sprintf("routes[%d].trunks", i), "trunk %q is not configured", tn).WithCode("UnknownTrunk")
			}
		}
	}
	if s.deps.Store != nil {
		if err := s.deps.Store.SIPRoutingPut(ctx, next); err != nil {
			return Routing{}, err
		}
	}
	if err := s.apply(next); err != nil {
		return Routing{}, err
	}
	return s.Routing(), nil
}

// apply turns an ACS routing into trunks: a trunk named like a configured one keeps that
// trunk's details (credentials, allow-list, limits, format) with the ACS port; others get
// defaults and Address FQDN:port.
func (s *Admin) apply(r Routing) error {
	byName := map[string]TrunkConfig{}
	for _, t := range s.cfg.Trunks {
		byName[t.Name] = t
	}
	var trunks []TrunkConfig
	for _, at := range r.Trunks {
		t, ok := byName[at.FQDN]
		if ok {
			t.Address = net.JoinHostPort(hostOf(t.Address), strconv.Itoa(at.Port))
		} else {
			t = TrunkConfig{Name: at.FQDN, Address: net.JoinHostPort(at.FQDN, strconv.Itoa(at.Port))}
		}
		trunks = append(trunks, t)
	}
	return s.SetRouting(trunks, r.Routes)
}

// credentials is the call domain's credential service over this SIP service's store, router
// and realm (the CLI builds the same one from the configuration).
func (s *Admin) credentials() calls.CredentialService {
	cs := calls.CredentialService{Router: s.deps.Router, Realm: s.cfg.Realm}
	if s.deps.Store != nil {
		cs.Store = s.deps.Store
	}
	return cs
}

// CreateCredential makes (or replaces) a customer endpoint's digest credential, bound to
// numbers that must be telgw's (calls.CredentialService.Create).
func (s *Admin) CreateCredential(ctx context.Context, username, password string, numbers []string) (Credential, error) {
	return s.credentials().Create(ctx, username, password, numbers)
}

// DeleteCredential removes an endpoint credential (problem.ErrNotFound when absent).
func (s *Admin) DeleteCredential(ctx context.Context, username string) error {
	return s.credentials().Delete(ctx, username)
}

// ListCredentials lists endpoint credentials (without secrets beyond the HA1s).
func (s *Admin) ListCredentials(ctx context.Context) ([]Credential, error) {
	return s.credentials().List(ctx)
}

// Calls lists CDRs, newest first.
func (s *Admin) Calls(ctx context.Context, p CDRListParams) ([]CDR, error) {
	if s.deps.Store == nil {
		return nil, nil
	}
	return s.deps.Store.CDRList(ctx, p)
}

// TrunkStatus is a trunk's operator view: its configuration and run-time state.
type TrunkStatus struct {
	TrunkConfig
	Up     bool
	Active int
}

// Trunks returns every trunk's status.
func (s *Admin) Trunks() []TrunkStatus {
	var out []TrunkStatus
	for _, t := range s.trunks.all() {
		out = append(out, TrunkStatus{TrunkConfig: t.TrunkConfig, Up: t.up.Load(), Active: int(t.active.Load())})
	}
	return out
}

// SetRouting replaces the trunks and outbound routes (the ACS SIP routing PATCH). Calls in
// progress keep the trunk they use.
func (s *Admin) SetRouting(trunks []TrunkConfig, routes []OutboundRoute) error {
	c := *s.cfg
	c.Trunks, c.Routes = trunks, routes
	c, err := c.provision(context.Background())
	if err != nil {
		return err
	}
	s.trunks.set(c.Trunks, c.Routes)
	return nil
}

// Realm is the digest realm of customer credentials (Config.Realm).
func (s *Admin) Realm() string { return s.cfg.Realm }

// TrunkUp reports a trunk's OPTIONS health (true when keepalives are off).
func (s *Admin) TrunkUp(name string) bool { return s.trunks.up(name) }

// Registered reports whether telgw holds a current REGISTER binding at the trunk.
func (s *Admin) Registered(name string) bool { return s.trunks.registered(name) }
