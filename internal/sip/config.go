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
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telgw/telgw/internal/bridge"
	"github.com/telgw/telgw/internal/sip/digest"
	"github.com/telgw/telgw/internal/sip/number"
)

// Config configures a Service. DefaultConfig holds every default; New fills a zero field with
// DefaultConfig's value (except MaxConnsPerIP, whose 0 means no cap), then calls Validate.
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
	// addresses are exempt; mind reverse proxies and large NATs). Default 64; 0: no cap.
	MaxConnsPerIP int
	// Codecs are the codecs telgw relays, as NAME/RATE (case-insensitive; New upper-cases them to
	// the sdp.Codec.Key form), in preference order. Default PCMU/8000, PCMA/8000,
	// telephone-event/8000.
	Codecs []string
	// Media configures the RTP relay. Default bridge.DefaultConfig, its ListenIP Addr's host.
	Media bridge.Config
	// TLS, when its Addr is set, also serves SIP over TLS and lets trunks use transport tls.
	// Default: off.
	TLS TLSConfig
	// Emergency routes 911/933 to an emergency trunk (emergency.go). Default: off (503).
	Emergency EmergencyConfig
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
	// Allow lists source prefixes accepted as this trunk. Default: Address's IPs (/32 or /128),
	// a host name resolved when New or SetRouting takes the trunk (never by Validate).
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

// DefaultConfig returns the SIP defaults that docs/CONFIG.md documents for the sip section.
func DefaultConfig() Config {
	yes := func() *bool { b := true; return &b }
	return Config{
		Addr:                "127.0.0.1:5060",
		Realm:               "telgw",
		DigestNonceTTL:      digest.DefaultNonceTTL,
		RejectUnknownSource: yes(),
		DialogSourceCheck:   yes(),
		RingTimeout:         120 * time.Second,
		FailoverTimeout:     5 * time.Second,
		SessionExpires:      30 * time.Minute,
		SourceRate:          200,
		SourceBurst:         400,
		IdleTimeout:         6 * time.Minute,
		RequestTimeout:      10 * time.Second,
		WSRegisterTimeout:   10 * time.Second,
		MaxConnsPerIP:       64,
		Codecs:              []string{"PCMU/8000", "PCMA/8000", "telephone-event/8000"},
		Media:               bridge.DefaultConfig(),
	}
}

// withDefaults returns c with every zero field set from DefaultConfig, the derived defaults
// (Host and Media.ListenIP from Addr, trunk transport udp, TLS 1.2) and the codecs upper-cased.
// It does no I/O; c is not modified.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Addr = cmp.Or(c.Addr, d.Addr)
	host, _, _ := net.SplitHostPort(c.Addr)
	if c.Host == "" {
		c.Host = host
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() || host == "" {
			c.Host = "127.0.0.1"
		}
	}
	c.Realm = cmp.Or(c.Realm, d.Realm)
	c.DigestNonceTTL = cmp.Or(c.DigestNonceTTL, d.DigestNonceTTL)
	if c.RejectUnknownSource == nil {
		c.RejectUnknownSource = d.RejectUnknownSource
	}
	if c.DialogSourceCheck == nil {
		c.DialogSourceCheck = d.DialogSourceCheck
	}
	c.RingTimeout = cmp.Or(c.RingTimeout, d.RingTimeout)
	c.FailoverTimeout = cmp.Or(c.FailoverTimeout, d.FailoverTimeout)
	c.SessionExpires = cmp.Or(c.SessionExpires, d.SessionExpires)
	c.SourceRate = cmp.Or(c.SourceRate, d.SourceRate)
	c.SourceBurst = cmp.Or(c.SourceBurst, d.SourceBurst)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, d.RequestTimeout)
	c.WSRegisterTimeout = cmp.Or(c.WSRegisterTimeout, d.WSRegisterTimeout)
	if len(c.Codecs) == 0 {
		c.Codecs = d.Codecs
	}
	codecs := make([]string, len(c.Codecs))
	for i, k := range c.Codecs {
		codecs[i] = strings.ToUpper(k)
	}
	c.Codecs = codecs
	if c.Media.PortMin == 0 && c.Media.PortMax == 0 {
		c.Media.PortMin, c.Media.PortMax = d.Media.PortMin, d.Media.PortMax
	}
	c.Media.MediaTimeout = cmp.Or(c.Media.MediaTimeout, d.Media.MediaTimeout)
	if !c.Media.ListenIP.IsValid() {
		if ip, err := netip.ParseAddr(host); err == nil {
			c.Media.ListenIP = ip
		}
	}
	if c.TLS.enabled() && c.TLS.MinVersion == 0 {
		c.TLS.MinVersion = tls.VersionTLS12
	}
	c.Trunks = append([]TrunkConfig(nil), c.Trunks...)
	for i := range c.Trunks {
		c.Trunks[i].Transport = cmp.Or(c.Trunks[i].Transport, "udp")
	}
	c.Routes = append([]OutboundRoute(nil), c.Routes...)
	c.Emergency = c.Emergency.withDefaults()
	return c
}

// provision fills the defaults, validates, compiles the routes' patterns and resolves the
// trunks' default allow-lists (DNS for a trunk addressed by name): what New and SetRouting do
// with a Config before using it.
func (c Config) provision(ctx context.Context) (Config, error) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for i := range c.Routes {
		if err := c.Routes[i].Compile(); err != nil {
			return c, fmt.Errorf("routes[%d].numberPattern: %w", i, err)
		}
	}
	for i := range c.Trunks {
		c.Trunks[i].Allow = c.Trunks[i].resolveAllow(ctx)
	}
	return c, nil
}

// Validate reports every problem with c at once, each naming its key as docs/CONFIG.md does
// under sip (e.g. "trunks[0].address"). It is pure: no DNS, no files, c is not modified. It
// checks a complete Config (DefaultConfig with changes); New fills zero fields first.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !isHostPort(c.Addr) {
		add("addr", "%q is not host:port", c.Addr)
	}
	if net.ParseIP(c.Host) == nil && strings.ContainsAny(c.Host, " :;/@[]") {
		add("host", "%q is not a host name or IP address", c.Host)
	}
	if c.Realm == "" {
		add("realm", "must not be empty")
	}
	if c.DigestNonceTTL < 5*time.Second || c.DigestNonceTTL > 10*time.Minute {
		add("digestNonceTTL", "%s is outside 5s–10m", c.DigestNonceTTL)
	}
	if c.RingTimeout <= 0 {
		add("ringTimeout", "must be positive")
	}
	if c.FailoverTimeout <= 0 {
		add("failoverTimeout", "must be positive")
	}
	if c.SessionExpires < 90*time.Second {
		add("sessionExpires", "%s is below the RFC 4028 minimum of 90s", c.SessionExpires)
	}
	if c.SourceRate <= 0 {
		add("sourceRate", "must be positive")
	}
	if c.SourceBurst <= 0 {
		add("sourceBurst", "must be positive")
	}
	if c.IdleTimeout == 0 {
		add("idleTimeout", "must not be 0 (negative disables)")
	}
	if c.RequestTimeout <= 0 {
		add("requestTimeout", "must be positive")
	}
	if c.WSRegisterTimeout <= 0 {
		add("webrtc.registerTimeout", "must be positive")
	}
	if c.MaxConnsPerIP < 0 {
		add("maxConnsPerIP", "must not be negative (0: no cap)")
	}
	if len(c.Codecs) == 0 {
		add("codecs", "must list at least one codec")
	}
	for i, k := range c.Codecs {
		name, rate, ok := strings.Cut(k, "/")
		if r, err := strconv.Atoi(rate); !ok || name == "" || err != nil || r <= 0 {
			add(fmt.Sprintf("codecs[%d]", i), "%q is not NAME/RATE, e.g. PCMU/8000", k)
		}
	}
	if err := c.Media.Validate(); err != nil {
		errs = append(errs, prefixErrors("media.", err))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Emergency.Validate(); err != nil {
		errs = append(errs, prefixErrors("emergency.", err))
	}
	seen := map[string]bool{}
	for i, t := range c.Trunks {
		key := fmt.Sprintf("trunks[%d]", i)
		if err := t.Validate(); err != nil {
			errs = append(errs, prefixErrors(key+".", err))
		}
		if t.Transport == "tls" && !c.TLS.enabled() {
			add(key+".transport", "transport tls needs TLS (tls.addr, certFile, keyFile)")
		}
		if t.Name != "" && seen[t.Name] {
			add(key+".name", "duplicate trunk %q", t.Name)
		}
		seen[t.Name] = true
	}
	if c.Emergency.Trunk != "" && !seen[c.Emergency.Trunk] {
		add("emergency.trunk", "%q is not one of the trunks", c.Emergency.Trunk)
	}
	for _, t := range c.Trunks {
		// RFC 3261 §18.1.1: a request near the path MTU goes over a congestion-controlled
		// transport; an INVITE with SDP and a PIDF-LO is past 1300 bytes.
		if t.Name == c.Emergency.Trunk && c.Emergency.SendLocation && (t.Transport == "" || t.Transport == "udp") {
			add("emergency.sendLocation", "needs the emergency trunk %q on tcp or tls (an INVITE with a location is too big for UDP)", t.Name)
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem with the trunk, keys relative to it ("address"). It does no
// DNS: a host name is checked for form only and resolved when New or SetRouting takes it.
func (t TrunkConfig) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if t.Name == "" {
		add("name", "must not be empty")
	}
	if _, p, err := net.SplitHostPort(t.Address); err != nil {
		add("address", "%q is not host:port", t.Address)
	} else if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
		add("address", "%q has no port 1–65535", t.Address)
	}
	switch t.Transport {
	case "", "udp", "tcp", "tls":
	default:
		add("transport", "%q is not udp, tcp or tls", t.Transport)
	}
	if (t.InboundUsername == "") != (t.InboundPassword == "") {
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
	if err := t.Format.Validate(); err != nil {
		add("numberFormat.style", "%q is not e164, 11 or 10", t.Format.Style)
	}
	if t.Register && t.Username == "" {
		add("register.enabled", "needs auth.username (the registered user)")
	}
	if t.RegisterExpires < 0 {
		add("register.expires", "must not be negative")
	}
	return errors.Join(errs...)
}

// resolveAllow is the trunk's allow-list: Allow when set, else Address's IP, or the addresses
// its host name resolves to now (none when it does not resolve: the trunk then accepts no
// inbound calls until routing is set again).
func (t TrunkConfig) resolveAllow(ctx context.Context) []netip.Prefix {
	if len(t.Allow) > 0 {
		return t.Allow
	}
	host, _, err := net.SplitHostPort(t.Address)
	if err != nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}
	}
	ips, err := lookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	out := make([]netip.Prefix, 0, len(ips))
	for _, ip := range ips {
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out
}

// lookupNetIP resolves trunk host names (a variable so that a test can see Validate never
// calls it).
var lookupNetIP = net.DefaultResolver.LookupNetIP

// prefixErrors puts prefix before each "key: message" error joined in err.
func prefixErrors(prefix string, err error) error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return fmt.Errorf("%s%w", prefix, err)
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, prefixErrors(prefix, e))
	}
	return errors.Join(out...)
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
