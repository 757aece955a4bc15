package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/telgw/telgw/internal/sms/smsctest"
)

// TestACSSMSSDK drives telgw with the official npm @azure/communication-sms SDK.
func TestACSSMSSDK(t *testing.T) {
	smsc := smsctest.Start(t, peers, nil) // skips (or fails in CI) without node and npm packages
	n := startNode(t, nodeOpts{SMSC: smsc.Addr()})
	dir, _ := filepath.Abs(peers)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@azure", "communication-sms")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("@azure/communication-sms missing in test/peers (npm ci)")
		}
		t.Skip("skipping: @azure/communication-sms missing in test/peers (npm ci)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", "smpp/sdk.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TELGW_CONNECTION_STRING=endpoint="+n.Endpoint+";accesskey="+n.KeyB64(), "SMS_FROM="+us, "SMS_TO="+them)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("SDK test failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	smsc.Wait("submit", func(e map[string]any) bool { return e["message"] == "Hello from the ACS SDK €" }, 10*time.Second)
}
