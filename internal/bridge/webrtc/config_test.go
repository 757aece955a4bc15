package webrtc

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateKeys(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("the zero Config works (NewEngine takes the defaults): %v", err)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"codecs[1]", func(c *Config) { c.Codecs = []string{"pcmu", "opus"} }},
		{"dtmfPayloadType", func(c *Config) { c.DTMFPayloadType = 8 }},
		{"connectTimeout", func(c *Config) { c.ConnectTimeout = -time.Second }},
		{"portMin/portMax", func(c *Config) { c.PortMin = 50000 }},
		{"portMin/portMax", func(c *Config) { c.PortMin, c.PortMax = 50000, 40000 }},
		{"publicIPs[0]", func(c *Config) { c.PublicIPs = []string{"vm.example.com"} }},
		{"ips[1]", func(c *Config) { c.IPs = []string{"127.0.0.1", "lo"} }},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one error naming it, got %v", tc.key, err)
		}
	}
	c := Config{IPs: []string{"127.0.0.1"}}
	if err := c.Validate(); err != nil || !reflect.DeepEqual(c, Config{IPs: []string{"127.0.0.1"}}) {
		t.Fatalf("Validate: %v, config changed: %+v", err, c)
	}
	if d := c.withDefaults(); d.DTMFPayloadType != 101 || len(d.Codecs) != 2 || d.ConnectTimeout != 20*time.Second {
		t.Fatalf("withDefaults: %+v", d)
	}
}
