package smpp

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateKeys(t *testing.T) {
	t.Parallel()
	valid := func() Config { c := DefaultConfig(); c.Name, c.Address = "smsc", "smsc.invalid:2775"; return c }
	if err := valid().Validate(); err != nil {
		t.Fatalf("a link named by an unresolvable host must validate (no DNS): %v", err)
	}
	zero := Config{Name: "smsc", Address: "127.0.0.1:2775"}
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero tunables take the defaults: %v", err)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"address", func(c *Config) { c.Address = "smsc" }},
		{"systemId", func(c *Config) { c.SystemID = strings.Repeat("s", 16) }},
		{"password", func(c *Config) { c.Password = "123456789" }},
		{"systemType", func(c *Config) { c.SystemType = strings.Repeat("t", 13) }},
		{"bindMode", func(c *Config) { c.BindMode = "receiver" }},
		{"window", func(c *Config) { c.Window = -1 }},
		{"binds", func(c *Config) { c.Links = -1 }},
		{"maxRate", func(c *Config) { c.MaxRate = -1 }},
		{"reassemblyTimeout", func(c *Config) { c.ReassemblyTimeout = -time.Second }},
	} {
		c := valid()
		tc.tweak(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one error naming it, got %v", tc.key, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{Name: "smsc", Address: "127.0.0.1:2775", Window: 0, Links: 3}
	before := c
	if err := c.Validate(); err != nil || !reflect.DeepEqual(c, before) {
		t.Fatalf("Validate: %v, config changed: %+v", err, c)
	}
	c.setDefaults()
	d := DefaultConfig()
	if c.Window != d.Window || c.Links != 3 || c.ReassemblyTimeout != d.ReassemblyTimeout || c.EnquireLink != d.EnquireLink {
		t.Fatalf("setDefaults: %+v", c)
	}
	if got := (&Carrier{cfg: c}).Window(); got != 30 {
		t.Fatalf("Window %d, want the default window 10 × 3 links", got)
	}
}
