package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const sipYAML = `
sip:
  addr: 0.0.0.0:5060
  host: sip.example.com
  realm: example
  digestNonceTTL: 30s
  rejectUnknownSource: false
  dialogSourceCheck: false
  ringTimeout: 60s
  failoverTimeout: 3s
  sessionExpires: 15m
  sourceRate: 50
  sourceBurst: 100
  idleTimeout: 2m
  requestTimeout: 5s
  maxConnsPerIP: 0
  codecs: [PCMA/8000, telephone-event/8000]
  media: {listenIP: 10.0.0.5, externalIP: 203.0.113.5, portMin: 30000, portMax: 30999, timeout: -1s}
  tls: {addr: 0.0.0.0:5061, certFile: /etc/telgw/sip.crt, keyFile: /etc/telgw/sip.key, caFile: /etc/telgw/ca.pem, minVersion: "1.3"}
  trunks:
    - name: carrier1
      address: 198.51.100.7:5061
      transport: tls
      inbound: {allow: ["198.51.100.0/24", "2001:db8::1"], username: in, password: secret}
      auth: {username: u, password: p}
      maxCalls: 30
      cps: 2.5
      optionsInterval: 30s
      numberFormat: {style: "11", techPrefix: "1010", userPhone: true}
      register: {enabled: true, expires: 10m}
  webrtc: {maxDevicesPerUser: 3, maxContactsPerRegister: 1, registerTimeout: 4s}
`

func TestSIPKeys(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := Parse([]byte(sipYAML), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := SIP{
		Addr: "0.0.0.0:5060", Host: "sip.example.com", Realm: "example", DigestNonceTTL: 30 * time.Second, RejectUnknownSource: false,
		RingTimeout: time.Minute, FailoverTimeout: 3 * time.Second, SessionExpires: 15 * time.Minute,
		SourceRate: 50, SourceBurst: 100, IdleTimeout: 2 * time.Minute, RequestTimeout: 5 * time.Second, MaxConnsPerIP: 0, Codecs: []string{"PCMA/8000", "telephone-event/8000"},
		Media: SIPMedia{ListenIP: "10.0.0.5", ExternalIP: "203.0.113.5", PortMin: 30000, PortMax: 30999, Timeout: -time.Second},
		TLS:   SIPTLS{Addr: "0.0.0.0:5061", CertFile: "/etc/telgw/sip.crt", KeyFile: "/etc/telgw/sip.key", CAFile: "/etc/telgw/ca.pem", MinVersion: "1.3"},
		Trunks: []Trunk{{
			Name: "carrier1", Address: "198.51.100.7:5061", Transport: "tls",
			Inbound:  TrunkInbound{Allow: []string{"198.51.100.0/24", "2001:db8::1"}, Username: "in", Password: "secret"},
			Auth:     TrunkAuth{Username: "u", Password: "p"},
			MaxCalls: 30, CPS: 2.5, OptionsInterval: 30 * time.Second,
			NumberFormat: TrunkNumberFormat{Style: "11", TechPrefix: "1010", UserPhone: true},
			Register:     TrunkRegister{Enabled: true, Expires: 10 * time.Minute},
		}},
		WebRTC: func() WebRTC { w := defaultWebRTC(); w.MaxDevicesPerUser, w.MaxContactsPerRegister = 3, 1; return w }(),
	}
	want.WebRTC.RegisterTimeout = 4 * time.Second
	if !reflect.DeepEqual(c.SIP, want) {
		t.Fatalf("got  %+v\nwant %+v", c.SIP, want)
	}
}

func TestSIPDefaults(t *testing.T) {
	t.Parallel()
	s := Default().SIP
	if s.Realm != "telgw" || !s.RejectUnknownSource || !s.DialogSourceCheck || s.RingTimeout != 120*time.Second || s.FailoverTimeout != 5*time.Second ||
		s.SessionExpires != 30*time.Minute || s.SourceRate != 200 || s.SourceBurst != 400 || len(s.Codecs) != 3 ||
		s.Media.PortMin != 20000 || s.Media.PortMax != 39999 || s.Media.Timeout != 30*time.Second || s.TLS != (SIPTLS{}) ||
		s.WebRTC.ConnectTimeout != 20*time.Second || s.WebRTC.MediaTimeout != 30*time.Second || s.WebRTC.IncludeLoopback ||
		s.DigestNonceTTL != time.Minute || s.WebRTC.MaxDevicesPerUser != 10 || s.WebRTC.MaxContactsPerRegister != 5 ||
		s.IdleTimeout != 6*time.Minute || s.RequestTimeout != 10*time.Second || s.MaxConnsPerIP != 64 || s.WebRTC.RegisterTimeout != 10*time.Second {
		t.Fatalf("defaults %+v", s)
	}
}

func TestSIPEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env   string
		check func(SIP) bool
	}{
		{"TELGW_SIP_HOST=pub.example.com", func(s SIP) bool { return s.Host == "pub.example.com" }},
		{"TELGW_SIP_REALM=r", func(s SIP) bool { return s.Realm == "r" }},
		{"TELGW_SIP_IDLE_TIMEOUT=90s", func(s SIP) bool { return s.IdleTimeout == 90*time.Second }},
		{"TELGW_SIP_MAX_CONNS_PER_IP=500", func(s SIP) bool { return s.MaxConnsPerIP == 500 }},
		{"TELGW_SIP_WEBRTC_REGISTER_TIMEOUT=3s", func(s SIP) bool { return s.WebRTC.RegisterTimeout == 3*time.Second }},
		{"TELGW_SIP_REJECT_UNKNOWN_SOURCE=false", func(s SIP) bool { return !s.RejectUnknownSource }},
		{"TELGW_SIP_DIALOG_SOURCE_CHECK=false", func(s SIP) bool { return !s.DialogSourceCheck }},
		{"TELGW_SIP_RING_TIMEOUT=45s", func(s SIP) bool { return s.RingTimeout == 45*time.Second }},
		{"TELGW_SIP_FAILOVER_TIMEOUT=1500ms", func(s SIP) bool { return s.FailoverTimeout == 1500*time.Millisecond }},
		{"TELGW_SIP_SESSION_EXPIRES=10m", func(s SIP) bool { return s.SessionExpires == 10*time.Minute }},
		{"TELGW_SIP_SOURCE_RATE=12.5", func(s SIP) bool { return s.SourceRate == 12.5 }},
		{"TELGW_SIP_SOURCE_BURST=25", func(s SIP) bool { return s.SourceBurst == 25 }},
		{"TELGW_SIP_CODECS=[PCMU/8000]", func(s SIP) bool { return len(s.Codecs) == 1 && s.Codecs[0] == "PCMU/8000" }},
		{"TELGW_SIP_MEDIA_LISTEN_IP=10.1.2.3", func(s SIP) bool { return s.Media.ListenIP == "10.1.2.3" }},
		{"TELGW_SIP_MEDIA_EXTERNAL_IP=198.51.100.1", func(s SIP) bool { return s.Media.ExternalIP == "198.51.100.1" }},
		{"TELGW_SIP_MEDIA_PORT_MIN=40000", func(s SIP) bool { return s.Media.PortMin == 40000 }},
		{"TELGW_SIP_MEDIA_PORT_MAX=40001", func(s SIP) bool { return s.Media.PortMax == 40001 }},
		{"TELGW_SIP_MEDIA_TIMEOUT=1m", func(s SIP) bool { return s.Media.Timeout == time.Minute }},
		{"TELGW_SIP_MEDIA={portMin: 50000, portMax: 50010}", func(s SIP) bool { return s.Media.PortMin == 50000 && s.Media.PortMax == 50010 }},
		{"TELGW_SIP_TLS_ADDR=0.0.0.0:5061", func(s SIP) bool { return s.TLS.Addr == "0.0.0.0:5061" }},
		{"TELGW_SIP_TLS_CERT_FILE=/c", func(s SIP) bool { return s.TLS.CertFile == "/c" }},
		{"TELGW_SIP_TLS_KEY_FILE=/k", func(s SIP) bool { return s.TLS.KeyFile == "/k" }},
		{"TELGW_SIP_TLS_CA_FILE=/ca", func(s SIP) bool { return s.TLS.CAFile == "/ca" }},
		{"TELGW_SIP_TLS_MIN_VERSION=1.3", func(s SIP) bool { return s.TLS.MinVersion == "1.3" }},
		{"TELGW_SIP_WEBRTC_PORT_MAX=9", func(s SIP) bool { return s.WebRTC.PortMax == 9 }},
		{"TELGW_SIP_WEBRTC_INCLUDE_LOOPBACK=true", func(s SIP) bool { return s.WebRTC.IncludeLoopback }},
		{"TELGW_SIP_WEBRTC_CONNECT_TIMEOUT=7s", func(s SIP) bool { return s.WebRTC.ConnectTimeout == 7*time.Second }},
		{"TELGW_SIP_WEBRTC_MEDIA_TIMEOUT=8s", func(s SIP) bool { return s.WebRTC.MediaTimeout == 8*time.Second }},
		{"TELGW_SIP_DIGEST_NONCE_TTL=45s", func(s SIP) bool { return s.DigestNonceTTL == 45*time.Second }},
		{"TELGW_SIP_WEBRTC_MAX_DEVICES_PER_USER=4", func(s SIP) bool { return s.WebRTC.MaxDevicesPerUser == 4 }},
		{"TELGW_SIP_WEBRTC_MAX_CONTACTS_PER_REGISTER=2", func(s SIP) bool { return s.WebRTC.MaxContactsPerRegister == 2 }},
		// Trunks are a list: the variable takes the whole list as YAML or JSON.
		{`TELGW_SIP_TRUNKS=[{"name":"c","address":"192.0.2.1:5060","maxCalls":3,"cps":1,"optionsInterval":"20s","numberFormat":{"style":"10"},"register":{"enabled":true,"expires":"5m"},"inbound":{"username":"a","password":"b"},"auth":{"username":"u"}}]`,
			func(s SIP) bool {
				if len(s.Trunks) != 1 {
					return false
				}
				tr := s.Trunks[0]
				return tr.MaxCalls == 3 && tr.CPS == 1 && tr.OptionsInterval == 20*time.Second && tr.NumberFormat.Style == "10" &&
					tr.Register.Enabled && tr.Register.Expires == 5*time.Minute && tr.Inbound.Username == "a"
			}},
	} {
		name, _, _ := strings.Cut(tc.env, "=")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := Load("", []string{tc.env})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c.SIP) {
				t.Fatalf("%s not applied: %+v", tc.env, c.SIP)
			}
		})
	}
}

func TestSIPEnvBadValue(t *testing.T) {
	t.Parallel()
	for _, env := range []string{"TELGW_SIP_RING_TIMEOUT=forever", "TELGW_SIP_SOURCE_BURST=lots", "TELGW_SIP_REJECT_UNKNOWN_SOURCE=maybe", "TELGW_SIP_WEBRTC_PORT_MIN=-1", "TELGW_SIP_WEBRTC_PORT_MAX=70000", "TELGW_SIP_SOURCE_RATE=fast"} {
		name, _, _ := strings.Cut(env, "=")
		if _, err := Load("", []string{env}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: want error naming it, got %v", env, err)
		}
	}
}

func TestSIPInvalid(t *testing.T) {
	t.Parallel()
	trunk := func(f func(*Trunk)) func(*SIP) {
		return func(s *SIP) {
			tr := Trunk{Name: "c", Address: "192.0.2.1:5060"}
			f(&tr)
			s.Trunks = []Trunk{tr}
		}
	}
	for _, tc := range []struct {
		key  string
		edit func(*SIP)
	}{
		{"sip.addr", func(s *SIP) { s.Addr = "5060" }},
		{"sip.host", func(s *SIP) { s.Host = "a host" }},
		{"sip.realm", func(s *SIP) { s.Realm = "" }},
		{"sip.ringTimeout", func(s *SIP) { s.RingTimeout = 0 }},
		{"sip.failoverTimeout", func(s *SIP) { s.FailoverTimeout = -time.Second }},
		{"sip.sessionExpires", func(s *SIP) { s.SessionExpires = 60 * time.Second }},
		{"sip.sourceRate", func(s *SIP) { s.SourceRate = 0 }},
		{"sip.sourceBurst", func(s *SIP) { s.SourceBurst = -1 }},
		{"sip.codecs", func(s *SIP) { s.Codecs = nil }},
		{"sip.codecs[1]", func(s *SIP) { s.Codecs = []string{"PCMU/8000", "PCMA"} }},
		{"sip.media.listenIP", func(s *SIP) { s.Media.ListenIP = "eth0" }},
		{"sip.media.externalIP", func(s *SIP) { s.Media.ExternalIP = "public" }},
		{"sip.media.portMin/portMax", func(s *SIP) { s.Media.PortMin, s.Media.PortMax = 30000, 20000 }},
		{"sip.media.portMin/portMax", func(s *SIP) { s.Media.PortMin = 80 }},
		{"sip.media.timeout", func(s *SIP) { s.Media.Timeout = 0 }},
		{"sip.tls.addr", func(s *SIP) { s.TLS = SIPTLS{CertFile: "c", KeyFile: "k"} }},
		{"sip.tls.certFile", func(s *SIP) { s.TLS = SIPTLS{Addr: ":5061", CertFile: "c"} }},
		{"sip.tls.minVersion", func(s *SIP) { s.TLS = SIPTLS{Addr: ":5061", CertFile: "c", KeyFile: "k", MinVersion: "1.0"} }},
		{"sip.webrtc.portMin/portMax", func(s *SIP) { s.WebRTC.PortMin, s.WebRTC.PortMax = 50000, 40000 }},
		{"sip.webrtc.ips[0]", func(s *SIP) { s.WebRTC.IPs = []string{"lo"} }},
		{"sip.webrtc.connectTimeout", func(s *SIP) { s.WebRTC.ConnectTimeout = 0 }},
		{"sip.webrtc.maxDevicesPerUser", func(s *SIP) { s.WebRTC.MaxDevicesPerUser = 0 }},
		{"sip.webrtc.maxContactsPerRegister", func(s *SIP) { s.WebRTC.MaxContactsPerRegister = -1 }},
		{"sip.digestNonceTTL", func(s *SIP) { s.DigestNonceTTL = time.Second }},
		{"sip.digestNonceTTL", func(s *SIP) { s.DigestNonceTTL = time.Hour }},
		{"sip.trunks[0].transport", trunk(func(t *Trunk) { t.Transport = "tls" })}, // no sip.tls
		{"sip.trunks[0].transport", trunk(func(t *Trunk) { t.Transport = "sctp" })},
		{"sip.trunks[0].inbound.username", trunk(func(t *Trunk) { t.Inbound.Username = "only" })},
		{"sip.trunks[0].maxCalls", trunk(func(t *Trunk) { t.MaxCalls = -1 })},
		{"sip.trunks[0].cps", trunk(func(t *Trunk) { t.CPS = -1 })},
		{"sip.trunks[0].optionsInterval", trunk(func(t *Trunk) { t.OptionsInterval = -time.Second })},
		{"sip.trunks[0].numberFormat.style", trunk(func(t *Trunk) { t.NumberFormat.Style = "+1" })},
		{"sip.trunks[0].register.enabled", trunk(func(t *Trunk) { t.Register.Enabled = true })},
		{"sip.trunks[0].register.expires", trunk(func(t *Trunk) { t.Register.Expires = -time.Minute })},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.edit(&c.SIP)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("want an error naming %s, got %v", tc.key, err)
			}
		})
	}
}

func TestSIPValidateReportsSeveral(t *testing.T) {
	t.Parallel()
	c := Default()
	c.SIP.RingTimeout = 0
	c.SIP.Media.ExternalIP = "x"
	c.SIP.TLS.MinVersion = "0.9"
	c.SIP.WebRTC.PublicIPs = []string{"y"}
	c.SIP.Trunks = []Trunk{{Name: "a", Address: "192.0.2.1:5060", MaxCalls: -1, Register: TrunkRegister{Enabled: true}}, {Name: "a", Address: "z"}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config validated")
	}
	keys := []string{"sip.ringTimeout", "sip.media.externalIP", "sip.tls.addr", "sip.tls.certFile", "sip.tls.minVersion", "sip.webrtc.publicIPs[0]",
		"sip.trunks[0].maxCalls", "sip.trunks[0].register.enabled", "sip.trunks[1].name", "sip.trunks[1].address"}
	for _, k := range keys {
		if !strings.Contains(err.Error(), k+":") {
			t.Errorf("error does not name %s", k)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(keys) {
		t.Errorf("%d problems reported, want %d:\n%v", n, len(keys), err)
	}
}

func TestFullExampleValidates(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.SIP.Trunks) != 2 || c.SIP.TLS.Addr == "" {
		t.Fatalf("full.yaml not loaded: %+v", c.SIP)
	}
}
