package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTURNAllowPeersAndCredentialTTL(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.TURN.CredentialTTL != time.Hour || len(c.TURN.AllowPeers) != 0 {
		t.Fatalf("turn defaults: %+v", c.TURN)
	}
	yml := "turn:\n  allowPeers: [\"10.0.0.0/8\", \"192.168.1.7\", \"fd00::/8\"]\n  credentialTTL: 10m\n"
	if err := Parse([]byte(yml), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("fd00::/8")}
	if got := c.TURN.AllowPrefixes(); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("allowPeers %v, want %v", got, want)
	}
	if c.TURN.CredentialTTL != 10*time.Minute {
		t.Fatalf("credentialTTL %s", c.TURN.CredentialTTL)
	}
	if err := applyEnv(&c, []string{`TELGW_TURN_ALLOW_PEERS=["127.0.0.0/8", "10.0.0.0/33"]`, "TELGW_TURN_CREDENTIAL_TTL=72h"}); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	for _, key := range []string{"turn.allowPeers[1]", "turn.credentialTTL"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("want an error naming %s, got %v", key, err)
		}
	}
}
