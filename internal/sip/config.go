// Package sip is telgw's SIP side toward carriers and customers' SIP endpoints: a back-to-back
// user agent (B2BUA, RFC 3261 §6 and RFC 7092) on github.com/emiago/sipgo that terminates the
// caller's dialog and originates an independent one toward the callee, anchoring media through
// internal/bridge.
//
// Inbound: an INVITE from a carrier trunk (matched by source address, optionally digest) to one
// of telgw's numbers goes to the number's Route. Outbound: a customer's endpoint authenticates
// with digest credentials bound to its numbers and its INVITE leaves by the trunks of the first
// matching OutboundRoute, failing over on 408, 5xx and timeouts.
package sip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/sip/number"
)

// Config configures a Service.
type Config struct {
	// Addr is the UDP and TCP listen address. Default 127.0.0.1:5060.
	Addr string
	// Host is the host written in Contact and Via toward peers. Default: Addr's host
	// (127.0.0.1 when Addr's host is unspecified).
	Host string
	// Realm is the digest realm of challenges to customer endpoints. Default "telgw".
	Realm string
	// DigestNonceTTL is how long a digest nonce of this node is accepted (RFC 7616 §3.4.5: each
	// nonce-count once within it). Default 60s (digest.DefaultNonceTTL).
	DigestNonceTTL time.Duration
	// Trunks are the carrier trunks.
	Trunks []TrunkConfig
	// Routes are the outbound routes (ACS SIP routing); the API may replace them at run time.
	Routes []OutboundRoute
	// RejectUnknownSource answers 403 to calls to telgw's numbers from a source that is no
	// trunk. Default true; false drops them silently (no response, RFC 3261 §26.3.2.4 advice
	// against helping scanners).
	RejectUnknownSource *bool
	// DialogSourceCheck makes in-dialog requests come over their leg's transport from its
	// source IP, on top of the Call-ID and tags (peerDialog in dialog.go). Default true; false
	// matches Call-ID and tags only.
	DialogSourceCheck *bool
	// RingTimeout bounds how long a callee may ring before telgw gives up (408 to the caller).
	// Default 120s.
	RingTimeout time.Duration
	// FailoverTimeout is how long telgw waits for any response but 100 from a trunk before it
	// tries the next trunk. Default 5s.
	FailoverTimeout time.Duration
	// SessionExpires is the RFC 4028 session interval telgw asks carriers for (telgw refreshes
	// as UAC at half of it). Default 1800s; minimum 90s (RFC 4028 §4 Min-SE).
	SessionExpires time.Duration
	// SourceRate and SourceBurst rate-limit out-of-dialog requests per source IP (requests per
	// second and bucket size); excess requests are dropped. Requests from a trunk's addresses
	// (but over WebSocket) are exempt: the trunk's CPS limits its calls. Default 200/s, burst 400.
	SourceRate  float64
	SourceBurst int
	// IdleTimeout closes a TCP, TLS or WebSocket connection without traffic (a message, an RFC
	// 5626 CRLF keep-alive, a WebSocket frame) for this long, unless a call in progress uses it.
	// Default 6m (above the 5-minute registration refresh of the bundled softphone and RFC 5626
	// §4.4.1's keep-alive interval); negative disables.
	IdleTimeout time.Duration
	// RequestTimeout is how long a new TCP or TLS connection may take to deliver its first
	// complete message (TLS handshake included), and any message to arrive whole once begun.
	// Default 10s.
	RequestTimeout time.Duration
	// WSRegisterTimeout is how long a WebSocket may stay open without an authenticated request
	// (a REGISTER answered 2xx, a request with credentials answered 18x/2xx). Default 10s.
	WSRegisterTimeout time.Duration
	// MaxConnsPerIP caps the TCP, TLS and WebSocket connections from one IP address (a trunk's
	// addresses are exempt; mind reverse proxies and large NATs). Default 64; negative: no cap.
	MaxConnsPerIP int
	// Codecs are the codec keys telgw relays (sdp.Codec.Key). Default PCMU, PCMA and
	// telephone-event.
	Codecs []string
	// Media configures the RTP relay.
	Media bridge.Config
	// TLS, when its Addr is set, also serves SIP over TLS and lets trunks use transport tls.
	// Default: off.
	TLS TLSConfig
	// Logger receives call events (keys call_id, trunk, number, err). Default: discard.
	Logger *slog.Logger
	// Registerer receives the SIP and RTP metrics. Default: none.
	Registerer prometheus.Registerer
}

// TrunkConfig is one carrier trunk.
type TrunkConfig struct {
	// Name identifies the trunk in routes, CDRs and metrics (ACS uses the trunk's FQDN).
	Name string
	// Address is host:port where calls to this carrier go.
	Address string
	// Transport is udp, tcp or tls (tls needs Config.TLS). Default udp.
	Transport string
	// Allow lists source prefixes accepted as this trunk. Default: Address's resolved IPs (/32
	// or /128).
	Allow []netip.Prefix
	// InboundUsername and InboundPassword, when set, make telgw challenge the trunk's INVITEs
	// with digest (RFC 7616) on top of the source check.
	InboundUsername, InboundPassword string
	// Username and Password answer the carrier's 401/407 challenges (RFC 3261 §22.2, §22.3).
	Username, Password string
	// MaxCalls limits concurrent calls over the trunk (both directions). Default 0: no limit.
	MaxCalls int
	// CPS limits new calls per second over the trunk. Default 0: no limit.
	CPS float64
	// OptionsInterval sends OPTIONS keepalives (RFC 3261 §11) at this interval and marks the
	// trunk down after 2 failures, up after 1 success. Default 0: off (the trunk is always up).
	OptionsInterval time.Duration
	// Format is how numbers are written toward this carrier.
	Format number.Format
	// Register keeps a REGISTER binding (RFC 3261 §10) for Username at Address, answering
	// digest challenges with Password. Default false.
	Register bool
	// RegisterExpires is the binding lifetime asked for; telgw refreshes at half of what the
	// registrar grants. Default 1h.
	RegisterExpires time.Duration
}

func (c *Config) validate() error {
	var errs []error
	if c.Addr == "" {
		c.Addr = "127.0.0.1:5060"
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("addr: %q is not host:port", c.Addr))
	} else if _, err := strconv.Atoi(port); err != nil {
		errs = append(errs, fmt.Errorf("addr: bad port %q", port))
	}
	if c.Host == "" {
		c.Host = host
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() || host == "" {
			c.Host = "127.0.0.1"
		}
	}
	if c.Realm == "" {
		c.Realm = "telgw"
	}
	if c.DigestNonceTTL < 0 {
		errs = append(errs, fmt.Errorf("digestNonceTTL: must not be negative"))
	}
	if c.RejectUnknownSource == nil {
		t := true
		c.RejectUnknownSource = &t
	}
	if c.DialogSourceCheck == nil {
		t := true
		c.DialogSourceCheck = &t
	}
	if c.RingTimeout == 0 {
		c.RingTimeout = 120 * time.Second
	}
	if c.FailoverTimeout == 0 {
		c.FailoverTimeout = 5 * time.Second
	}
	if c.SessionExpires == 0 {
		c.SessionExpires = 1800 * time.Second
	}
	if c.SessionExpires < 90*time.Second {
		errs = append(errs, fmt.Errorf("sessionExpires: %s is below the RFC 4028 minimum of 90s", c.SessionExpires))
	}
	if c.SourceRate == 0 {
		c.SourceRate = 200
	}
	if c.SourceBurst == 0 {
		c.SourceBurst = 400
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 6 * time.Minute
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.WSRegisterTimeout == 0 {
		c.WSRegisterTimeout = 10 * time.Second
	}
	if c.RequestTimeout < 0 || c.WSRegisterTimeout < 0 {
		errs = append(errs, errors.New("requestTimeout, wsRegisterTimeout: must not be negative"))
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 64
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []string{"PCMU/8000", "PCMA/8000", "TELEPHONE-EVENT/8000"}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.TLS.validate(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i := range c.Trunks {
		t := &c.Trunks[i]
		if err := t.validate(); err != nil {
			errs = append(errs, fmt.Errorf("trunks[%d]: %w", i, err))
		} else if t.Transport == "tls" && !c.TLS.enabled() {
			errs = append(errs, fmt.Errorf("trunks[%d]: transport tls needs TLS configured", i))
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("trunks[%d]: duplicate name %q", i, t.Name))
		}
		seen[t.Name] = true
	}
	for i := range c.Routes {
		if err := c.Routes[i].Compile(); err != nil {
			errs = append(errs, fmt.Errorf("routes[%d].numberPattern: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (t *TrunkConfig) validate() error {
	if t.Name == "" {
		return errors.New("name: must not be empty")
	}
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return fmt.Errorf("address: %q is not host:port", t.Address)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("address: bad port %q", port)
	}
	switch t.Transport {
	case "":
		t.Transport = "udp"
	case "udp", "tcp", "tls":
	default:
		return fmt.Errorf("transport: %q is not udp, tcp or tls", t.Transport)
	}
	if len(t.Allow) == 0 {
		if ip, err := netip.ParseAddr(host); err == nil {
			t.Allow = []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
		} else if ips, err := net.LookupIP(host); err == nil {
			for _, ip := range ips {
				a, _ := netip.AddrFromSlice(ip)
				a = a.Unmap()
				t.Allow = append(t.Allow, netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	if t.MaxCalls < 0 || t.CPS < 0 {
		return errors.New("maxCalls and cps must not be negative")
	}
	return t.Format.Validate()
}
