package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValidate(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.HTTP.Addr != "127.0.0.1:8080" || c.SIP.Addr != "127.0.0.1:5060" || c.DataDir != "./data" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestLoadYAMLAndEnv(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "telgw.yaml")
	yml := `
http:
  addr: 0.0.0.0:9000
  clockSkew: 5m
sip:
  trunks:
    - name: carrier1
      address: 127.0.0.1:5070
      transport: udp
      inbound: {allow: ["127.0.0.1/32"]}
      auth: {username: u, password: p}
sms:
  carriers:
    - name: smsc1
      smpp: {address: 127.0.0.1:2775, systemId: telgw, password: secret, window: 10, maxRate: 0, reassemblyTimeout: 2m}
webhooks:
  - url: http://127.0.0.1:9000/events
    secret: a-secret
`
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, []string{
		"TELGW_HTTP_ADDR=127.0.0.1:9001",
		"TELGW_DATA_DIR=/var/lib/telgw",
		"TELGW_DATABASE_URL=postgres://u@h/db",
		"TELGW_ACCESS_KEY=abc",
		"TELGW_SIP_ADDR=127.0.0.1:5062",
		"TELGW_NUMBERS_QUARANTINE_DAYS=30",
		"TELGW_HTTP_SHUTDOWN_TIMEOUT=3s",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Addr != "127.0.0.1:9001" || c.DataDir != "/var/lib/telgw" || c.Database.URL != "postgres://u@h/db" ||
		c.AccessKey != "abc" || c.SIP.Addr != "127.0.0.1:5062" || c.Numbers.QuarantineDays != 30 ||
		c.HTTP.ShutdownTimeout != 3*time.Second || c.HTTP.ClockSkew != 5*time.Minute {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if len(c.SIP.Trunks) != 1 || c.SIP.Trunks[0].Auth.Username != "u" || c.SMS.Carriers[0].SMPP.Window != 10 ||
		c.SMS.Carriers[0].SMPP.ReassemblyTimeout != 2*time.Minute || c.Webhooks.Subscribers[0].Secret != "a-secret" {
		t.Fatalf("sections not parsed: %+v", c)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	t.Parallel()
	c := Default()
	err := Parse([]byte("http:\n  adress: 1.2.3.4:5\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("want error naming the unknown key, got %v", err)
	}
}

func TestEnvBadValueNamed(t *testing.T) {
	t.Parallel()
	_, err := Load("", []string{"TELGW_NUMBERS_QUARANTINE_DAYS=many"})
	if err == nil || !strings.Contains(err.Error(), "TELGW_NUMBERS_QUARANTINE_DAYS") {
		t.Fatalf("want error naming the variable, got %v", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	c := Default()
	c.HTTP.Addr = "nope"
	c.Log.Level = "loud"
	c.Database.URL = "mysql://x"
	c.SIP.Trunks = []Trunk{{Name: "", Address: "x", Transport: "sctp", Inbound: TrunkInbound{Allow: []string{"bad"}}}}
	c.Webhooks.Subscribers = []Webhook{{URL: "ftp://x"}}
	c.Media.RealtimePriority = 100
	c.Media.Play.MaxBytes = 1
	c.Media.Espeak.Path = ""
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config validated")
	}
	for _, key := range []string{"http.addr", "log.level", "database.url", "sip.trunks[0].name",
		"sip.trunks[0].address", "sip.trunks[0].transport", "sip.trunks[0].inbound.allow[0]", "webhooks[0].url",
		"media.realtimePriority", "media.play.maxBytes", "media.espeak.path"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"dataDir": "TELGW_DATA_DIR", "accessKey": "TELGW_ACCESS_KEY", "publicURL": "TELGW_PUBLIC_URL"} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", in, got, want)
		}
	}
	if got := EnvName("database", "url"); got != "TELGW_DATABASE_URL" {
		t.Errorf("got %s", got)
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("http: {addr: 1}"))
	f.Add([]byte("webhooks: [{url: x}]"))
	f.Add([]byte("webhooks: {allowPrivate: true, allowCIDRs: [10.0.0.0/8], subscribers: [{url: x}]}"))
	f.Add([]byte("webhooks:\n  - url: x\nmetrics: {addr: ':9100'}\nhttp: {maxConnsPerIP: 0, readTimeout: 1s}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := Parse(b, &c); err == nil {
			_ = c.Validate() // must not panic whatever parsed
		}
	})
}

func TestWebRTC(t *testing.T) {
	t.Parallel()
	c := Default()
	yml := "sip:\n  webrtc:\n    portMin: 40000\n    portMax: 40100\n    publicIPs: [203.0.113.7]\n    ips: [\"10.0.0.2\"]\n    includeLoopback: true\n    connectTimeout: 5s\n    mediaTimeout: -1s\n"
	if err := Parse([]byte(yml), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w := c.SIP.WebRTC
	if w.PortMin != 40000 || w.PortMax != 40100 || w.PublicIPs[0] != "203.0.113.7" || w.IPs[0] != "10.0.0.2" ||
		!w.IncludeLoopback || w.ConnectTimeout != 5*time.Second || w.MediaTimeout != -time.Second {
		t.Fatalf("webrtc not parsed: %+v", w)
	}
	if err := applyEnv(&c, []string{"TELGW_SIP_WEBRTC_PORT_MIN=0", "TELGW_SIP_WEBRTC_PUBLIC_IPS=[nope]", "TELGW_SIP_WEBRTC_IPS=[\"::1\"]"}); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	for _, want := range []string{"sip.webrtc.portMin/portMax: set both", "sip.webrtc.publicIPs[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestSMPPReassemblyTimeoutNotNegative(t *testing.T) {
	t.Parallel()
	c := Default()
	c.SMS.Carriers = []Carrier{{Name: "c1", SMPP: &SMPPLink{Address: "127.0.0.1:2775", ReassemblyTimeout: -time.Second}}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "sms.carriers[0].smpp.reassemblyTimeout") {
		t.Fatalf("want an error naming the key, got %v", err)
	}
}

// TestSMPPBinds: smpp.binds sets the cluster's binds; smpp.links, its older name, still does;
// both set and different is an error naming binds.
func TestSMPPBinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		l    SMPPLink
		want int
		err  string
	}{
		{SMPPLink{}, 0, ""},
		{SMPPLink{Binds: 2}, 2, ""},
		{SMPPLink{Links: 3}, 3, ""},
		{SMPPLink{Binds: 2, Links: 2}, 2, ""},
		{SMPPLink{Binds: 2, Links: 3}, 2, "sms.carriers[0].smpp.binds: 2 differs from smpp.links 3"},
		{SMPPLink{Binds: -1}, -1, "sms.carriers[0].smpp.binds: must not be negative"},
	} {
		tc.l.Address = "127.0.0.1:2775"
		c := Default()
		c.SMS.Carriers = []Carrier{{Name: "c1", SMPP: &tc.l}}
		err := c.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v: want error %q, got %v", tc.l, tc.err, err)
		}
		if sc, _ := c.SMS.Carriers[0].SMPPConfig(); sc.Links != tc.want {
			t.Errorf("%+v: links %d, want %d", tc.l, sc.Links, tc.want)
		}
	}
}

// TestSMSInFlight: sms.inFlight is read from TELGW_SMS_IN_FLIGHT and bounded.
func TestSMSInFlight(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TELGW_SMS_IN_FLIGHT=400"})
	if err != nil || c.SMS.InFlight != 400 {
		t.Fatalf("inFlight %d, %v", c.SMS.InFlight, err)
	}
	for _, n := range []int{-1, 20001} {
		c := Default()
		c.SMS.InFlight = n
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sms.inFlight") {
			t.Errorf("inFlight %d: want an error naming sms.inFlight, got %v", n, err)
		}
	}
}
