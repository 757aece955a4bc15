package sip

import (
	"context"
	"crypto/tls"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sip/number"
)

func TestDefaultConfigValidates(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("the zero Config validated: Validate must not fill defaults")
	}
}

func TestConfigValidateKeys(t *testing.T) {
	t.Parallel()
	trunk := func(f func(*TrunkConfig)) func(*Config) {
		return func(c *Config) {
			tr := TrunkConfig{Name: "a", Address: "192.0.2.1:5060"}
			f(&tr)
			c.Trunks = append(c.Trunks, tr)
		}
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"addr", func(c *Config) { c.Addr = "5060" }},
		{"host", func(c *Config) { c.Host = "a host" }},
		{"realm", func(c *Config) { c.Realm = "" }},
		{"digestNonceTTL", func(c *Config) { c.DigestNonceTTL = time.Second }},
		{"ringTimeout", func(c *Config) { c.RingTimeout = 0 }},
		{"failoverTimeout", func(c *Config) { c.FailoverTimeout = -time.Second }},
		{"sessionExpires", func(c *Config) { c.SessionExpires = time.Minute }},
		{"sourceRate", func(c *Config) { c.SourceRate = 0 }},
		{"sourceBurst", func(c *Config) { c.SourceBurst = -1 }},
		{"idleTimeout", func(c *Config) { c.IdleTimeout = 0 }},
		{"requestTimeout", func(c *Config) { c.RequestTimeout = 0 }},
		{"webrtc.registerTimeout", func(c *Config) { c.WSRegisterTimeout = -time.Second }},
		{"maxConnsPerIP", func(c *Config) { c.MaxConnsPerIP = -1 }},
		{"codecs", func(c *Config) { c.Codecs = nil }},
		{"codecs[1]", func(c *Config) { c.Codecs = []string{"PCMU/8000", "PCMA"} }},
		{"media.portMin/portMax", func(c *Config) { c.Media.PortMin = 80 }},
		{"media.timeout", func(c *Config) { c.Media.MediaTimeout = 0 }},
		{"tls.addr", func(c *Config) { c.TLS = TLSConfig{CertFile: "c", KeyFile: "k"} }},
		{"tls.certFile", func(c *Config) { c.TLS = TLSConfig{Addr: ":5061", CertFile: "c"} }},
		{"tls.minVersion", func(c *Config) {
			c.TLS = TLSConfig{Addr: ":5061", CertFile: "c", KeyFile: "k", MinVersion: tls.VersionTLS10}
		}},
		{"trunks[0].name", trunk(func(t *TrunkConfig) { t.Name = "" })},
		{"trunks[0].address", trunk(func(t *TrunkConfig) { t.Address = "192.0.2.1" })},
		{"trunks[0].address", trunk(func(t *TrunkConfig) { t.Address = "192.0.2.1:0" })},
		{"trunks[0].transport", trunk(func(t *TrunkConfig) { t.Transport = "sctp" })},
		{"trunks[0].transport", trunk(func(t *TrunkConfig) { t.Transport = "tls" })}, // no TLS
		{"trunks[0].inbound.username", trunk(func(t *TrunkConfig) { t.InboundUsername = "only" })},
		{"trunks[0].maxCalls", trunk(func(t *TrunkConfig) { t.MaxCalls = -1 })},
		{"trunks[0].cps", trunk(func(t *TrunkConfig) { t.CPS = -1 })},
		{"trunks[0].optionsInterval", trunk(func(t *TrunkConfig) { t.OptionsInterval = -time.Second })},
		{"trunks[0].numberFormat.style", trunk(func(t *TrunkConfig) { t.Format = number.Format{Style: "+1"} })},
		{"trunks[0].register.enabled", trunk(func(t *TrunkConfig) { t.Register = true })},
		{"trunks[0].register.expires", trunk(func(t *TrunkConfig) { t.RegisterExpires = -time.Minute })},
		{"trunks[1].name", func(c *Config) {
			c.Trunks = []TrunkConfig{{Name: "a", Address: "192.0.2.1:5060"}, {Name: "a", Address: "192.0.2.2:5060"}}
		}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tc.tweak(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("want an error naming %s, got %v", tc.key, err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Fatalf("%d problems reported, want 1:\n%v", n, err)
			}
		})
	}
}

func TestConfigValidateReportsEvery(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.Realm, c.RingTimeout = "", 0
	c.Trunks = []TrunkConfig{{Name: "", Address: "x", MaxCalls: -1}}
	err := c.Validate()
	for _, k := range []string{"realm:", "ringTimeout:", "trunks[0].name:", "trunks[0].address:", "trunks[0].maxCalls:"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("want %s in %v", k, err)
		}
	}
}

// sampleConfig is a Config with the fields Validate and withDefaults would touch left unset.
func sampleConfig() Config {
	c := DefaultConfig()
	c.Host, c.Codecs = "", []string{"pcmu/8000"}
	c.Trunks = []TrunkConfig{{Name: "carrier", Address: "nonexistent.invalid:5060"}, {Name: "ip", Address: "192.0.2.1:5060"}}
	c.Routes = []OutboundRoute{{Name: "us", NumberPattern: `\+1\d+`, Trunks: []string{"carrier"}}}
	return c
}

func TestConfigValidateDoesNotMutate(t *testing.T) {
	t.Parallel()
	c := sampleConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, sampleConfig()) {
		t.Fatalf("Validate changed the config:\n%+v\nwant\n%+v", c, sampleConfig())
	}
	// withDefaults works on a copy too: the caller's trunks and codecs stay as they were.
	d := c.withDefaults()
	if c.Trunks[0].Transport != "" || c.Codecs[0] != "pcmu/8000" || d.Trunks[0].Transport != "udp" || d.Codecs[0] != "PCMU/8000" {
		t.Fatalf("withDefaults: caller %+v, copy %+v", c, d)
	}
	if d.Host != "127.0.0.1" || d.Media.ListenIP != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("derived defaults: host %q, media %v", d.Host, d.Media.ListenIP)
	}
}

// TestConfigValidateDoesNoDNS: a trunk named by an unresolvable host validates; its name is
// looked up when the service takes it (provision), not before. Not parallel: it swaps the
// resolver.
func TestConfigValidateDoesNoDNS(t *testing.T) {
	var lookups []string
	saved := lookupNetIP
	t.Cleanup(func() { lookupNetIP = saved })
	lookupNetIP = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		lookups = append(lookups, host)
		if host == "carrier.test" {
			return []netip.Addr{netip.MustParseAddr("198.51.100.9")}, nil
		}
		return nil, &netErr{host}
	}
	c := sampleConfig()
	c.Trunks = append(c.Trunks, TrunkConfig{Name: "named", Address: "carrier.test:5060"})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(lookups) != 0 {
		t.Fatalf("Validate looked up %v", lookups)
	}
	p, err := c.provision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(lookups) != 2 || len(p.Trunks[0].Allow) != 0 ||
		!reflect.DeepEqual(p.Trunks[1].Allow, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}) ||
		!reflect.DeepEqual(p.Trunks[2].Allow, []netip.Prefix{netip.MustParsePrefix("198.51.100.9/32")}) {
		t.Fatalf("provision: lookups %v, allow %v %v %v", lookups, p.Trunks[0].Allow, p.Trunks[1].Allow, p.Trunks[2].Allow)
	}
	if c.Trunks[2].Allow != nil {
		t.Fatal("provision changed the caller's trunks")
	}
}

type netErr struct{ host string }

func (e *netErr) Error() string { return "lookup " + e.host + ": no such host" }
