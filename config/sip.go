package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// SIP configures the SIP stack (internal/sip): listeners, the B2BUA's limits and timers, the
// carrier-side RTP relay and the carrier trunks.
type SIP struct {
	// Addr is the UDP and TCP listen address. Default "127.0.0.1:5060".
	Addr string `yaml:"addr"`
	// Host is the host written in Contact and Via toward peers (the advertised address behind
	// NAT or a load balancer). Default: Addr's host (127.0.0.1 when Addr's host is unspecified).
	Host string `yaml:"host"`
	// Realm is the digest realm of challenges to customer endpoints. Default "telgw".
	Realm string `yaml:"realm"`
	// DigestNonceTTL is how long a digest nonce is accepted, for customer endpoints, trunks and
	// WebRTC users alike. Each nonce is good on the node that issued it only, and each of its
	// nonce-counts once (RFC 7616 §3.4.5). Default 60s; 5s to 10m.
	DigestNonceTTL time.Duration `yaml:"digestNonceTTL"`
	// RejectUnknownSource answers 403 to calls to telgw's numbers from a source that is no
	// trunk. Default true; false drops them silently (RFC 3261 §26.3.2.4: do not help scanners).
	RejectUnknownSource bool `yaml:"rejectUnknownSource"`
	// DialogSourceCheck makes in-dialog requests (BYE, re-INVITE, INFO, ACK) come over their
	// leg's transport from its source IP (a trunk's: any of its allow addresses; a WebSocket
	// leg's: its own connection), on top of the Call-ID and tags (RFC 3261 §12.2.2). Default
	// true; false matches Call-ID and tags only, for peers that send them from other addresses.
	DialogSourceCheck bool `yaml:"dialogSourceCheck"`
	// RingTimeout bounds how long a callee may ring before telgw gives up (408). Default 120s.
	RingTimeout time.Duration `yaml:"ringTimeout"`
	// FailoverTimeout is how long telgw waits for any response but 100 from a trunk before it
	// tries the route's next trunk. Default 5s.
	FailoverTimeout time.Duration `yaml:"failoverTimeout"`
	// SessionExpires is the RFC 4028 session interval asked of carriers. Default 30m; at least
	// 90s (RFC 4028 §4 Min-SE).
	SessionExpires time.Duration `yaml:"sessionExpires"`
	// SourceRate (requests per second) and SourceBurst rate-limit out-of-dialog requests per
	// source IP; excess requests are dropped. A trunk's addresses are exempt: its cps limits
	// them. Default 200 and 400.
	SourceRate  float64 `yaml:"sourceRate"`
	SourceBurst int     `yaml:"sourceBurst"`
	// IdleTimeout closes a TCP, TLS or WebSocket connection without traffic (a message, an RFC
	// 5626 CRLF keep-alive, a WebSocket frame) for this long, unless a call uses it; a trunk's
	// addresses are exempt. Default 6m; negative disables.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// RequestTimeout is how long a new TCP or TLS connection may take to deliver its first
	// complete message (TLS handshake included), and any message to arrive whole. Default 10s.
	RequestTimeout time.Duration `yaml:"requestTimeout"`
	// MaxConnsPerIP caps TCP, TLS and WebSocket connections from one IP address; a trunk's
	// addresses are exempt. Default 64; 0: no cap.
	MaxConnsPerIP int `yaml:"maxConnsPerIP"`
	// Codecs are the codecs telgw relays, as NAME/RATE (case-insensitive), in preference order.
	// Default PCMU/8000, PCMA/8000, telephone-event/8000.
	Codecs []string `yaml:"codecs"`
	// Media configures the carrier-side RTP relay.
	Media SIPMedia `yaml:"media"`
	// TLS, when its addr is set, also serves SIP over TLS (RFC 3261 §26.2) and lets trunks use
	// transport tls.
	TLS SIPTLS `yaml:"tls"`
	// Trunks are the carrier SIP trunks.
	Trunks []Trunk `yaml:"trunks"`
	// WebRTC configures the media of WebRTC users' call legs.
	WebRTC WebRTC `yaml:"webrtc"`
}

// SIPMedia configures the RTP relay between carrier-side call legs (internal/bridge).
type SIPMedia struct {
	// ListenIP is the local address RTP sockets bind to. Default: sip.addr's host.
	ListenIP string `yaml:"listenIP"`
	// ExternalIP is the address written into SDP (1:1 NAT, public address). Default ListenIP
	// (127.0.0.1 when ListenIP is unspecified).
	ExternalIP string `yaml:"externalIP"`
	// PortMin and PortMax bound the RTP/RTCP port pairs. Default 20000–39999.
	PortMin int `yaml:"portMin"`
	PortMax int `yaml:"portMax"`
	// Timeout ends a call when a leg that should send RTP has sent none for this long. Default
	// 30s; negative disables.
	Timeout time.Duration `yaml:"timeout"`
}

// SIPTLS is the SIP over TLS listener and the client side of TLS trunks.
type SIPTLS struct {
	// Addr is the TLS listen address (conventionally port 5061). Default empty: no TLS.
	Addr string `yaml:"addr"`
	// CertFile and KeyFile are the PEM certificate chain and key telgw presents, as a server
	// and as a client to carriers that ask for one. Required with Addr.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// CAFile is a PEM bundle that verifies carriers' certificates (and client certificates
	// they present). Default: the system roots.
	CAFile string `yaml:"caFile"`
	// MinVersion is the lowest TLS version accepted, "1.2" or "1.3". Default "1.2".
	MinVersion string `yaml:"minVersion"`
}

// Trunk is one carrier SIP trunk.
type Trunk struct {
	// Name identifies the trunk in routes, CDRs and metrics.
	Name string `yaml:"name"`
	// Address is host:port where calls to this carrier go.
	Address string `yaml:"address"`
	// Transport is udp, tcp or tls (tls needs sip.tls). Default udp.
	Transport string `yaml:"transport"`
	// Inbound controls who may send calls in over this trunk.
	Inbound TrunkInbound `yaml:"inbound"`
	// Auth holds the outbound digest credentials the carrier asks for (and registers with).
	Auth TrunkAuth `yaml:"auth"`
	// MaxCalls limits concurrent calls over the trunk, both directions. Default 0: no limit.
	MaxCalls int `yaml:"maxCalls"`
	// CPS limits new calls per second over the trunk. Default 0: no limit.
	CPS float64 `yaml:"cps"`
	// OptionsInterval sends OPTIONS keepalives (RFC 3261 §11) at this interval; the trunk is
	// down after 2 failures, up after 1 answer. Default 0: off.
	OptionsInterval time.Duration `yaml:"optionsInterval"`
	// NumberFormat is how numbers are written toward this carrier.
	NumberFormat TrunkNumberFormat `yaml:"numberFormat"`
	// Register keeps a REGISTER binding (RFC 3261 §10) at the carrier.
	Register TrunkRegister `yaml:"register"`
}

// TrunkInbound restricts inbound calls.
type TrunkInbound struct {
	// Allow lists source CIDRs or IPs. Default: the trunk's resolved addresses.
	Allow []string `yaml:"allow"`
	// Username and Password, when set, make telgw challenge the trunk's INVITEs with digest
	// (RFC 7616) on top of the source check. Default: no challenge.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// TrunkAuth holds the digest credentials telgw answers the carrier's 401/407 with.
type TrunkAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// TrunkNumberFormat is how a carrier wants numbers in the user part of URIs.
type TrunkNumberFormat struct {
	// Style is e164 (+14155550123), 11 (14155550123) or 10 (4155550123, NANP only). Default e164.
	Style string `yaml:"style"`
	// TechPrefix is prepended to the called number only (e.g. "1010"). Default none.
	TechPrefix string `yaml:"techPrefix"`
	// UserPhone adds ";user=phone" to Request-URI and To (RFC 3261 §19.1.1). Default false.
	UserPhone bool `yaml:"userPhone"`
}

// TrunkRegister is a REGISTER binding for auth.username at the trunk's address.
type TrunkRegister struct {
	// Enabled keeps the binding (needs auth.username). Default false.
	Enabled bool `yaml:"enabled"`
	// Expires is the binding lifetime asked for; telgw refreshes at half of what the registrar
	// grants. Default 1h (when 0).
	Expires time.Duration `yaml:"expires"`
}

func defaultSIP() SIP {
	return SIP{
		Addr:                "127.0.0.1:5060",
		Realm:               "telgw",
		DigestNonceTTL:      time.Minute,
		RejectUnknownSource: true,
		DialogSourceCheck:   true,
		RingTimeout:         120 * time.Second,
		FailoverTimeout:     5 * time.Second,
		SessionExpires:      30 * time.Minute,
		SourceRate:          200,
		SourceBurst:         400,
		IdleTimeout:         6 * time.Minute,
		RequestTimeout:      10 * time.Second,
		MaxConnsPerIP:       64,
		Codecs:              []string{"PCMU/8000", "PCMA/8000", "telephone-event/8000"},
		Media:               SIPMedia{PortMin: 20000, PortMax: 39999, Timeout: 30 * time.Second},
		WebRTC:              defaultWebRTC(),
	}
}

func (s *SIP) validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !isHostPort(s.Addr) {
		add("sip.addr", "%q is not host:port", s.Addr)
	}
	if net.ParseIP(s.Host) == nil && strings.ContainsAny(s.Host, " :;/@[]") {
		add("sip.host", "%q is not a host name or IP address", s.Host)
	}
	if s.Realm == "" {
		add("sip.realm", "must not be empty")
	}
	if s.DigestNonceTTL < 5*time.Second || s.DigestNonceTTL > 10*time.Minute {
		add("sip.digestNonceTTL", "%s is outside 5s–10m", s.DigestNonceTTL)
	}
	if s.RingTimeout <= 0 {
		add("sip.ringTimeout", "must be positive")
	}
	if s.FailoverTimeout <= 0 {
		add("sip.failoverTimeout", "must be positive")
	}
	if s.SessionExpires < 90*time.Second {
		add("sip.sessionExpires", "%s is below the RFC 4028 minimum of 90s", s.SessionExpires)
	}
	if s.SourceRate <= 0 {
		add("sip.sourceRate", "must be positive")
	}
	if s.SourceBurst <= 0 {
		add("sip.sourceBurst", "must be positive")
	}
	if s.IdleTimeout == 0 {
		add("sip.idleTimeout", "must not be 0 (negative disables)")
	}
	if s.RequestTimeout <= 0 {
		add("sip.requestTimeout", "must be positive")
	}
	if s.MaxConnsPerIP < 0 {
		add("sip.maxConnsPerIP", "must not be negative (0: no cap)")
	}
	if len(s.Codecs) == 0 {
		add("sip.codecs", "must list at least one codec")
	}
	for i, c := range s.Codecs {
		name, rate, ok := strings.Cut(c, "/")
		if r, err := strconv.Atoi(rate); !ok || name == "" || err != nil || r <= 0 {
			add(fmt.Sprintf("sip.codecs[%d]", i), "%q is not NAME/RATE, e.g. PCMU/8000", c)
		}
	}
	for key, ip := range map[string]string{"sip.media.listenIP": s.Media.ListenIP, "sip.media.externalIP": s.Media.ExternalIP} {
		if ip != "" && net.ParseIP(ip) == nil {
			add(key, "%q is not an IP address", ip)
		}
	}
	if m := s.Media; m.PortMin < 1024 || m.PortMax > 65535 || m.PortMax-m.PortMin < 1 {
		add("sip.media.portMin/portMax", "%d–%d must hold at least one RTP/RTCP pair within 1024–65535", m.PortMin, m.PortMax)
	}
	if s.Media.Timeout == 0 {
		add("sip.media.timeout", "must not be 0 (negative disables)")
	}
	errs = append(errs, s.TLS.validate()...)
	errs = append(errs, s.WebRTC.validate("sip.webrtc")...)
	seen := map[string]bool{}
	for i, t := range s.Trunks {
		errs = append(errs, t.validate(fmt.Sprintf("sip.trunks[%d]", i), s.TLS.Addr != "")...)
		if t.Name != "" && seen[t.Name] {
			add(fmt.Sprintf("sip.trunks[%d].name", i), "duplicate trunk %q", t.Name)
		}
		seen[t.Name] = true
	}
	return errs
}

func (t *SIPTLS) validate() []error {
	if t.Addr == "" && t.CertFile == "" && t.KeyFile == "" && t.CAFile == "" && t.MinVersion == "" {
		return nil
	}
	var errs []error
	if !isHostPort(t.Addr) {
		errs = append(errs, fmt.Errorf("sip.tls.addr: %q is not host:port", t.Addr))
	}
	if t.CertFile == "" || t.KeyFile == "" {
		errs = append(errs, fmt.Errorf("sip.tls.certFile: certFile and keyFile are required with sip.tls"))
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("sip.tls.minVersion: %q is not 1.2 or 1.3", t.MinVersion))
	}
	return errs
}

func (t *Trunk) validate(key string, tls bool) []error {
	var errs []error
	add := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, args...)))
	}
	if t.Name == "" {
		add("name", "must not be empty")
	}
	if !isHostPort(t.Address) {
		add("address", "%q is not host:port", t.Address)
	}
	switch t.Transport {
	case "", "udp", "tcp":
	case "tls":
		if !tls {
			add("transport", "tls needs sip.tls (addr, certFile, keyFile)")
		}
	default:
		add("transport", "%q is not udp, tcp or tls", t.Transport)
	}
	for j, c := range t.Inbound.Allow {
		if _, _, err := net.ParseCIDR(c); err != nil && net.ParseIP(c) == nil {
			add(fmt.Sprintf("inbound.allow[%d]", j), "%q is not a CIDR or IP", c)
		}
	}
	if (t.Inbound.Username == "") != (t.Inbound.Password == "") {
		add("inbound.username", "username and password must be set together")
	}
	if t.MaxCalls < 0 {
		add("maxCalls", "must not be negative")
	}
	if t.CPS < 0 {
		add("cps", "must not be negative")
	}
	if t.OptionsInterval < 0 {
		add("optionsInterval", "must not be negative")
	}
	switch t.NumberFormat.Style {
	case "", "e164", "11", "10":
	default:
		add("numberFormat.style", "%q is not e164, 11 or 10", t.NumberFormat.Style)
	}
	if t.Register.Enabled && t.Auth.Username == "" {
		add("register.enabled", "needs auth.username (the registered user)")
	}
	if t.Register.Expires < 0 {
		add("register.expires", "must not be negative")
	}
	return errs
}

// isHostPort reports whether s is host:port with a numeric port.
func isHostPort(s string) bool {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}
