package config

import (
	"fmt"
	"net"
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
}

func defaultTURN() TURN {
	return TURN{Enabled: true, Addr: "127.0.0.1:3478", MinPort: 49152, MaxPort: 65535, Realm: "telgw"}
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
	return errs
}
