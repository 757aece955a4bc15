package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/sip"
	"github.com/telgw/telgw/internal/sip/number"
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
	// Emergency routes 911/933 to an emergency trunk (fraud.go).
	Emergency SIPEmergency `yaml:"emergency"`
	// STIR configures STIR/SHAKEN signing and verification (fraud.go).
	STIR STIR `yaml:"stir"`
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

// defaultSIP is sip.DefaultConfig in the YAML shape (the defaults live in internal/sip and
// internal/bridge).
func defaultSIP() SIP {
	d := sip.DefaultConfig()
	return SIP{
		Addr:                d.Addr,
		Realm:               d.Realm,
		DigestNonceTTL:      d.DigestNonceTTL,
		RejectUnknownSource: *d.RejectUnknownSource,
		DialogSourceCheck:   *d.DialogSourceCheck,
		RingTimeout:         d.RingTimeout,
		FailoverTimeout:     d.FailoverTimeout,
		SessionExpires:      d.SessionExpires,
		SourceRate:          d.SourceRate,
		SourceBurst:         d.SourceBurst,
		IdleTimeout:         d.IdleTimeout,
		RequestTimeout:      d.RequestTimeout,
		MaxConnsPerIP:       d.MaxConnsPerIP,
		Codecs:              d.Codecs,
		Media:               SIPMedia{PortMin: d.Media.PortMin, PortMax: d.Media.PortMax, Timeout: d.Media.MediaTimeout},
		WebRTC:              defaultWebRTC(),
	}
}

// ServiceConfig is the sip.Config of this section: text parsed into addresses and versions,
// each value that does not parse reported naming its key (Validate reports the rest). The
// caller adds Logger and Registerer.
func (s SIP) ServiceConfig() (sip.Config, error) {
	var errs []error
	reject, checkSource := s.RejectUnknownSource, s.DialogSourceCheck
	c := sip.Config{Addr: s.Addr, Host: s.Host, Realm: s.Realm, DigestNonceTTL: s.DigestNonceTTL,
		RejectUnknownSource: &reject, DialogSourceCheck: &checkSource,
		RingTimeout: s.RingTimeout, FailoverTimeout: s.FailoverTimeout, SessionExpires: s.SessionExpires,
		SourceRate: s.SourceRate, SourceBurst: s.SourceBurst, IdleTimeout: s.IdleTimeout, RequestTimeout: s.RequestTimeout,
		WSRegisterTimeout: s.WebRTC.RegisterTimeout, MaxConnsPerIP: s.MaxConnsPerIP,
		Codecs:    append([]string(nil), s.Codecs...),
		Media:     bridge.Config{PortMin: s.Media.PortMin, PortMax: s.Media.PortMax, MediaTimeout: s.Media.Timeout},
		TLS:       sip.TLSConfig{Addr: s.TLS.Addr, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile, CAFile: s.TLS.CAFile},
		Emergency: s.Emergency.serviceConfig(),
	}
	for _, f := range []struct {
		key, text string
		ip        *netip.Addr
	}{{"sip.media.listenIP", s.Media.ListenIP, &c.Media.ListenIP}, {"sip.media.externalIP", s.Media.ExternalIP, &c.Media.ExternalIP}} {
		if f.text == "" {
			continue
		}
		a, err := netip.ParseAddr(f.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an IP address", f.key, f.text))
			continue
		}
		*f.ip = a
	}
	switch s.TLS.MinVersion {
	case "":
	case "1.2":
		c.TLS.MinVersion = tls.VersionTLS12
	case "1.3":
		c.TLS.MinVersion = tls.VersionTLS13
	default:
		errs = append(errs, fmt.Errorf("sip.tls.minVersion: %q is not 1.2 or 1.3", s.TLS.MinVersion))
		c.TLS.MinVersion = badTLSVersion
	}
	for i, t := range s.Trunks {
		tc := sip.TrunkConfig{Name: t.Name, Address: t.Address, Transport: t.Transport,
			InboundUsername: t.Inbound.Username, InboundPassword: t.Inbound.Password,
			Username: t.Auth.Username, Password: t.Auth.Password,
			MaxCalls: t.MaxCalls, CPS: t.CPS, OptionsInterval: t.OptionsInterval,
			Format:   number.Format{Style: t.NumberFormat.Style, TechPrefix: t.NumberFormat.TechPrefix, UserPhone: t.NumberFormat.UserPhone},
			Register: t.Register.Enabled, RegisterExpires: t.Register.Expires}
		for j, a := range t.Inbound.Allow {
			p, err := parsePrefix(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("sip.trunks[%d].inbound.allow[%d]: %q is not a CIDR or IP", i, j, a))
				continue
			}
			tc.Allow = append(tc.Allow, p)
		}
		c.Trunks = append(c.Trunks, tc)
	}
	return c, errors.Join(errs...)
}

// badTLSVersion stands for a sip.tls.minVersion that did not parse, so that sip's Validate
// still sees the TLS section as set (and reports a missing addr or certificate).
const badTLSVersion = 1

func (s *SIP) validate() []error {
	c, err := s.ServiceConfig()
	errs := flatten(nil, "", err, nil)
	// A value that did not parse is reported once, by the parse.
	errs = flatten(errs, "sip.", c.Validate(), reported(errs, "sip."))
	errs = append(errs, s.STIR.validate()...)
	return append(errs, s.WebRTC.validate("sip.webrtc")...)
}
