package config

import (
	"fmt"
	"net"
)

// SIP configures the SIP stack (internal/sip).
type SIP struct {
	// Addr is the UDP and TCP listen address. Default "127.0.0.1:5060".
	Addr string `yaml:"addr"`
	// Trunks are the carrier SIP trunks.
	Trunks []Trunk `yaml:"trunks"`
	// WebRTC configures the media of WebRTC users' call legs.
	WebRTC WebRTC `yaml:"webrtc"`
}

// Trunk is one carrier SIP trunk.
type Trunk struct {
	// Name identifies the trunk in routes, CDRs and metrics.
	Name string `yaml:"name"`
	// Address is host:port where calls to this carrier go.
	Address string `yaml:"address"`
	// Transport is udp, tcp or tls. Default udp.
	Transport string `yaml:"transport"`
	// Inbound controls who may send calls in over this trunk.
	Inbound TrunkInbound `yaml:"inbound"`
	// Auth holds the outbound digest credentials the carrier asks for.
	Auth TrunkAuth `yaml:"auth"`
}

// TrunkInbound restricts inbound calls.
type TrunkInbound struct {
	// Allow lists source CIDRs. Default: the trunk's resolved addresses.
	Allow []string `yaml:"allow"`
}

// TrunkAuth holds digest credentials.
type TrunkAuth struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

func defaultSIP() SIP { return SIP{Addr: "127.0.0.1:5060", WebRTC: defaultWebRTC()} }

func (s *SIP) validate() []error {
	var errs []error
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("sip.addr: %q is not host:port", s.Addr))
	}
	errs = append(errs, s.WebRTC.validate("sip.webrtc")...)
	seen := map[string]bool{}
	for i, t := range s.Trunks {
		key := fmt.Sprintf("sip.trunks[%d]", i)
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: must not be empty", key))
		} else if seen[t.Name] {
			errs = append(errs, fmt.Errorf("%s.name: duplicate trunk %q", key, t.Name))
		}
		seen[t.Name] = true
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			errs = append(errs, fmt.Errorf("%s.address: %q is not host:port", key, t.Address))
		}
		switch t.Transport {
		case "", "udp", "tcp", "tls":
		default:
			errs = append(errs, fmt.Errorf("%s.transport: %q is not udp, tcp or tls", key, t.Transport))
		}
		for j, c := range t.Inbound.Allow {
			if _, _, err := net.ParseCIDR(c); err != nil && net.ParseIP(c) == nil {
				errs = append(errs, fmt.Errorf("%s.inbound.allow[%d]: %q is not a CIDR or IP", key, j, c))
			}
		}
	}
	return errs
}
