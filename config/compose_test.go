package config

import (
	"crypto/tls"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/numbers"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/turn"
)

// TestDefaultsComeFromPackages: each section's defaults are its package's DefaultConfig.
func TestDefaultsComeFromPackages(t *testing.T) {
	t.Parallel()
	c := Default()
	s, err := c.SIP.ServiceConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := sip.DefaultConfig(); !reflect.DeepEqual(s, want) {
		t.Errorf("sip section defaults\n%+v\nwant sip.DefaultConfig\n%+v", s, want)
	}
	tc, err := c.TURN.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if want := turn.DefaultConfig(); !reflect.DeepEqual(tc, want) {
		t.Errorf("turn section defaults %+v, want turn.DefaultConfig %+v", tc, want)
	}
	if got, want := c.Numbers.ServiceConfig(), numbers.DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("numbers section defaults %+v, want %+v", got, want)
	}
}

func TestValidateDoesNotMutate(t *testing.T) {
	t.Parallel()
	load := func() Config {
		c, err := Load("testdata/full.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SIP.Trunks[0].Transport, c.SIP.Codecs[0] = "", "pcmu/8000" // left for the package to fill
		return c
	}
	c := load()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, load()) {
		t.Fatal("Validate changed the configuration")
	}
}

// TestValidateDoesNoDNS: names that resolve nowhere validate; they are looked up when the
// component starts (a trunk's allow-list, a webhook's address, an SMSC's dial).
func TestValidateDoesNoDNS(t *testing.T) {
	t.Parallel()
	c := Default()
	y := `
sip:
  trunks: [{name: carrier, address: "nonexistent.invalid:5060"}]
sms:
  carriers: [{name: smsc, smpp: {address: "nonexistent.invalid:2775"}}, {name: web, http: {url: "https://nonexistent.invalid/send", callbackToken: t}}]
webhooks: [{url: "https://nonexistent.invalid/hook"}]
`
	if err := Parse([]byte(y), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := c.SIP.ServiceConfig()
	if err != nil || len(s.Trunks) != 1 || s.Trunks[0].Allow != nil {
		t.Fatalf("ServiceConfig resolved or failed: %+v, %v", s.Trunks, err)
	}
}

func TestQuarantineDays(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]int{"": 45, "TELGW_NUMBERS_QUARANTINE_DAYS=0": 0, "TELGW_NUMBERS_QUARANTINE_DAYS=7": 7} {
		var environ []string
		if env != "" {
			environ = []string{env}
		}
		c, err := Load("", environ)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.Numbers.ServiceConfig().QuarantineDays; got != want {
			t.Errorf("%q: quarantine %d days, want %d", env, got, want)
		}
	}
	c := Default()
	c.Numbers.QuarantineDays = -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "numbers.quarantineDays:") {
		t.Fatalf("want an error naming numbers.quarantineDays, got %v", err)
	}
}

func TestSIPServiceConfig(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := Parse([]byte(sipYAML), &c); err != nil {
		t.Fatal(err)
	}
	s, err := c.SIP.ServiceConfig()
	if err != nil {
		t.Fatal(err)
	}
	if s.TLS.MinVersion != tls.VersionTLS13 || s.Media.ListenIP != netip.MustParseAddr("10.0.0.5") ||
		s.Media.ExternalIP != netip.MustParseAddr("203.0.113.5") || s.MaxConnsPerIP != 0 || s.WSRegisterTimeout != c.SIP.WebRTC.RegisterTimeout ||
		!reflect.DeepEqual(s.Trunks[0].Allow, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::1/128")}) ||
		!s.Trunks[0].Register || s.Trunks[0].Format.TechPrefix != "1010" || *s.RejectUnknownSource || *s.DialogSourceCheck {
		t.Fatalf("ServiceConfig: %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	// A value that does not parse is reported once, by its key.
	c.SIP.TLS.MinVersion = "1.1"
	c.SIP.Trunks[0].Inbound.Allow = []string{"lan"}
	err = c.Validate()
	for _, k := range []string{"sip.tls.minVersion:", "sip.trunks[0].inbound.allow[0]:"} {
		if err == nil || strings.Count(err.Error(), k) != 1 {
			t.Errorf("want %s once in %v", k, err)
		}
	}
}

// TestDocumentedDefaults pins the values docs/CONFIG.md lists for the defaults that now come
// from the packages (SIP's are pinned by TestSIPDefaults).
func TestDocumentedDefaults(t *testing.T) {
	t.Parallel()
	c := Default()
	if want := (TURN{Enabled: true, Addr: "127.0.0.1:3478", MinPort: 49152, MaxPort: 65535, Realm: "telgw", CredentialTTL: time.Hour}); !reflect.DeepEqual(c.TURN, want) {
		t.Errorf("turn defaults %+v, want %+v", c.TURN, want)
	}
	if c.Numbers.QuarantineDays != 45 || c.HTTP.MaxBodyBytes != 1<<20 || c.HTTP.ClockSkew != 15*time.Minute || c.KeyRefresh != 30*time.Second {
		t.Errorf("defaults: numbers %+v, http %+v, keyRefresh %s", c.Numbers, c.HTTP, c.KeyRefresh)
	}
}
