package config

import (
	"strings"
	"testing"
)

func TestCallsMaxParticipants(t *testing.T) {
	if d := Default(); d.Calls.MaxParticipants != 16 || d.Validate() != nil {
		t.Fatalf("default %d: %v", d.Calls.MaxParticipants, d.Validate())
	}
	cfg, err := Load("", []string{"TELGW_CALLS_MAX_PARTICIPANTS=3"})
	if err != nil || cfg.Calls.MaxParticipants != 3 || len(cfg.Warnings) != 0 {
		t.Fatalf("env: %+v %v %v", cfg.Calls, err, cfg.Warnings)
	}
	for _, n := range []int{0, 1, 101} {
		c := Default()
		c.Calls.MaxParticipants = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "calls.maxParticipants") {
			t.Fatalf("%d: %v", n, err)
		}
	}
}
