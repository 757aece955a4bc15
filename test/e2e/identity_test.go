package e2e

import "testing"

// TestIdentitySDK drives a real `telgw serve` with the official npm identity SDK on both stores.
func TestIdentitySDK(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			requireNodePeers(t)
			tg := StartTelgw(t, Options{Postgres: pg})
			out := RunNode(t, "identity.test.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString)
			t.Log(out)
		})
	}
}
