package config

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// TURN configures the embedded STUN/TURN server (internal/turn).
type TURN struct {
	// Enabled runs the server. Default true.
	Enabled bool `yaml:"enabled"`
	// Addr is the UDP and TCP listen address. Default "127.0.0.1:3478"; port 0 picks one.
	Addr string `yaml:"addr"`
	// PublicHost is the host in the stun:/turn: URLs handed to clients. Default: Addr's host.
	PublicHost string `yaml:"publicHost"`
	// RelayIP is the address relayed candidates advertise. Default: Addr's host.
	RelayIP string `yaml:"relayIP"`
	// MinPort and MaxPort bound relay ports. Default 49152–65535.
	MinPort uint16 `yaml:"minPort"`
	MaxPort uint16 `yaml:"maxPort"`
	// Realm is the TURN realm. Default "telgw".
	Realm string `yaml:"realm"`
	// Secret is the TURN REST shared secret (coturn `static-auth-secret`). Default: generated
	// once and kept in the store, shared by every node.
	Secret string `yaml:"secret"`
	// CredentialTTL is the lifetime of the credentials /phone/ice and the networkTraversal API
	// hand out; a request's `ttl` may only shorten it. Default 1h, at most 48h (ACS's maximum).
	CredentialTTL time.Duration `yaml:"credentialTTL"`
	// AllowPeers are CIDRs the relay may reach although they are loopback, private, link-local,
	// CGNAT or otherwise special-purpose (a LAN deployment: ["10.0.0.0/8"]). telgw's own
	// listeners and the SIP trunks stay refused inside them. Default none.
	AllowPeers []string `yaml:"allowPeers"`
}

// MaxCredentialTTL is the longest TURN credential lifetime ACS issues (ttl ≤ 172800 s).
const MaxCredentialTTL = 48 * time.Hour

// AllowPrefixes parses AllowPeers (validated: CIDRs or single IPs).
func (t *TURN) AllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range t.AllowPeers {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func defaultTURN() TURN {
	return TURN{Enabled: true, Addr: "127.0.0.1:3478", MinPort: 49152, MaxPort: 65535, Realm: "telgw", CredentialTTL: time.Hour}
}

func (t *TURN) validate() []error {
	if !t.Enabled {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(t.Addr); err != nil {
		errs = append(errs, fmt.Errorf("turn.addr: %q is not host:port", t.Addr))
	}
	if t.RelayIP != "" && net.ParseIP(t.RelayIP) == nil {
		errs = append(errs, fmt.Errorf("turn.relayIP: %q is not an IP address", t.RelayIP))
	}
	if t.MinPort == 0 || t.MaxPort == 0 || t.MinPort > t.MaxPort {
		errs = append(errs, fmt.Errorf("turn.minPort/maxPort: %d–%d is not a port range", t.MinPort, t.MaxPort))
	}
	if t.CredentialTTL < time.Minute || t.CredentialTTL > MaxCredentialTTL {
		errs = append(errs, fmt.Errorf("turn.credentialTTL: %s is not within 1m–48h", t.CredentialTTL))
	}
	for i, s := range t.AllowPeers {
		if _, err := parsePrefix(s); err != nil {
			errs = append(errs, fmt.Errorf("turn.allowPeers[%d]: %q is not a CIDR or IP address", i, s))
		}
	}
	return errs
}
