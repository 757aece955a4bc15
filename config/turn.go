package config

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/telgw/telgw/internal/turn"
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
const MaxCredentialTTL = turn.MaxCredentialTTL

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

// defaultTURN is turn.DefaultConfig in the YAML shape, enabled.
func defaultTURN() TURN {
	d := turn.DefaultConfig()
	return TURN{Enabled: true, Addr: d.Addr, MinPort: d.MinPort, MaxPort: d.MaxPort, Realm: d.Realm, CredentialTTL: d.CredentialTTL}
}

// ServerConfig is the turn.Config of this section, allowPeers parsed (each one that does not
// parse reported naming its key; Validate reports the rest). The caller adds Secret (Secret
// here or the stored one), Guarded and Identities.
func (t TURN) ServerConfig() (turn.Config, error) {
	c := turn.DefaultConfig()
	c.Addr, c.PublicHost, c.RelayIP, c.MinPort, c.MaxPort, c.Realm, c.CredentialTTL =
		t.Addr, t.PublicHost, t.RelayIP, t.MinPort, t.MaxPort, t.Realm, t.CredentialTTL
	var errs []error
	for i, s := range t.AllowPeers {
		p, err := parsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("turn.allowPeers[%d]: %q is not a CIDR or IP address", i, s))
			continue
		}
		c.AllowPeers = append(c.AllowPeers, p)
	}
	return c, errors.Join(errs...)
}

func (t *TURN) validate() []error {
	if !t.Enabled {
		return nil
	}
	c, err := t.ServerConfig()
	errs := flatten(nil, "", err, nil)
	return flatten(errs, "turn.", c.Validate(), nil)
}
