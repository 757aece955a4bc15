package turn

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"addr", func(c *Config) { c.Addr = "3478" }},
		{"relayIP", func(c *Config) { c.RelayIP = "eth0" }},
		{"minPort/maxPort", func(c *Config) { c.MinPort, c.MaxPort = 50000, 49999 }},
		{"minPort/maxPort", func(c *Config) { c.MinPort = 0 }},
		{"credentialTTL", func(c *Config) { c.CredentialTTL = 30 * time.Second }},
		{"credentialTTL", func(c *Config) { c.CredentialTTL = MaxCredentialTTL + time.Second }},
		{"identityCacheTTL", func(c *Config) { c.IdentityCacheTTL = -time.Second }},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one error naming it, got %v", tc.key, err)
		}
	}
}

func TestConfigValidateDoesNotMutate(t *testing.T) {
	t.Parallel()
	sample := func() Config {
		return Config{Addr: "127.0.0.1:0", AllowPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	}
	c := sample()
	_ = c.Validate() // incomplete: MinPort, CredentialTTL unset
	if !reflect.DeepEqual(c, sample()) {
		t.Fatalf("Validate changed the config: %+v", c)
	}
	d := c.withDefaults()
	if d.MinPort != 49152 || d.MaxPort != 65535 || d.Realm != "telgw" || d.CredentialTTL != DefaultCredentialTTL || d.IdentityCacheTTL != IdentityCacheTTL {
		t.Fatalf("withDefaults: %+v", d)
	}
	if err := d.Validate(); err != nil || !reflect.DeepEqual(c, sample()) {
		t.Fatalf("defaults filled: %v, caller's config %+v", err, c)
	}
}
