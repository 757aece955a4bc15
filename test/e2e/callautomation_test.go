package e2e

import "testing"

// TestCallAutomationSDK drives telgw's Call Automation API with the official npm SDK
// (@azure/communication-call-automation 1.6.0): its requests are accepted and its errors are
// ACS-shaped.
func TestCallAutomationSDK(t *testing.T) {
	t.Parallel()
	tg := StartTelgw(t, Options{})
	RunNode(t, "callautomation.test.mjs", "TELGW_CONNECTION_STRING="+tg.ConnString)
}
