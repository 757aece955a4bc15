package config

import (
	"strings"
	"testing"

	"github.com/telgw/telgw/internal/policy"
)

func TestFraudSections(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/full.yaml", []string{"TELGW_POLICY_DEFAULTS_SMS_PER_DAY=7", "TELGW_SIP_EMERGENCY_TRUNK=carrier2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := c.Policy.ServiceConfig()
	if p.Defaults.SMSPerDay != 7 || p.Defaults.ConcurrentCalls != 5 || !p.Credentials["leaked"].Disabled ||
		p.Credentials["pbx-main"].ConcurrentCalls != 30 || p.Numbers["+14155550100"].SMSPerDay != -1 || p.Users["8:acs:x_y"].Allow[0] != "+1415" {
		t.Fatalf("policy %+v", p)
	}
	sc, err := c.SIP.ServiceConfig()
	if err != nil {
		t.Fatal(err)
	}
	if e := sc.Emergency; e.Trunk != "carrier2" || !e.SendLocation || e.Locations["+14155550100"].City != "San Francisco" {
		t.Fatalf("emergency %+v", e)
	}
	if !c.SIP.STIR.Signing() || c.SIP.STIR.TrustRootsFile == "" {
		t.Fatalf("stir %+v", c.SIP.STIR)
	}
	// Defaults: the shipped block list and limits.
	d := Default()
	if dp := d.Policy.ServiceConfig(); dp.Block[0] != "+1900" || dp.Defaults != policy.DefaultConfig().Defaults {
		t.Fatalf("default policy %+v", dp)
	}
}

func TestFraudInvalid(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Policy.Block = []string{"1900"}
	c.Policy.Defaults.CallsPerMinute = -2
	c.Policy.Refresh = 0
	c.SIP.Trunks = []Trunk{{Name: "c1", Address: "127.0.0.1:5070", Transport: "udp"}}
	c.SIP.Emergency = SIPEmergency{Trunk: "c1", SendLocation: true, Numbers: []string{"9-1-1"}, CallbackNumber: "555",
		Locations: map[string]EmergencyLocation{"+14155550100": {Latitude: "x"}}}
	c.SIP.STIR = STIR{KeyFile: "k.pem", CertURL: "ftp://x"}
	err := c.Validate()
	for _, key := range []string{"policy.block[0]", "policy.defaults.callsPerMinute", "policy.refresh", "sip.emergency.sendLocation",
		"sip.emergency.numbers[0]", "sip.emergency.callbackNumber", `sip.emergency.locations["+14155550100"].country`,
		`sip.emergency.locations["+14155550100"].latitude`, "sip.stir.keyFile", "sip.stir.certURL"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("no %s in %v", key, err)
		}
	}
	c = Default()
	c.SIP.Emergency.Trunk = "nope"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sip.emergency.trunk:") {
		t.Errorf("unknown trunk: %v", err)
	}
}
