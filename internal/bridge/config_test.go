package bridge

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateKeys(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"portMin/portMax", func(c *Config) { c.PortMin = 80 }},
		{"portMin/portMax", func(c *Config) { c.PortMin, c.PortMax = 30000, 20000 }},
		{"portMin/portMax", func(c *Config) { c.PortMax = 70000 }},
		{"timeout", func(c *Config) { c.MediaTimeout = 0 }},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%s: want an error naming it, got %v", tc.key, err)
		}
	}
	c := Config{ListenIP: netip.MustParseAddr("0.0.0.0"), PortMin: 30001, PortMax: 30010, MediaTimeout: -time.Second}
	before := c
	if err := c.Validate(); err != nil || c != before {
		t.Fatalf("Validate: %v, config changed: %+v", err, c)
	}
	d := c.withDefaults()
	if d.PortMin != 30002 || d.ExternalIP != netip.MustParseAddr("127.0.0.1") || d.MediaTimeout != -time.Second {
		t.Fatalf("withDefaults: %+v", d)
	}
}
