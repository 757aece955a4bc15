package config

import (
	"strings"
	"testing"
	"time"
)

func TestWebhooksForms(t *testing.T) {
	t.Parallel()
	for name, yml := range map[string]string{
		"list":    "webhooks:\n  - url: https://example.com/a\n    secret: s\n",
		"mapping": "webhooks:\n  allowPrivate: true\n  allowCIDRs: [10.1.0.0/16]\n  subscribers:\n    - url: https://example.com/a\n      secret: s\n",
	} {
		c := Default()
		if err := Parse([]byte(yml), &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Webhooks.Subscribers) != 1 || c.Webhooks.Subscribers[0].Secret != "s" {
			t.Fatalf("%s: subscribers not parsed: %+v", name, c.Webhooks)
		}
		if name == "mapping" && (!c.Webhooks.AllowPrivate || c.Webhooks.AllowCIDRs[0] != "10.1.0.0/16") {
			t.Fatalf("mapping: policy not parsed: %+v", c.Webhooks)
		}
	}
	c := Default()
	if err := Parse([]byte("webhooks:\n  allowPrivat: true\n"), &c); err == nil || !strings.Contains(err.Error(), "allowPrivat") {
		t.Fatalf("unknown webhooks key: %v", err)
	}
	c = Default()
	c.Webhooks.AllowCIDRs = []string{"10.0.0.0/8", "192.0.2.7", "nope"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "webhooks.allowCIDRs[2]") {
		t.Fatalf("bad allowCIDRs: %v", err)
	}
}

func TestEdgeKeysFromEnv(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TELGW_WEBHOOKS_ALLOW_PRIVATE=true", "TELGW_WEBHOOKS_ALLOW_CIDRS=[\"10.0.0.0/8\"]",
		"TELGW_METRICS_ADDR=127.0.0.1:9100", "TELGW_HTTP_WRITE_TIMEOUT=2s", "TELGW_HTTP_MAX_CONNS_PER_IP=0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Webhooks.AllowPrivate || c.Webhooks.AllowCIDRs[0] != "10.0.0.0/8" || c.Metrics.Addr != "127.0.0.1:9100" ||
		c.HTTP.WriteTimeout != 2*time.Second || c.HTTP.MaxConnsPerIP != 0 || c.HTTP.ReadHeaderTimeout != 5*time.Second {
		t.Fatalf("env not applied: %+v %+v %+v", c.Webhooks, c.Metrics, c.HTTP)
	}
	c, err = Load("", []string{`TELGW_WEBHOOKS=[{"url":"https://example.com/x"}]`})
	if err != nil || len(c.Webhooks.Subscribers) != 1 {
		t.Fatalf("TELGW_WEBHOOKS list: %v %+v", err, c.Webhooks)
	}
	c.Metrics.Addr = "nope"
	c.HTTP.ReadTimeout = 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "metrics.addr") || !strings.Contains(err.Error(), "http.readTimeout") {
		t.Fatalf("Validate: %v", err)
	}
	// Profiles only on the separate metrics listener.
	if c, err = Load("", []string{"TELGW_METRICS_PPROF=true"}); err == nil {
		err = c.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "metrics.pprof") {
		t.Fatalf("metrics.pprof without metrics.addr: %v", err)
	}
	if c, err = Load("", []string{"TELGW_METRICS_PPROF=true", "TELGW_METRICS_ADDR=127.0.0.1:9100"}); err == nil {
		err = c.Validate()
	}
	if err != nil || !c.Metrics.Pprof {
		t.Fatalf("metrics.pprof: %v %+v", err, c.Metrics)
	}
}
