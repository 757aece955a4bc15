package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/telgw/telgw/internal/policy"
	"github.com/telgw/telgw/internal/sip"
)

// Policy is the fraud policy (internal/policy): destinations and per-subject limits. The
// store keeps the policy an operator sets with PUT /telgw/policy, which then wins over this
// section on every node.
type Policy struct {
	// Allow lists the E.164 prefixes callers may reach ("+1"); empty: any the routes match.
	Allow []string `yaml:"allow"`
	// Block lists refused prefixes. Default: the shipped premium-rate and IRSF list
	// (internal/policy/blocked.txt).
	Block []string `yaml:"block"`
	// Defaults are every subject's limits (0: no limit). Default 10 concurrent calls, 30 calls
	// a minute, 600 call-minutes and 1000 SMS a day.
	Defaults PolicyLimits `yaml:"defaults"`
	// Users, Credentials and Numbers are per-subject rules by communication user id, SIP
	// credential username and E.164 number.
	Users       map[string]PolicyRule `yaml:"users"`
	Credentials map[string]PolicyRule `yaml:"credentials"`
	Numbers     map[string]PolicyRule `yaml:"numbers"`
	// Refresh is how often a node re-reads the policy stored by the API. Default 10s.
	Refresh time.Duration `yaml:"refresh"`
}

// PolicyLimits are limits; in a rule 0 inherits the default and -1 means no limit.
type PolicyLimits struct {
	ConcurrentCalls   int `yaml:"concurrentCalls"`
	CallsPerMinute    int `yaml:"callsPerMinute"`
	CallMinutesPerDay int `yaml:"callMinutesPerDay"`
	SMSPerDay         int `yaml:"smsPerDay"`
}

// PolicyRule is one subject's rule.
type PolicyRule struct {
	// Disabled is the kill switch.
	Disabled bool `yaml:"disabled"`
	// Allow narrows the destinations of this subject.
	Allow  []string     `yaml:"allow"`
	Limits PolicyLimits `yaml:"limits"`
}

func defaultPolicy() Policy {
	d := policy.DefaultConfig()
	return Policy{Block: d.Block, Refresh: 10 * time.Second, Defaults: PolicyLimits{ConcurrentCalls: d.Defaults.ConcurrentCalls,
		CallsPerMinute: d.Defaults.CallsPerMinute, CallMinutesPerDay: d.Defaults.CallMinutesPerDay, SMSPerDay: d.Defaults.SMSPerDay}}
}

func (l PolicyLimits) limits() policy.Limits {
	return policy.Limits{ConcurrentCalls: l.ConcurrentCalls, CallsPerMinute: l.CallsPerMinute, CallMinutesPerDay: l.CallMinutesPerDay, SMSPerDay: l.SMSPerDay}
}

// ServiceConfig is the policy.Config of this section.
func (p Policy) ServiceConfig() policy.Config {
	rules := func(m map[string]PolicyRule) map[string]policy.Rule {
		if len(m) == 0 {
			return nil
		}
		out := make(map[string]policy.Rule, len(m))
		for k, r := range m {
			out[k] = policy.Rule{Disabled: r.Disabled, Allow: r.Allow, Limits: r.Limits.limits()}
		}
		return out
	}
	return policy.Config{Allow: p.Allow, Block: p.Block, Defaults: p.Defaults.limits(),
		Users: rules(p.Users), Credentials: rules(p.Credentials), Numbers: rules(p.Numbers)}
}

func (p *Policy) validate() []error {
	errs := flatten(nil, "policy.", p.ServiceConfig().Validate(), nil)
	if p.Refresh <= 0 {
		errs = append(errs, errors.New("policy.refresh: must be positive"))
	}
	return errs
}

// SIPEmergency routes emergency calls (sip.EmergencyConfig, docs/EMERGENCY.md).
type SIPEmergency struct {
	// Trunk names the trunk 911/933 go to; empty: emergency calls are answered 503.
	Trunk string `yaml:"trunk"`
	// Numbers are the emergency dial strings. Default 911, 933.
	Numbers []string `yaml:"numbers"`
	// SendLocation attaches the caller's PIDF-LO (RFC 6442); needs the trunk on tcp or tls.
	// Default false.
	SendLocation bool `yaml:"sendLocation"`
	// CallbackNumber is presented for callers with no number of their own.
	CallbackNumber string `yaml:"callbackNumber"`
	// Locations are dispatchable locations by communication user id or E.164 number.
	Locations map[string]EmergencyLocation `yaml:"locations"`
}

// EmergencyLocation is a dispatchable location (RFC 5139 civic address, optional point).
type EmergencyLocation struct {
	Country           string `yaml:"country"`
	State             string `yaml:"state"`
	County            string `yaml:"county"`
	City              string `yaml:"city"`
	Street            string `yaml:"street"`
	StreetSuffix      string `yaml:"streetSuffix"`
	HouseNumber       string `yaml:"houseNumber"`
	HouseNumberSuffix string `yaml:"houseNumberSuffix"`
	Floor             string `yaml:"floor"`
	Room              string `yaml:"room"`
	Location          string `yaml:"location"`
	Name              string `yaml:"name"`
	PostalCode        string `yaml:"postalCode"`
	Latitude          string `yaml:"latitude"`
	Longitude         string `yaml:"longitude"`
}

func (e SIPEmergency) serviceConfig() sip.EmergencyConfig {
	c := sip.EmergencyConfig{Trunk: e.Trunk, Numbers: append([]string(nil), e.Numbers...), SendLocation: e.SendLocation, CallbackNumber: e.CallbackNumber}
	if len(e.Locations) > 0 {
		c.Locations = make(map[string]sip.Location, len(e.Locations))
		for k, l := range e.Locations {
			c.Locations[k] = sip.Location{Country: l.Country, State: l.State, County: l.County, City: l.City, Street: l.Street,
				StreetSuffix: l.StreetSuffix, HouseNumber: l.HouseNumber, HouseNumberSuffix: l.HouseNumberSuffix, Floor: l.Floor,
				Room: l.Room, Location: l.Location, Name: l.Name, PostalCode: l.PostalCode, Latitude: l.Latitude, Longitude: l.Longitude}
		}
	}
	return c
}

// STIR configures STIR/SHAKEN (internal/stir): signing calls out, verifying calls in.
type STIR struct {
	// KeyFile and CertFile are the operator's SHAKEN key (EC P-256 PEM) and certificate (PEM
	// chain); with CertURL set they turn signing on. Default: off.
	KeyFile  string `yaml:"keyFile"`
	CertFile string `yaml:"certFile"`
	// CertURL is where verifiers fetch CertFile (x5u; https).
	CertURL string `yaml:"certURL"`
	// OrigID is the origination identifier (a UUID). Default: a random one per start.
	OrigID string `yaml:"origID"`
	// TrustRootsFile holds the STI-CA certificates (PEM) inbound Identity must chain to; set,
	// it turns verification on. Default: off (calls carry no verstat).
	TrustRootsFile string `yaml:"trustRootsFile"`
	// AllowHTTP lets x5u URLs be http: (labs). Default false: https only.
	AllowHTTP bool `yaml:"allowHTTP"`
	// FetchTimeout bounds a certificate fetch. Default 2s.
	FetchTimeout time.Duration `yaml:"fetchTimeout"`
	// CacheTTL is how long a fetched certificate is reused. Default 1h.
	CacheTTL time.Duration `yaml:"cacheTTL"`
}

// Signing reports whether calls out are signed.
func (s STIR) Signing() bool { return s.KeyFile != "" }

func (s STIR) validate() []error {
	var errs []error
	if s.KeyFile != "" || s.CertFile != "" || s.CertURL != "" {
		if s.KeyFile == "" || s.CertFile == "" || s.CertURL == "" {
			errs = append(errs, errors.New("sip.stir.keyFile: keyFile, certFile and certURL must be set together"))
		}
		if u, err := url.Parse(s.CertURL); s.CertURL != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
			errs = append(errs, fmt.Errorf("sip.stir.certURL: %q is not an http(s) URL", s.CertURL))
		}
	}
	if s.FetchTimeout < 0 || s.CacheTTL < 0 {
		errs = append(errs, errors.New("sip.stir.fetchTimeout: durations must not be negative"))
	}
	return errs
}
