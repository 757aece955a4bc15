package numbers

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	t.Parallel()
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if d.QuarantineDays != 45 {
		t.Fatalf("default quarantine %d days, want 45", d.QuarantineDays)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"quarantineDays", func(c *Config) { c.QuarantineDays = -1 }},
		{"searchTTL", func(c *Config) { c.SearchTTL = -time.Second }},
		{"maxQuantity", func(c *Config) { c.MaxQuantity = -1 }},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("%s: want an error naming it, got %v", tc.key, err)
		}
	}
}

// TestQuarantineZeroIsNone: 0 days means no quarantine, with no sentinel in between; the
// default comes from DefaultConfig, not from New.
func TestQuarantineZeroIsNone(t *testing.T) {
	t.Parallel()
	if q := New(Config{}).Quarantine(); q != 0 {
		t.Fatalf("QuarantineDays 0: quarantine %s, want none", q)
	}
	if q := New(DefaultConfig()).Quarantine(); q != 45*24*time.Hour {
		t.Fatalf("DefaultConfig: quarantine %s, want 45 days", q)
	}
	c := Config{QuarantineDays: 3}
	before := c
	if err := c.Validate(); err != nil || c.SearchTTL != before.SearchTTL || c.Logger != nil {
		t.Fatalf("Validate: %v, config changed: %+v", err, c)
	}
	if s := New(c); s.cfg.SearchTTL != 15*time.Minute || s.cfg.QuarantineDays != 3 {
		t.Fatalf("New's defaults: %+v", s.cfg)
	}
}
