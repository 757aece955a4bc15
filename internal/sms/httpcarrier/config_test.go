package httpcarrier

import (
	"reflect"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() Config {
		return Config{Name: "c", URL: "https://carrier.invalid/send?to={to}&text={text}", CallbackToken: "t", Method: "post"}
	}
	c := valid()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, valid()) {
		t.Fatalf("Validate changed the config: %+v", c)
	}
	for _, tc := range []struct {
		key   string
		tweak func(*Config)
	}{
		{"name", func(c *Config) { c.Name = "" }},
		{"url", func(c *Config) { c.URL = "carrier/send" }},
		{"method", func(c *Config) { c.Method = "PUT" }},
		{"callbackToken", func(c *Config) { c.CallbackToken = "" }},
	} {
		c := valid()
		tc.tweak(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one error naming it, got %v", tc.key, err)
		}
	}
	if d := DefaultConfig(); d.Method != "GET" || d.DLRURL != DefaultDLRURL || d.ContentType == "" {
		t.Fatalf("defaults: %+v", d)
	}
}
