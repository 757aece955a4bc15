package config

import "testing"

func TestCallsIncomingCallEvents(t *testing.T) {
	cfg, err := Load("", []string{"TELGW_CALLS_INCOMING_CALL_EVENTS=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Calls.IncomingCallEvents || len(cfg.Warnings) != 0 {
		t.Fatalf("calls %+v, warnings %v", cfg.Calls, cfg.Warnings)
	}
	if Default().Calls.IncomingCallEvents {
		t.Fatal("on by default")
	}
	var c Config
	if err := Parse([]byte("calls:\n  incomingCallEvents: true\n"), &c); err != nil || !c.Calls.IncomingCallEvents {
		t.Fatalf("yaml: %+v %v", c.Calls, err)
	}
}
